// libFuzzer target: ALIVE2 requests as any local or remote client may send them to the embedded
// EPMD. Whatever parses must survive re-encoding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "hypha/net/epmd.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hypha::net;
  auto e = parse_alive2({data, size});
  if (!e) return 0;
  auto again = parse_alive2(alive2_request(*e));
  if (!again || again->name != e->name || again->extra != e->extra || again->port != e->port ||
      again->type != e->type || again->highest != e->highest || again->lowest != e->lowest) {
    std::fprintf(stderr, "ALIVE2 request changed when re-encoded\n");
    std::abort();
  }
  return 0;
}
