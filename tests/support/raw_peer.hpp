// Peers written by hand, for tests of what a misbehaving or hostile peer can do to a node: one
// that handshakes properly (then sends what the test says), and the pieces of a handshake to
// send on their own (a name message, then silence).
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hypha/net/flags.hpp"
#include "hypha/net/handshake.hpp"
#include "hypha/net/packet.hpp"
#include "hypha/term/term.hpp"
#include "test_util.hpp"

namespace hypha::testing {

struct RawPeer {
  asio::io_context io;
  asio::ip::tcp::socket sock{io};
  std::string name = "raw@127.0.0.1";
  net::AtomCache cache;

  // Connects and handshakes as `name`; true when the node accepted it.
  bool connect(std::uint16_t port, const std::string& target, const std::string& cookie) {
    sock.connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port));
    net::HandshakeConfig cfg{name, cookie, net::dflag::kOurs, 7};
    auto f = asio::co_spawn(io, net::handshake_connect(sock, cfg, target), asio::use_future);
    io.run();
    io.restart();
    return f.get().ok();
  }
  // Opens a connection and sends only the handshake's name message for `as`.
  void send_name_only(std::uint16_t port, const std::string& as) {
    sock.connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port));
    std::vector<std::uint8_t> m{0, 0, 'N'};
    const std::uint64_t flags = net::dflag::kOurs;
    for (int s = 56; s >= 0; s -= 8) m.push_back(static_cast<std::uint8_t>(flags >> s));
    for (int i = 0; i < 4; ++i) m.push_back(i == 3 ? 7 : 0);
    m.push_back(static_cast<std::uint8_t>(as.size() >> 8));
    m.push_back(static_cast<std::uint8_t>(as.size()));
    m.insert(m.end(), as.begin(), as.end());
    const std::size_t body = m.size() - 2;
    m[0] = static_cast<std::uint8_t>(body >> 8);
    m[1] = static_cast<std::uint8_t>(body);
    asio::write(sock, asio::buffer(m));
  }
  // The status the node answered a name message with ("ok", "nok", "not_allowed", ...), or ""
  // when it closed the connection instead.
  std::string read_status() {
    std::array<std::uint8_t, 2> len{};
    asio::error_code ec;
    asio::read(sock, asio::buffer(len), ec);
    if (ec) return "";
    std::string body((len[0] << 8) | len[1], '\0');
    asio::read(sock, asio::buffer(body), ec);
    if (ec || body.empty() || body[0] != 's') return "";
    return body.substr(1);
  }
  // Sends `msg` to the registered name `to` on the node, as a REG_SEND from a pid of this peer.
  void reg_send(const std::string& to, const Term& msg) {
    const Pid from{Atom(name), 1, 0, 7};
    const Term ctrl = Term::tuple({Term(6), Term(from), Term(Atom()), Term(Atom(to))});
    const auto frame = net::make_frame(ctrl, &msg, true);
    asio::error_code ec;
    asio::write(sock, asio::buffer(frame.data(), frame.size()), ec);
  }
  // The next packet the node sends that is not a tick, read within `timeout` (blocking reads).
  std::optional<net::Packet> read_packet(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    sock.non_blocking(true);
    auto read_exactly = [&](std::uint8_t* p, std::size_t n) {
      while (n > 0) {
        asio::error_code ec;
        const std::size_t got = sock.read_some(asio::buffer(p, n), ec);
        if (ec == asio::error::would_block) {
          if (std::chrono::steady_clock::now() > deadline) return false;
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        if (ec) return false;
        p += got;
        n -= got;
      }
      return true;
    };
    for (;;) {
      std::array<std::uint8_t, 4> len{};
      if (!read_exactly(len.data(), 4)) return std::nullopt;
      const std::size_t n = (std::size_t{len[0]} << 24) | (std::size_t{len[1]} << 16) | (std::size_t{len[2]} << 8) | len[3];
      if (n == 0) continue;  // a tick
      std::vector<std::uint8_t> body(n);
      if (!read_exactly(body.data(), n)) return std::nullopt;
      auto parsed = net::parse_packet(body, cache, etf::DecodeOptions{});
      if (!parsed) return std::nullopt;
      return std::move(*parsed);
    }
  }
  // True when the other side closed the connection within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout) { return testing::closed_by_peer(sock, timeout); }
};

}  // namespace hypha::testing
