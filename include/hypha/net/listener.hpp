// What every listening socket of a node shares (distribution, EPMD, text servers): an accept loop
// that cannot be turned against the node, and who a connection comes from, for logs and limits.
//
// - A connection is *pending* from its accept until its owner settles it (a distribution peer
//   that proved the cookie, an EPMD registration): pending connections are bounded in all and
//   per source address, and past a bound the oldest pending one gives way (its socket is shut
//   down, so what reads it fails at once). A flood then costs the flooder its own older
//   connections, while a real client, which settles within milliseconds, gets through.
// - Descriptors: a listener holds at most its own limit of connections, and all listeners of
//   the process together stop short of the descriptor limit (RLIMIT_NOFILE) by a reserve, so the
//   node can still open its own outgoing connections while flooded. A connection past a limit
//   takes the place of the oldest pending one (near the descriptor limit, of any listener of the
//   process), or is closed at once if none is pending.
// - When accept() itself fails for want of descriptors (EMFILE, ENFILE) or memory, the loop
//   backs off (10 ms doubling to 1 s) instead of retrying at once.
// Refusals and evictions are logged, rate-limited per listener, source and reason.
//
// Thread-safety: Connection methods may be called on any thread; run accept_loop on the
// acceptor's executor only.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace hypha::net {

// The remote address of a connected socket ("127.0.0.1"), or "unknown".
std::string source_of(const asio::ip::tcp::socket& sock);

// Descriptors the process keeps free of accepted connections: max(32, soft limit / 8).
std::size_t descriptor_reserve();
// Accepted connections open right now, over all listeners of the process.
std::size_t accepted_connections();

struct ListenerLimits {
  std::size_t max_connections = 1024;
  std::size_t max_pending = 256;
  std::size_t max_pending_per_source = 64;
};

class Listener;
struct ListenerAccess;  // the listeners' own code (listener.cpp)

// One accepted connection: its socket, and its place in its listener's counts until it goes.
class Connection {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  asio::ip::tcp::socket& socket() noexcept { return sock_; }
  const std::string& source() const noexcept { return source_; }
  // No longer pending: never evicted from now on. Call before moving the socket out.
  void settle();
  // True when the listener shut this connection down to make room.
  bool evicted() const;

  struct State;

 private:
  friend class Listener;
  friend struct ListenerAccess;
  Connection(asio::ip::tcp::socket sock, std::string source, std::shared_ptr<State> st);
  asio::ip::tcp::socket sock_;
  std::string source_;
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
  std::shared_ptr<State> st_;
  bool pending_ = true;  // under the listener's lock
  bool evicted_ = false; // under the listener's lock
};

class Listener {
 public:
  // `name` appears in log lines (distribution, epmd, kv); `node` is the node's name for them.
  Listener(std::string name, std::string node, ListenerLimits limits);
  std::size_t open() const;

  using Serve = std::function<void(std::shared_ptr<Connection>)>;
  // Accepts until the acceptor is closed; each connection admitted goes to `serve`.
  asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, Serve serve);

 private:
  std::shared_ptr<Connection> admit(asio::ip::tcp::socket sock);
  std::shared_ptr<Connection::State> st_;
};

}  // namespace hypha::net
