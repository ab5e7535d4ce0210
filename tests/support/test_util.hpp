// Helpers the test binaries share: terms from Erlang syntax, a free loopback port (for an EPMD
// port of a test's own), and a node on loopback.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <string_view>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <array>
#include <chrono>
#include <thread>

#include "hypha/node/node.hpp"
#include "hypha/otp/kernel.hpp"
#include "hypha/term/text.hpp"

namespace hypha::testing {

inline Term T(std::string_view s) { return parse_term(s).value(); }

inline std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return a.local_endpoint().port();
}

// True when the other side closed `sock` (or reset it) within `timeout`; what arrives meanwhile
// is read and dropped. Leaves the socket non-blocking.
inline bool closed_by_peer(asio::ip::tcp::socket& sock, std::chrono::milliseconds timeout) {
  sock.non_blocking(true);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<char, 65536> buf;
  while (std::chrono::steady_clock::now() < deadline) {
    asio::error_code ec;
    sock.read_some(asio::buffer(buf), ec);
    if (ec && ec != asio::error::would_block) return true;
    if (ec) std::this_thread::yield();
  }
  return false;
}

// True once `pred` holds, checked every millisecond until `limit` has passed: for state with no
// event to wait on (a counter, memory given back, a peer list on another node).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // not a spin: some tests measure CPU
  }
  return true;
}

// ALIVE@127.0.0.1 with its kernel (serving `exports`, built-ins only when null), the test's EPMD
// port, cookie "cookie" and two workers unless `o` says otherwise; nullptr (and a test failure)
// when it does not start.
inline std::unique_ptr<Node> start_node(const std::string& alive, std::uint16_t epmd, NodeOptions o = {},
                                        std::shared_ptr<Exports> exports = nullptr) {
  o.name = alive + "@127.0.0.1";
  if (o.cookie.empty()) o.cookie = "cookie";
  o.epmd_port = epmd;
  if (o.threads == 0) o.threads = 2;
  auto n = hypha::start_node(o, {.exports = std::move(exports)});
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error());
  return n.ok() ? std::move(*n) : nullptr;
}

}  // namespace hypha::testing
