// Gossip packets for formation's gossip strategy: heartbeats on UDP multicast that say "node N
// is here". Two formats:
//
// "hypha" (the default): authenticated encryption, AES-256-GCM with a key derived from the
// secret by HKDF-SHA256 (salt "hypha gossip v1", info: the cluster name). Packet:
//   "HYG" 0x01 | nonce (12 random bytes) | ciphertext | tag (16)
// with the 4-byte header as associated data; the plaintext is
//   cluster name (1-byte length + bytes) | node name (1-byte length + bytes) | time (8 bytes,
//   milliseconds since the Unix epoch, big-endian).
// A receiver drops, and counts, packets that are oversized, malformed, fail authentication
// (another secret, tampering), name another cluster, or are replayed: a time outside the window
// around its own clock, or not newer than the last one accepted from that node.
//
// "libcluster": exactly libcluster 3.x's Cluster.Strategy.Gossip packet, so Elixir nodes running
// it and hypha nodes find each other: "heartbeat::" followed by term_to_binary(%{node: Node}),
// plain or, with a secret, AES-256-CBC under SHA-256(secret) with a random 16-byte IV in front
// and PKCS#7 padding. It has no MAC and no replay protection (libcluster's design); we parse it
// as untrusted input anyway: bounded size, only a one-entry map of `node` to an atom of node-name
// syntax, and no atom is made while parsing.
//
// Nothing here makes an atom: decode() returns the node name as text.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace hypha::gossip {

constexpr std::size_t kMaxPacket = 1024;

enum class Format { Hypha, Libcluster };

enum class Drop { None, Oversized, Malformed, BadAuth, ForeignCluster, Replayed };
const char* drop_name(Drop d);

struct Config {
  Format format = Format::Hypha;
  std::string secret;   // required for Hypha; optional for Libcluster (empty: plain packets)
  std::string cluster;  // Hypha: packets of other clusters are dropped
  std::int64_t window_ms = 30000;  // Hypha: how far a packet's time may be from ours
};

class Codec {
 public:
  explicit Codec(Config c);
  // A heartbeat for `node` at `now_ms` (Unix milliseconds).
  std::vector<std::uint8_t> encode(const std::string& node, std::int64_t now_ms) const;
  struct Decoded {
    Drop drop = Drop::None;
    std::string node;  // when drop == None
  };
  // Checks and decodes one packet; remembers accepted times per node (replays).
  Decoded decode(std::span<const std::uint8_t> packet, std::int64_t now_ms);
  const Config& config() const noexcept { return c_; }

 private:
  Decoded decode_hypha(std::span<const std::uint8_t> p, std::int64_t now_ms);
  Decoded decode_libcluster(std::span<const std::uint8_t> p) const;
  Config c_;
  std::array<std::uint8_t, 32> key_{};
  std::map<std::string, std::int64_t> last_;  // node -> newest time accepted
};

}  // namespace hypha::gossip
