#include "hypha/net/listener.hpp"

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <list>
#include <mutex>
#include <vector>

#include "hypha/base/log.hpp"
#include "hypha/base/metrics.hpp"

namespace hypha::net {

namespace {
std::atomic<std::size_t> g_accepted{0};
// Every listener's state, for evictions across listeners: descriptors are the process's.
std::mutex g_listeners_mu;
std::vector<std::weak_ptr<Connection::State>> g_listeners;

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

struct Connection::State {
  std::string name, node;
  ListenerLimits limits;
  // hypha_listener_*_total{node, listener}, in the metrics registry
  metrics::Counter* refused = nullptr;
  metrics::Counter* evicted = nullptr;
  metrics::Counter* accept_failures = nullptr;
  std::mutex mu;
  std::size_t open = 0;             // under mu
  std::list<Connection*> pending;   // under mu, oldest first
};

std::string source_of(const asio::ip::tcp::socket& sock) {
  asio::error_code ec;
  const auto ep = sock.remote_endpoint(ec);
  return ec ? std::string("unknown") : ep.address().to_string();
}

std::size_t descriptor_reserve() { return std::max<std::size_t>(32, soft_descriptor_limit() / 8); }
std::size_t accepted_connections() { return g_accepted.load(); }

Connection::Connection(asio::ip::tcp::socket sock, std::string source, std::shared_ptr<State> st)
    : sock_(std::move(sock)), source_(std::move(source)), st_(std::move(st)) {}

// Leaves the lists before the socket (a member) closes: an eviction never reaches a descriptor
// that was closed and maybe reused.
Connection::~Connection() {
  {
    std::lock_guard lock(st_->mu);
    if (pending_) st_->pending.remove(this);
    --st_->open;
  }
  g_accepted.fetch_sub(1);
}

void Connection::settle() {
  std::lock_guard lock(st_->mu);
  if (!std::exchange(pending_, false)) return;
  st_->pending.remove(this);
}

bool Connection::evicted() const {
  std::lock_guard lock(st_->mu);
  return evicted_;
}

Listener::Listener(std::string name, std::string node, ListenerLimits limits)
    : st_(std::make_shared<Connection::State>()) {
  st_->name = std::move(name);
  st_->node = std::move(node);
  st_->limits = limits;
  const metrics::Labels labels{{"node", st_->node}, {"listener", st_->name}};
  st_->refused = &metrics::counter("hypha_listener_refused_total",
                                   "Connections a listener closed at once: its limits were reached and none could give way", labels);
  st_->evicted = &metrics::counter("hypha_listener_evicted_total",
                                   "Unsettled connections closed to make room for newer ones", labels);
  st_->accept_failures = &metrics::counter("hypha_listener_accept_failures_total",
                                           "accept() calls that failed (EMFILE, ENFILE, ENOMEM, ...)", labels);
  std::lock_guard lock(g_listeners_mu);
  std::erase_if(g_listeners, [](const auto& w) { return w.expired(); });
  g_listeners.push_back(st_);
}

std::size_t Listener::open() const {
  std::lock_guard lock(st_->mu);
  return st_->open;
}


struct ListenerAccess {
  static std::string evict(Connection::State& st, std::list<Connection*>::iterator it) {
    Connection* v = *it;
    v->evicted_ = true;
    v->pending_ = false;
    ::shutdown(v->sock_.native_handle(), SHUT_RDWR);  // it closes (and leaves the count) when its owner ends
    st.pending.erase(it);
    st.evicted->add();
    return v->source_;
  }
  static std::chrono::steady_clock::time_point since(const Connection* c) { return c->since_; }
  static const std::string& source(const Connection* c) { return c->source_; }
};

namespace {
// Under st.mu: shuts the pending connection `it` down and takes it off the list.
std::string evict_locked(Connection::State& st, std::list<Connection*>::iterator it) {
  return ListenerAccess::evict(st, it);
}

// Near the descriptor limit with nothing of its own to give way: the oldest pending connection
// of another listener of the process gives way (a flood on one port must not keep the node's
// other listeners from accepting). Returns "listener source" of the evicted one, or "".
std::string evict_oldest_elsewhere(const Connection::State* except) {
  std::vector<std::shared_ptr<Connection::State>> all;
  {
    std::lock_guard lock(g_listeners_mu);
    for (auto& w : g_listeners)
      if (auto st = w.lock(); st && st.get() != except) all.push_back(std::move(st));
  }
  std::shared_ptr<Connection::State> oldest;
  std::chrono::steady_clock::time_point when = std::chrono::steady_clock::time_point::max();
  for (auto& st : all) {
    std::lock_guard lock(st->mu);
    if (!st->pending.empty() && ListenerAccess::since(st->pending.front()) < when) {
      when = ListenerAccess::since(st->pending.front());
      oldest = st;
    }
  }
  if (!oldest) return {};
  std::lock_guard lock(oldest->mu);
  if (oldest->pending.empty()) return {};
  return oldest->name + " " + evict_locked(*oldest, oldest->pending.begin());
}
}  // namespace

std::shared_ptr<Connection> Listener::admit(asio::ip::tcp::socket sock) {
  auto& st = *st_;
  const std::string source = source_of(sock);
  // Descriptors are handed out lowest first, so an accepted one numbered N means N are open.
  const std::size_t limit = soft_descriptor_limit(), reserve = descriptor_reserve();
  const bool descriptors_low = g_accepted.load() + reserve >= limit ||
                               static_cast<std::size_t>(sock.native_handle()) + reserve >= limit;
  std::string why, evicted;
  bool room = true;
  {
    std::lock_guard lock(st.mu);
    const bool full = st.open >= st.limits.max_connections || descriptors_low;
    const auto same_source = static_cast<std::size_t>(std::count_if(
        st.pending.begin(), st.pending.end(), [&](Connection* c) { return ListenerAccess::source(c) == source; }));
    auto victim = st.pending.end();
    if (same_source >= st.limits.max_pending_per_source)
      victim = std::find_if(st.pending.begin(), st.pending.end(), [&](Connection* c) { return ListenerAccess::source(c) == source; });
    else if (st.pending.size() >= st.limits.max_pending || full)
      victim = st.pending.begin();
    if (victim != st.pending.end()) {
      evicted = st.name + " " + evict_locked(st, victim);
      why = full ? "connection limit: the oldest unsettled connection gave way"
                 : same_source >= st.limits.max_pending_per_source
                     ? "too many unsettled connections from one source: the oldest gave way"
                     : "too many unsettled connections: the oldest gave way";
    } else if (full) {
      room = false;
      why = "connection limit (" + std::to_string(st.limits.max_connections) + " on this listener, " +
            std::to_string(g_accepted.load()) + " accepted in all, descriptor limit " + std::to_string(limit) + ")";
    }
  }
  if (!room && descriptors_low && st.open < st.limits.max_connections) {
    evicted = evict_oldest_elsewhere(st_.get());
    room = !evicted.empty();
    if (room) why = "descriptors low: the process's oldest unsettled connection gave way";
  }
  if (!evicted.empty()) {
    const auto space = evicted.find(' ');
    log::limited(log::Level::Warn, st.node, "connection_evicted", evicted,
                 {{"listener", evicted.substr(0, space)}, {"source", evicted.substr(space + 1)}, {"reason", why}});
  }
  if (!room) {
    st.refused->add();
    log::limited(log::Level::Warn, st.node, "connection_refused", st.name + " " + source + " full",
                 {{"listener", st.name}, {"source", source}, {"reason", why}});
    asio::error_code ignored;
    sock.close(ignored);
    return nullptr;
  }
  std::lock_guard lock(st.mu);
  ++st.open;
  g_accepted.fetch_add(1);
  auto c = std::shared_ptr<Connection>(new Connection(std::move(sock), source, st_));
  st.pending.push_back(c.get());
  return c;
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
      st_->accept_failures->add();
      log::limited(log::Level::Warn, st_->node, "accept_failed", st_->name + " " + ec.message(),
                   {{"listener", st_->name}, {"reason", ec.message()},
                    {"effect", exhausted ? "accepting paused, then retried" : "retried"}});
      asio::steady_timer pause(acceptor.get_executor(), exhausted ? backoff : 10ms);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (exhausted) backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
      continue;
    }
    backoff = 10ms;
    if (auto c = admit(std::move(sock))) serve(std::move(c));
  }
}

}  // namespace hypha::net
