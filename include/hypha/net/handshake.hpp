// The distribution handshake, version 6 (OTP 23+, the only one OTP 25-28 speak), both sides:
// name exchange, status, MD5 challenge and acknowledgement (erl_dist_protocol.html, dist_util.erl).
// Messages are framed with a 2-byte length. Each function reads and writes only its socket and
// returns the peer, or why the handshake failed (wrong cookie, missing mandatory flags, ...).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <array>
#include <cstdint>
#include <span>
#include <vector>
#include <functional>
#include <string>
#include <string_view>

#include "hypha/term/result.hpp"

namespace hypha::net {

struct HandshakeConfig {
  std::string name;  // this node, "alive@host"
  std::string cookie;
  std::uint64_t flags = 0;
  std::uint32_t creation = 0;
};

struct PeerInfo {
  std::string name;
  std::uint64_t flags = 0;
  std::uint32_t creation = 0;
};

// A node name as OTP accepts one: "alive@host", alive of letters, digits, '_' and '-', host of
// printable ASCII without spaces or '@', at most 255 bytes in all. Checked as text, before the
// peer has proved the cookie (so no atom is made for a name that is refused).
bool valid_node_name(std::string_view name);

// The handshake's messages (the body after the 2-byte length), parsed from untrusted bytes: each
// returns why it is malformed instead of reading past the end (fuzz/handshake_fuzz.cpp).
// 'N' Flags(8) Creation(4) NLen(2) Name: the initiator's name message.
Result<PeerInfo, std::string> parse_name_message(std::span<const std::uint8_t> body);
std::vector<std::uint8_t> name_message(const PeerInfo& self);
// 'N' Flags(8) Challenge(4) Creation(4) NLen(2) Name: the acceptor's challenge.
struct Challenge {
  PeerInfo peer;
  std::uint32_t challenge = 0;
};
Result<Challenge, std::string> parse_challenge(std::span<const std::uint8_t> body);
std::vector<std::uint8_t> challenge_message(const PeerInfo& self, std::uint32_t challenge);
// 'r' Challenge(4) Digest(16): the initiator's reply; 'a' Digest(16): the acceptor's ack.
struct ChallengeReply {
  std::uint32_t challenge = 0;
  std::array<std::uint8_t, 16> digest{};
};
Result<ChallengeReply, std::string> parse_challenge_reply(std::span<const std::uint8_t> body);
Result<std::array<std::uint8_t, 16>, std::string> parse_challenge_ack(std::span<const std::uint8_t> body);

// What an accepting node answers a peer that wants to connect (the status message).
enum class AcceptStatus {
  Ok,
  OkSimultaneous,  // we were connecting to it too, and give way
  Nok,             // we were connecting to it too, and our attempt wins
  Alive,           // we believe we are already connected; the peer says whether to replace it
  NotAllowed,
};

// How handshake_connect's error starts when the peer answered "nok": it was connecting to us at
// the same time and its attempt wins, so our acceptor will get the connection; or "alive" while
// we keep the connection it has (on_alive said no): a crossing either way, not a failure.
inline constexpr std::string_view kSimultaneousLost = "simultaneous connect lost";

// What the initiator's owner is asked along the way (each may be empty).
struct ConnectHooks {
  // Answers the "alive" status: true when the peer's old connection to us is stale (replace it).
  std::function<bool()> on_alive;
  // The peer answered "ok_simultaneous": it was connecting to us too, and its attempt gives way.
  std::function<void()> on_peer_yields;
  // Asked before our last message (the one that lets the peer take the connection): false
  // abandons the handshake (the attempt was given up, or another connection was taken meanwhile).
  std::function<bool()> still_wanted;
};

// Initiator. `expected` is the node we meant to reach.
asio::awaitable<Result<PeerInfo, std::string>> handshake_connect(asio::ip::tcp::socket& sock,
                                                                 const HandshakeConfig& cfg,
                                                                 const std::string& expected,
                                                                 ConnectHooks hooks = {});
// How handshake_connect's error starts when `still_wanted` said no.
inline constexpr std::string_view kAttemptAbandoned = "attempt abandoned";

// Acceptor. `decide` is asked once the peer has named itself; `replace` is called when the peer
// answered "true" to Alive.
asio::awaitable<Result<PeerInfo, std::string>> handshake_accept(
    asio::ip::tcp::socket& sock, const HandshakeConfig& cfg,
    std::function<AcceptStatus(const PeerInfo&)> decide);

}  // namespace hypha::net
