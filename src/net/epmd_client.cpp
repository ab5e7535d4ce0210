#include <asio/buffer.hpp>
#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstdlib>

#include "bytes.hpp"
#include "epmd_wire.hpp"
#include "hypha/net/epmd.hpp"

namespace hypha::net {

using asio::ip::tcp;
using asio::use_awaitable;

std::uint16_t epmd_port() {
  if (const char* env = std::getenv("ERL_EPMD_PORT")) {
    const long v = std::strtol(env, nullptr, 10);
    if (v > 0 && v < 65536) return static_cast<std::uint16_t>(v);
  }
  return 4369;
}

namespace {

asio::awaitable<std::unique_ptr<tcp::socket>> connect_to(const std::string& host, std::uint16_t port) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), use_awaitable);
  auto sock = std::make_unique<tcp::socket>(ex);
  co_await asio::async_connect(*sock, endpoints, use_awaitable);
  co_return sock;
}

// A request: 2-byte length, then the body.
asio::awaitable<void> send_request(tcp::socket& s, const Bytes& body) {
  Bytes framed;
  put16(framed, static_cast<std::uint16_t>(body.size()));
  framed.insert(framed.end(), body.begin(), body.end());
  co_await asio::async_write(s, asio::buffer(framed), use_awaitable);
}

asio::awaitable<Bytes> read_to_end(tcp::socket& s, std::size_t limit) {
  Bytes all;
  std::array<std::uint8_t, 4096> chunk;
  for (;;) {
    asio::error_code ec;
    const std::size_t n = co_await s.async_read_some(asio::buffer(chunk), asio::redirect_error(use_awaitable, ec));
    all.insert(all.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec || all.size() > limit) break;
  }
  co_return all;
}

}  // namespace

asio::awaitable<Result<EpmdRegistration, std::string>> epmd_register(std::string alive, std::uint16_t listen_port,
                                                                     bool hidden, std::uint16_t port) {
  try {
    auto sock = co_await connect_to("127.0.0.1", port);
    NodeEntry self;
    self.name = alive;
    self.port = listen_port;
    self.type = hidden ? 72 : 77;
    self.protocol = 0;  // TCP/IPv4
    co_await send_request(*sock, alive2_request(self));
    std::array<std::uint8_t, 2> head;
    co_await asio::async_read(*sock, asio::buffer(head), use_awaitable);
    if (head[1] != 0) co_return unexpected("EPMD refused the name '" + alive + "' (already registered?)");
    std::uint32_t creation = 0;
    if (head[0] == 118) {  // ALIVE2_X_RESP: 32-bit creation
      std::array<std::uint8_t, 4> c;
      co_await asio::async_read(*sock, asio::buffer(c), use_awaitable);
      creation = get32(c.data());
    } else if (head[0] == 121) {  // ALIVE2_RESP: 16-bit creation
      std::array<std::uint8_t, 2> c;
      co_await asio::async_read(*sock, asio::buffer(c), use_awaitable);
      creation = get16(c.data());
    } else {
      co_return unexpected("EPMD sent an unknown reply " + std::to_string(head[0]));
    }
    co_return EpmdRegistration{std::move(sock), creation};
  } catch (const std::exception& e) {
    co_return unexpected("cannot register with EPMD on port " + std::to_string(port) + ": " + e.what());
  }
}

asio::awaitable<Result<NodeEntry, std::string>> epmd_port_please(std::string host, std::string alive,
                                                                 std::uint16_t port) {
  try {
    auto sock = co_await connect_to(host, port);
    Bytes req{122};  // PORT_PLEASE2_REQ
    req.insert(req.end(), alive.begin(), alive.end());
    co_await send_request(*sock, req);
    Bytes r = co_await read_to_end(*sock, 70000);
    if (r.size() < 2 || r[0] != 119) co_return unexpected(std::string("malformed EPMD reply"));
    if (r[1] != 0) co_return unexpected("no node '" + alive + "' registered at " + host);
    auto e = parse_node_entry(std::span<const std::uint8_t>(r).subspan(2), false);
    if (!e) co_return unexpected(std::string("truncated EPMD reply"));
    co_return std::move(*e);
  } catch (const std::exception& e) {
    co_return unexpected("cannot reach EPMD at " + host + ":" + std::to_string(port) + ": " + e.what());
  }
}

asio::awaitable<Result<std::string, std::string>> epmd_names(std::string host, std::uint16_t port) {
  try {
    auto sock = co_await connect_to(host, port);
    const Bytes req(1, 110);  // NAMES_REQ (a braced list inside co_await trips g++ 12)
    co_await send_request(*sock, req);
    Bytes r = co_await read_to_end(*sock, 1 << 20);
    if (r.size() < 4) co_return unexpected(std::string("truncated EPMD reply"));
    co_return std::string(r.begin() + 4, r.end());
  } catch (const std::exception& e) {
    co_return unexpected("cannot reach EPMD at " + host + ":" + std::to_string(port) + ": " + e.what());
  }
}

}  // namespace hypha::net
