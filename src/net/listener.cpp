#include "hypha/net/listener.hpp"

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "hypha/base/log.hpp"

namespace hypha::net {

namespace {
std::atomic<std::size_t> g_accepted{0};

std::size_t soft_descriptor_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 1u << 20;
  return static_cast<std::size_t>(rl.rlim_cur);
}

// Out of descriptors or memory: retrying at once would spin.
bool resource_exhausted(const asio::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
         ec.value() == ENFILE;
}
}  // namespace

std::string source_of(const asio::ip::tcp::socket& sock) {
  asio::error_code ec;
  const auto ep = sock.remote_endpoint(ec);
  return ec ? std::string("unknown") : ep.address().to_string();
}

std::size_t descriptor_reserve() { return std::max<std::size_t>(32, soft_descriptor_limit() / 8); }
std::size_t accepted_connections() { return g_accepted.load(); }

Listener::Listener(std::string name, std::string node, std::size_t max_connections)
    : name_(std::move(name)), node_(std::move(node)), max_(max_connections) {}

Admission Listener::admit() {
  // Checked now, not cached: a test or an operator may change the limit while the node runs.
  const std::size_t limit = soft_descriptor_limit();
  const std::size_t process_cap = limit > descriptor_reserve() ? limit - descriptor_reserve() : 0;
  if (open_->load() >= max_ || g_accepted.load() >= process_cap) return {};
  struct Slot {
    std::shared_ptr<std::atomic<std::size_t>> open;
    explicit Slot(std::shared_ptr<std::atomic<std::size_t>> o) : open(std::move(o)) {
      open->fetch_add(1);
      g_accepted.fetch_add(1);
    }
    ~Slot() {
      open->fetch_sub(1);
      g_accepted.fetch_sub(1);
    }
  };
  Admission a;
  a.slot_ = std::make_shared<Slot>(open_);
  return a;
}

asio::awaitable<void> Listener::accept_loop(asio::ip::tcp::acceptor& acceptor, Serve serve) {
  using namespace std::chrono_literals;
  auto backoff = 10ms;
  for (;;) {
    asio::error_code ec;
    asio::ip::tcp::socket sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      const bool exhausted = resource_exhausted(ec);
      log::limited(log::Level::Warn, node_, "accept_failed", name_ + " " + ec.message(),
                   {{"listener", name_}, {"reason", ec.message()},
                    {"effect", exhausted ? "accepting paused, then retried" : "retried"}});
      asio::steady_timer pause(acceptor.get_executor(), exhausted ? backoff : 10ms);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (exhausted) backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
      continue;
    }
    backoff = 10ms;
    Admission a = admit();
    if (!a) {
      const std::string source = source_of(sock);
      log::limited(log::Level::Warn, node_, "connection_refused", name_ + " " + source + " full",
                   {{"listener", name_}, {"source", source},
                    {"reason", "connection limit (" + std::to_string(max_) + " on this listener, " +
                                   std::to_string(accepted_connections()) + " accepted in all)"}});
      asio::error_code ignored;
      sock.close(ignored);
      continue;
    }
    serve(std::move(sock), std::move(a));
  }
}

}  // namespace hypha::net
