// libFuzzer target: the distribution handshake's messages and node-name check, on arbitrary
// bytes, as an unauthenticated peer sends them. Whatever parses must survive re-encoding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "hypha/net/handshake.hpp"

namespace {
[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hypha::net;
  const std::span<const std::uint8_t> in(data, size);
  (void)valid_node_name(std::string_view(reinterpret_cast<const char*>(data), size));
  if (auto n = parse_name_message(in)) {
    auto again = parse_name_message(name_message(*n));
    if (!again || again->name != n->name || again->flags != n->flags || again->creation != n->creation)
      fail("name message changed when re-encoded");
  }
  if (auto c = parse_challenge(in)) {
    auto again = parse_challenge(challenge_message(c->peer, c->challenge));
    if (!again || again->peer.name != c->peer.name || again->challenge != c->challenge) fail("challenge changed");
  }
  (void)parse_challenge_reply(in);
  (void)parse_challenge_ack(in);
  return 0;
}
