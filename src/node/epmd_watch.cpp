// The node and EPMD: serving the port when nobody does (the embedded EPMD), and watching the
// registration, registering again with whichever EPMD serves the port after one goes away.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>


#include "hypha/base/log.hpp"
#include "node_impl.hpp"

namespace hypha {

using asio::use_awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

// ---------------------------------------------------------------------------------- EPMD

void Node::Impl::serve_epmd_if_free() {
  auto server = std::make_unique<net::EpmdServer>(io.get_executor(), opts.name);
  if (!server->start(epmd, opts.epmd_bind).ok()) return;  // taken: another EPMD serves it
  epmd_server = std::move(server);
  serving_epmd = true;
}

asio::awaitable<void> Node::Impl::watch_epmd() {
  using namespace std::chrono_literals;
  for (;;) {
    // EPMD sends nothing after ALIVE2_RESP: a read that ends means it went away.
    std::array<std::uint8_t, 1> byte{};
    asio::error_code ec;
    if (!registration.socket) co_return;
    co_await registration.socket->async_read_some(asio::buffer(byte), asio::redirect_error(asio::use_awaitable, ec));
    if (stopping || ec == asio::error::operation_aborted) co_return;
    log_event(1, "epmd_lost", {{"epmd_port", std::to_string(epmd)}});
    // Several nodes may race for the port: one serves it, the others register with that one.
    auto delay = 50ms;
    asio::steady_timer timer(io);
    for (;;) {
      if (opts.embedded_epmd && !epmd_server) serve_epmd_if_free();
      auto reg = co_await net::epmd_register(alive, listen_port, opts.hidden, epmd);
      if (stopping) co_return;
      if (reg) {
        registration.socket = std::move(reg->socket);  // our creation stays: pids carry it
        log_event(2, "epmd_registered", {{"epmd", serving_epmd ? "embedded" : "external"}});
        break;
      }
      timer.expires_after(delay);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (stopping) co_return;
      delay = std::min<std::chrono::milliseconds>(delay * 2, 2s);
    }
  }
}

}  // namespace hypha
