#include "hypha/net/handshake.hpp"

#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cctype>

#include "bytes.hpp"
#include "hypha/net/digest.hpp"
#include "hypha/net/flags.hpp"

namespace hypha::net {

using asio::use_awaitable;
using asio::ip::tcp;

namespace {

constexpr std::size_t kMaxHandshakeMessage = 2048;

asio::awaitable<void> send_framed(tcp::socket& s, const Bytes& body) {
  Bytes framed;
  put16(framed, static_cast<std::uint16_t>(body.size()));
  framed.insert(framed.end(), body.begin(), body.end());
  co_await asio::async_write(s, asio::buffer(framed), use_awaitable);
}

asio::awaitable<Bytes> recv_framed(tcp::socket& s) {
  std::array<std::uint8_t, 2> len;
  co_await asio::async_read(s, asio::buffer(len), use_awaitable);
  const std::size_t n = get16(len.data());
  if (n == 0 || n > kMaxHandshakeMessage) throw std::runtime_error("bad handshake message length " + std::to_string(n));
  Bytes body(n);
  co_await asio::async_read(s, asio::buffer(body), use_awaitable);
  co_return body;
}

Bytes status_message(std::string_view status) {
  // Sized first: GCC 12 takes an insert after a one-element start for an overread (a false
  // -Wstringop-overread, seen in every program linking the library with LTO).
  Bytes b(1 + status.size());
  b[0] = 's';
  std::copy(status.begin(), status.end(), b.begin() + 1);
  return b;
}

}  // namespace

namespace {
void put_name(Bytes& b, const std::string& name) {
  put16(b, static_cast<std::uint16_t>(name.size()));
  b.insert(b.end(), name.begin(), name.end());
}
// The name at `at` (NLen(2) Name); bytes after it are ignored, as dist_util does.
Result<std::string, std::string> name_at(std::span<const std::uint8_t> body, std::size_t at, const char* what) {
  if (body.size() < at + 2) return unexpected(std::string("truncated ") + what);
  const std::size_t n = get16(&body[at]);
  if (n == 0 || body.size() < at + 2 + n) return unexpected(std::string("malformed ") + what + ": name length");
  return std::string(reinterpret_cast<const char*>(&body[at + 2]), n);
}
}  // namespace

Result<PeerInfo, std::string> parse_name_message(std::span<const std::uint8_t> body) {
  if (body.empty() || body[0] != 'N') return unexpected(std::string("peer does not speak distribution version 6"));
  if (body.size() < 15) return unexpected(std::string("truncated name message"));
  PeerInfo p;
  p.flags = get64(&body[1]);
  p.creation = get32(&body[9]);
  auto name = name_at(body, 13, "name message");
  if (!name) return unexpected(name.error());
  p.name = std::move(*name);
  return p;
}

Bytes name_message(const PeerInfo& self) {
  Bytes b{'N'};
  put64(b, self.flags);
  put32(b, self.creation);
  put_name(b, self.name);
  return b;
}

Result<Challenge, std::string> parse_challenge(std::span<const std::uint8_t> body) {
  if (body.size() < 19 || body[0] != 'N') return unexpected(std::string("malformed challenge"));
  Challenge c;
  c.peer.flags = get64(&body[1]);
  c.challenge = get32(&body[9]);
  c.peer.creation = get32(&body[13]);
  auto name = name_at(body, 17, "challenge");
  if (!name) return unexpected(name.error());
  c.peer.name = std::move(*name);
  return c;
}

Bytes challenge_message(const PeerInfo& self, std::uint32_t challenge) {
  Bytes b{'N'};
  put64(b, self.flags);
  put32(b, challenge);
  put32(b, self.creation);
  put_name(b, self.name);
  return b;
}

Result<ChallengeReply, std::string> parse_challenge_reply(std::span<const std::uint8_t> body) {
  if (body.size() != 21 || body[0] != 'r') return unexpected(std::string("malformed challenge reply"));
  ChallengeReply r;
  r.challenge = get32(&body[1]);
  std::copy(body.begin() + 5, body.end(), r.digest.begin());
  return r;
}

Result<std::array<std::uint8_t, 16>, std::string> parse_challenge_ack(std::span<const std::uint8_t> body) {
  if (body.size() != 17 || body[0] != 'a') return unexpected(std::string("malformed challenge ack"));
  std::array<std::uint8_t, 16> d{};
  std::copy(body.begin() + 1, body.end(), d.begin());
  return d;
}

bool valid_node_name(std::string_view name) {
  const auto at = name.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == name.size() || name.size() > 255) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    const bool ok = i < at ? (std::isalnum(c) || c == '_' || c == '-') : (i == at || (c > 0x20 && c < 0x7F && c != '@'));
    if (!ok) return false;
  }
  return true;
}

