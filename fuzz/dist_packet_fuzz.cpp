// libFuzzer target: distribution packets (pass-through and atom-cache headers) on arbitrary bytes,
// with one atom cache kept across inputs as a connection keeps it. Whatever parses must survive
// re-framing: make_frame of its control message and payload parses back to the same terms.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "hypha/net/packet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static hypha::net::AtomCache cache;
  hypha::etf::DecodeOptions opts;
  opts.max_bytes = 1u << 20;
  opts.max_new_atoms = 64;
  auto p = hypha::net::parse_packet({data, size}, cache, opts);
  if (!p) return 0;
  for (bool header : {false, true}) {
    const auto frame = hypha::net::make_frame(p->control, p->payload ? &*p->payload : nullptr, header);
    hypha::net::AtomCache fresh;
    auto again = hypha::net::parse_packet(std::span(frame).subspan(4), fresh, opts);
    if (!again || !(again->control == p->control) || again->payload.has_value() != p->payload.has_value() ||
        (p->payload && !(*again->payload == *p->payload))) {
      std::fprintf(stderr, "re-framing changed %s\n", p->control.to_string().c_str());
      std::abort();
    }
  }
  return 0;
}
