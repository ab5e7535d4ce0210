// What every listening socket of a node shares (distribution, EPMD, text servers): an accept loop
// that cannot be turned against the node, and who a connection comes from, for logs and limits.
//
// - Descriptors: a listener takes at most its own limit of connections at once, and all
//   listeners of the process together stop short of the descriptor limit (RLIMIT_NOFILE) by a
//   reserve, so the node can still open its own outgoing connections (and files) while flooded.
//   A connection past either limit is accepted and closed at once (so the kernel's backlog does
//   not fill with it), with a rate-limited log line.
// - When accept() itself fails for want of descriptors (EMFILE, ENFILE) or memory, the loop
//   backs off (10 ms doubling to 1 s) instead of retrying at once, and logs once per episode.
//
// Thread-safety: Admission tokens may be released on any thread; run accept_loop on the
// acceptor's executor only.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <atomic>
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

// One accepted connection's place in its listener's count (and the process's); released when
// the last copy goes.
class Admission {
 public:
  Admission() = default;
  explicit operator bool() const noexcept { return slot_ != nullptr; }

 private:
  friend class Listener;
  std::shared_ptr<void> slot_;
};

class Listener {
 public:
  // `name` appears in log lines (distribution, epmd, kv); `node` is the node's name for them.
  Listener(std::string name, std::string node, std::size_t max_connections);
  std::size_t open() const noexcept { return open_->load(); }
  std::size_t max_connections() const noexcept { return max_; }

  using Serve = std::function<void(asio::ip::tcp::socket, Admission)>;
  // Accepts until the acceptor is closed; each connection within the limits goes to `serve`.
  asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, Serve serve);

 private:
  Admission admit();
  std::string name_, node_;
  std::size_t max_;
  std::shared_ptr<std::atomic<std::size_t>> open_ = std::make_shared<std::atomic<std::size_t>>(0);
};

}  // namespace hypha::net