asio::awaitable<Result<PeerInfo, std::string>> handshake_connect(tcp::socket& sock, const HandshakeConfig& cfg,
                                                                 const std::string& expected,
                                                                 ConnectHooks hooks) {
  try {
    // Every temporary that crosses a co_await is named: GCC 12 mishandles some that are not.
    const PeerInfo self{cfg.name, cfg.flags, cfg.creation};
    const Bytes hello = name_message(self);
    co_await send_framed(sock, hello);
    Bytes status = co_await recv_framed(sock);
    if (status[0] != 's') co_return unexpected(std::string("expected a status message"));
    const std::string st(status.begin() + 1, status.end());
    if (st == "alive") {
      const bool replace = hooks.on_alive ? hooks.on_alive() : true;
      co_await send_framed(sock, status_message(replace ? "true" : "false"));
      // We keep the connection the peer has (it is up here too): a crossing, routine.
      if (!replace) co_return unexpected(std::string(kSimultaneousLost) + ": the peer's connection to us is up and kept");
    } else if (st == "nok") {
      co_return unexpected(std::string(kSimultaneousLost) + ": the peer's own attempt wins");
    } else if (st == "ok_simultaneous") {
      if (hooks.on_peer_yields) hooks.on_peer_yields();
    } else if (st != "ok") {
      co_return unexpected("connection refused by the peer (status " + st + ")");
    }
    const Bytes ch_body = co_await recv_framed(sock);
    auto ch = parse_challenge(ch_body);
    if (!ch) co_return unexpected(ch.error());
    PeerInfo peer = ch->peer;
    const std::uint32_t their_challenge = ch->challenge;
    if (const auto missing = dflag::missing_mandatory(peer.flags); !missing.empty())
      co_return unexpected("peer lacks mandatory distribution flags: " + missing);
    if (!expected.empty() && peer.name != expected)
      co_return unexpected("connected to " + peer.name + " instead of " + expected);

    if (hooks.still_wanted && !hooks.still_wanted())
      co_return unexpected(std::string(kAttemptAbandoned) + ": another connection to " + peer.name + " is taken");
    const std::uint32_t our_challenge = new_challenge();
    Bytes reply{'r'};
    put32(reply, our_challenge);
    const Digest d = challenge_digest(cfg.cookie, their_challenge);
    reply.insert(reply.end(), d.begin(), d.end());
    co_await send_framed(sock, reply);

    const Bytes ack_body = co_await recv_framed(sock);
    auto ack = parse_challenge_ack(ack_body);
    if (!ack) co_return unexpected(ack.error());
    if (!digest_equal(*ack, challenge_digest(cfg.cookie, our_challenge)))
      co_return unexpected("wrong cookie: " + peer.name + " answered our challenge with another cookie");
    co_return peer;
  } catch (const std::exception& e) {
    // A peer that rejects our cookie closes without a word: that is the usual reason here.
    co_return unexpected(std::string("handshake failed (connection closed by the peer; wrong cookie?): ") + e.what());
  }
}

asio::awaitable<Result<PeerInfo, std::string>> handshake_accept(tcp::socket& sock, const HandshakeConfig& cfg,
                                                                std::function<AcceptStatus(const PeerInfo&)> decide) {
  try {
    const Bytes first_body = co_await recv_framed(sock);
    auto first = parse_name_message(first_body);
    if (!first) co_return unexpected(first.error());
    PeerInfo peer = std::move(*first);
    if (const auto missing = dflag::missing_mandatory(peer.flags); !missing.empty()) {
      co_await send_framed(sock, status_message("not_allowed"));
      co_return unexpected(peer.name + " lacks mandatory distribution flags: " + missing);
    }
    switch (decide(peer)) {
      case AcceptStatus::Ok: co_await send_framed(sock, status_message("ok")); break;
      case AcceptStatus::OkSimultaneous: co_await send_framed(sock, status_message("ok_simultaneous")); break;
      case AcceptStatus::Nok:
        co_await send_framed(sock, status_message("nok"));
        co_return unexpected("simultaneous connect with " + peer.name + ": ours wins");
      case AcceptStatus::NotAllowed:
        co_await send_framed(sock, status_message("not_allowed"));
        co_return unexpected(peer.name + " is not allowed to connect");
      case AcceptStatus::Alive: {
        co_await send_framed(sock, status_message("alive"));
        Bytes answer = co_await recv_framed(sock);
        if (std::string(answer.begin(), answer.end()) != "strue")
          co_return unexpected(peer.name + " keeps its existing connection");
        break;
      }
    }
    const std::uint32_t our_challenge = new_challenge();
    const Bytes ch = challenge_message(PeerInfo{cfg.name, cfg.flags, cfg.creation}, our_challenge);
    co_await send_framed(sock, ch);

    const Bytes reply_body = co_await recv_framed(sock);
    auto reply = parse_challenge_reply(reply_body);
    if (!reply) co_return unexpected(reply.error());
    const std::uint32_t their_challenge = reply->challenge;
    if (!digest_equal(reply->digest, challenge_digest(cfg.cookie, our_challenge)))
      co_return unexpected("wrong cookie: connection attempt from " + peer.name + " refused");
    Bytes ack{'a'};
    const Digest d = challenge_digest(cfg.cookie, their_challenge);
    ack.insert(ack.end(), d.begin(), d.end());
    co_await send_framed(sock, ack);
    co_return peer;
  } catch (const std::exception& e) {
    co_return unexpected(std::string("handshake failed: ") + e.what());
  }
}

}  // namespace hypha::net
