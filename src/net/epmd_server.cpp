// The embedded EPMD: ALIVE2 (register while the connection lasts), PORT_PLEASE2, NAMES and DUMP,
// as the epmd program answers them. Requests are limited in size; anything malformed closes that
// one connection.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>
#include <mutex>
#include <random>

#include "bytes.hpp"
#include "epmd_wire.hpp"
#include "hypha/base/log.hpp"
#include "hypha/net/epmd.hpp"
#include "hypha/net/listener.hpp"

namespace hypha::net {

using asio::ip::tcp;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr std::size_t kMaxRequest = 4096;
// A request must arrive this soon after connecting (a registration then stays open).
constexpr std::chrono::milliseconds kRequestTimeout{5000};
// Connections at once: registrations and requests being answered.
constexpr std::size_t kMaxConnections = 1024;
}  // namespace

struct EpmdServer::State : std::enable_shared_from_this<EpmdServer::State> {
  State(asio::any_io_executor e, std::string owner_name)
      : ex(e), acceptor(e), owner(std::move(owner_name)), listener{"epmd", owner, ListenerLimits{kMaxConnections, 256, 64}} {}
  asio::any_io_executor ex;
  tcp::acceptor acceptor;
  std::string owner;
  Listener listener;
  std::uint16_t port = 0;
  mutable std::mutex mu;
  std::map<std::string, NodeEntry> nodes;
  std::uint32_t next_creation = std::random_device{}() | 1;
  std::vector<std::weak_ptr<Connection>> open;  // registrations, closed on stop()

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<Connection> conn);
  asio::awaitable<Result<Bytes, std::string>> read_request(tcp::socket& sock);
  void refuse(const std::string& source, const std::string& reason);
};


asio::awaitable<void> EpmdServer::State::accept_loop() {
  auto self = shared_from_this();
  co_await listener.accept_loop(acceptor, [this](std::shared_ptr<Connection> c) {
    asio::co_spawn(ex, serve(std::move(c)), asio::detached);
  });
}

