#include "hypha/net/handshake.hpp"

#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

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

Bytes name_message(const HandshakeConfig& cfg) {  // 'N' Flags Creation NLen Name
  Bytes b{'N'};
  put64(b, cfg.flags);
  put32(b, cfg.creation);
  put16(b, static_cast<std::uint16_t>(cfg.name.size()));
  b.insert(b.end(), cfg.name.begin(), cfg.name.end());
  return b;
}

Bytes status_message(std::string_view status) {
  Bytes b{'s'};
  b.insert(b.end(), status.begin(), status.end());
  return b;
}

}  // namespace

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
                                                                 std::function<bool()> on_alive) {
  try {
    co_await send_framed(sock, name_message(cfg));
    Bytes status = co_await recv_framed(sock);
    if (status[0] != 's') co_return unexpected(std::string("expected a status message"));
    const std::string st(status.begin() + 1, status.end());
    if (st == "alive") {
      const bool replace = on_alive ? on_alive() : true;
      co_await send_framed(sock, status_message(replace ? "true" : "false"));
      if (!replace) co_return unexpected(std::string("peer already connected to us"));
    } else if (st == "nok") {
      co_return unexpected(std::string(kSimultaneousLost) + ": the peer's own attempt wins");
    } else if (st != "ok" && st != "ok_simultaneous") {
      co_return unexpected("connection refused by the peer (status " + st + ")");
    }
    // 'N' Flags(8) Challenge(4) Creation(4) NLen(2) Name
    Bytes ch = co_await recv_framed(sock);
    if (ch[0] != 'N' || ch.size() < 19) co_return unexpected(std::string("malformed challenge"));
    PeerInfo peer;
    peer.flags = get64(&ch[1]);
    const std::uint32_t their_challenge = get32(&ch[9]);
    peer.creation = get32(&ch[13]);
    const std::size_t nlen = get16(&ch[17]);
    if (ch.size() < 19 + nlen) co_return unexpected(std::string("malformed challenge"));
    peer.name.assign(reinterpret_cast<const char*>(&ch[19]), nlen);
    if (const auto missing = dflag::missing_mandatory(peer.flags); !missing.empty())
      co_return unexpected("peer lacks mandatory distribution flags: " + missing);
    if (!expected.empty() && peer.name != expected)
      co_return unexpected("connected to " + peer.name + " instead of " + expected);

    const std::uint32_t our_challenge = new_challenge();
    Bytes reply{'r'};
    put32(reply, our_challenge);
    const Digest d = challenge_digest(cfg.cookie, their_challenge);
    reply.insert(reply.end(), d.begin(), d.end());
    co_await send_framed(sock, reply);

    Bytes ack = co_await recv_framed(sock);
    if (ack[0] != 'a' || ack.size() != 17) co_return unexpected(std::string("malformed challenge ack"));
    Digest got;
    std::copy(ack.begin() + 1, ack.end(), got.begin());
    if (!digest_equal(got, challenge_digest(cfg.cookie, our_challenge)))
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
    Bytes first = co_await recv_framed(sock);
    if (first[0] != 'N' || first.size() < 15)
      co_return unexpected(std::string("peer does not speak distribution version 6"));
    PeerInfo peer;
    peer.flags = get64(&first[1]);
    peer.creation = get32(&first[9]);
    const std::size_t nlen = get16(&first[13]);
    if (first.size() < 15 + nlen || nlen == 0) co_return unexpected(std::string("malformed name message"));
    peer.name.assign(reinterpret_cast<const char*>(&first[15]), nlen);
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
    Bytes ch{'N'};
    put64(ch, cfg.flags);
    put32(ch, our_challenge);
    put32(ch, cfg.creation);
    put16(ch, static_cast<std::uint16_t>(cfg.name.size()));
    ch.insert(ch.end(), cfg.name.begin(), cfg.name.end());
    co_await send_framed(sock, ch);

    Bytes reply = co_await recv_framed(sock);
    if (reply[0] != 'r' || reply.size() != 21) co_return unexpected(std::string("malformed challenge reply"));
    const std::uint32_t their_challenge = get32(&reply[1]);
    Digest got;
    std::copy(reply.begin() + 5, reply.end(), got.begin());
    if (!digest_equal(got, challenge_digest(cfg.cookie, our_challenge)))
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
