// Gossip packets from the network (cluster/gossip.hpp), in both formats, with and without a
// secret: decode must classify every input without crashing, reading past the end or making
// atoms; what it accepts names a valid node. The first byte picks the codec.
#include <cstddef>
#include <cstdint>
#include <span>

#include "hypha/cluster/gossip.hpp"
#include "hypha/net/handshake.hpp"
#include "hypha/term/atom.hpp"

using namespace hypha::gossip;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Codec codecs[] = {
      Codec({.format = Format::Hypha, .secret = "fuzz", .cluster = "c"}),
      Codec({.format = Format::Libcluster}),
      Codec({.format = Format::Libcluster, .secret = "fuzz"}),
  };
  if (size == 0) return 0;
  Codec& c = codecs[data[0] % 3];
  const auto atoms = hypha::Atom::count();
  const auto d = c.decode(std::span<const std::uint8_t>(data + 1, size - 1), 1'780'000'000'000);
  if (d.drop == Drop::None && !hypha::net::valid_node_name(d.node)) __builtin_trap();
  if (hypha::Atom::count() != atoms) __builtin_trap();
  return 0;
}