// Reads one request (2-byte length, then the body) within kRequestTimeout.
asio::awaitable<Result<Bytes, std::string>> EpmdServer::State::read_request(tcp::socket& sock) {
  asio::steady_timer timer(ex, kRequestTimeout);
  auto read = [&]() -> asio::awaitable<Result<Bytes, std::string>> {
    asio::error_code ec;
    std::array<std::uint8_t, 2> lenb;
    co_await asio::async_read(sock, asio::buffer(lenb), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return unexpected(ec == asio::error::eof ? std::string("closed before a request") : ec.message());
    const std::size_t len = get16(lenb.data());
    if (len == 0 || len > kMaxRequest) co_return unexpected("request length " + std::to_string(len));
    Bytes req(len);
    co_await asio::async_read(sock, asio::buffer(req), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return unexpected("truncated request: " + ec.message());
    co_return req;
  };
  auto r = co_await (read() || timer.async_wait(use_awaitable));
  if (r.index() == 1) co_return unexpected(std::string("no request within ") + std::to_string(kRequestTimeout.count()) + " ms");
  co_return std::move(std::get<0>(r));
}

void EpmdServer::State::refuse(const std::string& source, const std::string& reason) {
  log::limited(log::Level::Warn, owner, "epmd_request_refused", source + " " + log::reason_class(reason),
               {{"source", source}, {"reason", reason}});
}

// A connection stays pending in the listener (the oldest gives way in a flood) until it holds a
// registration.
asio::awaitable<void> EpmdServer::State::serve(std::shared_ptr<Connection> conn) {
  auto self = shared_from_this();
  tcp::socket* sock = &conn->socket();
  const std::string& source = conn->source();
  auto request = co_await read_request(*sock);
  if (!request) {
    refuse(source, request.error());
    co_return;
  }
  Bytes& req = *request;
  asio::error_code ec;

  switch (req[0]) {
    case 120: {  // ALIVE2_REQ
      // As OTP's epmd: only a node on this host may register (a remote one could hijack a name).
      asio::error_code peer_ec;
      const auto peer = sock->remote_endpoint(peer_ec);
      if (peer_ec || !peer.address().is_loopback()) {
        refuse(source, "ALIVE2 registration from a non-loopback address");
        co_return;
      }
      auto parsed = parse_alive2(req);
      if (!parsed) {
        refuse(source, parsed.error());
        co_return;
      }
      const NodeEntry e = std::move(*parsed);
      std::uint32_t creation = 0;
      bool ok = false;
      {
        std::lock_guard lock(mu);
        if (!nodes.count(e.name)) {
          open.push_back(conn);
          nodes.emplace(e.name, e);
          creation = next_creation++;
          if (next_creation == 0) next_creation = 1;
          ok = true;
        }
      }
      Bytes resp{118, static_cast<std::uint8_t>(ok ? 0 : 1)};
      put32(resp, creation);
      co_await asio::async_write(*sock, asio::buffer(resp), asio::redirect_error(use_awaitable, ec));
      if (!ok || ec) co_return;
      conn->settle();
      // Registered while this connection stays open.
      std::array<std::uint8_t, 64> sink;
      while (!ec) co_await sock->async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
      std::lock_guard lock(mu);
      nodes.erase(e.name);
      co_return;
    }
    case 122: {  // PORT_PLEASE2_REQ
      const std::string name(reinterpret_cast<const char*>(&req[1]), req.size() - 1);
      Bytes resp{119};
      {
        std::lock_guard lock(mu);
        auto it = nodes.find(name);
        if (it == nodes.end()) {
          resp.push_back(1);
        } else {
          resp.push_back(0);
          put_node_entry(resp, it->second);
        }
      }
      co_await asio::async_write(*sock, asio::buffer(resp), asio::redirect_error(use_awaitable, ec));
      co_return;
    }
    case 110:    // NAMES_REQ
    case 100: {  // DUMP_REQ
      Bytes resp;
      put32(resp, port);
      std::string text;
      {
        std::lock_guard lock(mu);
        for (const auto& [name, e] : nodes) {
          if (req[0] == 110) text += "name " + name + " at port " + std::to_string(e.port) + "\n";
          else text += "active name     <" + name + "> at port " + std::to_string(e.port) + "\n";
        }
      }
      resp.insert(resp.end(), text.begin(), text.end());
      co_await asio::async_write(*sock, asio::buffer(resp), asio::redirect_error(use_awaitable, ec));
      co_return;
    }
    default:  // KILL_REQ, STOP_REQ and unknown requests: refused by closing
      refuse(source, "request type " + std::to_string(req[0]) + " not served");
      co_return;
  }
}

Result<NodeEntry, std::string> parse_alive2(std::span<const std::uint8_t> req) {
  if (req.size() < 13 || req[0] != 120) return unexpected(std::string("malformed ALIVE2 request"));
  auto e = parse_node_entry(req.subspan(1), true);
  if (!e) return unexpected("malformed ALIVE2 request: " + e.error());
  if (e->name.empty()) return unexpected(std::string("malformed ALIVE2 request: name"));
  return e;
}

std::vector<std::uint8_t> alive2_request(const NodeEntry& e) {
  Bytes b{120};
  put_node_entry(b, e);
  return b;
}

EpmdServer::EpmdServer(asio::any_io_executor ex, std::string owner)
    : state_(std::make_shared<State>(ex, std::move(owner))) {}
EpmdServer::~EpmdServer() { stop(); }

Result<std::uint16_t, std::string> EpmdServer::start(std::uint16_t port, const std::string& bind) {
  asio::error_code ec;
  tcp::endpoint ep(tcp::v4(), port);
  if (!bind.empty()) {
    const auto addr = asio::ip::make_address(bind, ec);
    if (ec) return unexpected("bad EPMD bind address '" + bind + "': " + ec.message());
    ep = tcp::endpoint(addr, port);
  }
  state_->acceptor.open(ep.protocol(), ec);
  if (!ec && ep.protocol() == tcp::v6()) state_->acceptor.set_option(asio::ip::v6_only(false), ec);
  if (!ec) state_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) state_->acceptor.bind(ep, ec);
  if (!ec) state_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    state_->acceptor.close();
    return unexpected("cannot listen on EPMD port " + std::to_string(port) + ": " + ec.message());
  }
  state_->port = state_->acceptor.local_endpoint().port();
  asio::co_spawn(state_->ex, state_->accept_loop(), asio::detached);
  return state_->port;
}

void EpmdServer::stop() {
  auto st = state_;
  asio::post(st->ex, [st] {
    asio::error_code ec;
    st->acceptor.close(ec);
    std::lock_guard lock(st->mu);
    for (auto& w : st->open)
      if (auto c = w.lock()) c->socket().close(ec);
    st->open.clear();
  });
}

std::vector<NodeEntry> EpmdServer::nodes() const {
  std::lock_guard lock(state_->mu);
  std::vector<NodeEntry> out;
  for (const auto& [name, e] : state_->nodes) out.push_back(e);
  return out;
}

}  // namespace hypha::net
