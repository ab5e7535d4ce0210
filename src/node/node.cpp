// Node: its lifecycle (start, stop) and the public API. The connection table is connections.cpp,
// EPMD epmd_watch.cpp, the distribution protocol dist.cpp; the services a node runs (net_kernel,
// rex, ...) are its kernel (otp/kernel.hpp).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <unistd.h>

#include <future>

#include "hypha/net/digest.hpp"
#include "hypha/net/flags.hpp"
#include "hypha/base/log.hpp"
#include "hypha/process/gen.hpp"
#include "node_impl.hpp"
#include "sim_impl.hpp"

namespace hypha {

using asio::use_awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

std::string short_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string h(buf);
  if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
  return h;
}

}  // namespace

void Node::Impl::log_event(int level, std::string_view name,
                           std::initializer_list<std::pair<std::string_view, std::string_view>> f) {
  log::event(static_cast<log::Level>(level), self_name.text(), name, f);
}

Node::Impl::Impl(NodeOptions o) : opts(std::move(o)) {}

Node::Impl::~Impl() { stop(); }

Result<bool, std::string> Node::Impl::start() {
  if (opts.name.empty()) return unexpected(std::string("a node needs a name"));
  const auto at = opts.name.find('@');
  alive = opts.name.substr(0, at);
  host = at == std::string::npos ? short_hostname() : opts.name.substr(at + 1);
  if (alive.empty() || host.empty()) return unexpected("bad node name '" + opts.name + "'");
  auto name = Atom::make(alive + "@" + host, Atom::Source::Program);
  if (!name) return unexpected("bad node name: " + name.error());
  self_name = *name;
  if (opts.cookie.empty()) {
    auto c = default_cookie();
    if (!c) return unexpected(c.error());
    cookie = *c;
  } else {
    cookie = opts.cookie;
  }
  if (opts.network) return start_simulated();
  epmd = opts.epmd_port ? opts.epmd_port : net::epmd_port();
  work.emplace(io.get_executor());
  io_thread = std::thread([this] {
    while (!io_thread_stop.load() && !io.stopped()) poller.run_one_guarded(false);
  });

  if (opts.embedded_epmd) serve_epmd_if_free();

  asio::error_code ec;
  tcp::endpoint ep(tcp::v4(), opts.listen_port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unexpected("cannot listen for distribution: " + ec.message());
  listen_port = acceptor.local_endpoint().port();
  listener.emplace("distribution", std::string(self_name.text()),
                   net::ListenerLimits{opts.max_connections, opts.max_handshakes, opts.max_handshakes_per_source});

  if (opts.publish) {
    auto register_once = [&] {
      return asio::co_spawn(io, net::epmd_register(alive, listen_port, opts.hidden, epmd), asio::use_future).get();
    };
    auto reg = register_once();
    // The EPMD that held the port may be gone since (a node serving it embedded stopped while
    // this one started): serve it here if the port is free now, and try again.
    for (int attempt = 1; !reg && opts.embedded_epmd && !epmd_server && attempt <= 3; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
      serve_epmd_if_free();
      reg = register_once();
    }
    if (!reg) return unexpected(reg.error());
    registration = std::move(*reg);
    creation_ = registration.creation;
  } else {
    creation_ = net::new_challenge() | 1;  // any non-zero creation will do for an unpublished node
  }

  start_runtime();

  asio::co_spawn(io, accept_loop(), asio::detached);
  asio::co_spawn(io, flush_log_summaries(), asio::detached);
  if (opts.publish) asio::co_spawn(io, watch_epmd(), asio::detached);
  log_event(2, "node_started", {{"port", std::to_string(listen_port)},
                               {"epmd", serving_epmd ? "embedded" : "external"},
                               {"creation", std::to_string(creation_)}});
  return true;
}

void Node::Impl::start_runtime() {
  hs = net::HandshakeConfig{std::string(self_name.text()), cookie,
                            opts.hidden ? (net::dflag::kOurs & ~net::dflag::kPublished) : net::dflag::kOurs,
                            creation_};
  // The atoms of the paths that lose a peer exist before any peer can fill the table.
  for (const char* name : {"nodeup", "nodedown", "noconnection", "abandoned", "badarg", "badopt", "yes", "no"}) (void)a(name);
  rt = std::make_unique<Runtime>(RuntimeOptions{.node = self_name,
                                                .creation = creation_,
                                                .threads = opts.threads,
                                                .idle_spin = opts.idle_spin,
                                                .clock = opts.network ? opts.network->clock() : nullptr});
  inbound().set_remote(this);
  if (opts.workers_poll_io) {  // hand the io_context over to the workers
    if (io_thread.joinable()) {
      io_thread_stop = true;
      asio::post(io, [] {});
      io_thread.join();
    }
    inbound().set_io_poller(&poller);
    workers_poll = true;
  }
}

// On a simulated network: no listener and no EPMD; the network gives the creation and makes the
// connections (sim.cpp).
Result<bool, std::string> Node::Impl::start_simulated() {
  work.emplace(io.get_executor());
  auto creation = opts.network->impl().reserve(self_name);
  if (!creation) return unexpected(creation.error());
  creation_ = *creation;
  start_runtime();
  opts.network->impl().attach(this);
  asio::co_spawn(io, flush_log_summaries(), asio::detached);
  log_event(2, "node_started", {{"network", "simulated"}, {"creation", std::to_string(creation_)}});
  return true;
}

void Node::Impl::stop() {
  std::vector<std::shared_ptr<Peer>> all;
  {
    std::lock_guard lock(mu);
    if (stopped) return;
    stopped = true;
    for (auto& [n, p] : peers) all.push_back(p);
  }
  stopping = true;
  // Leave cleanly: what is queued goes out, then each peer sees the connection close.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& p : all) {
    if (!p->conn) continue;
    p->conn->close_after_flush("node stopping");
    p->conn->closed_future().wait_until(deadline);
  }
  // A peer that does not read in time is cut off: the queue is dropped, and a process held in a
  // send to it is let go.
  for (auto& p : all) {
    if (!p->conn || p->conn->closed()) continue;
    p->conn->close("node stopping: peer not reading");
    p->conn->closed_future().wait_for(std::chrono::seconds(1));
  }
  if (io_thread.joinable() || workers_poll) {
    asio::post(io, [this] {
      asio::error_code ec;
      acceptor.close(ec);
      if (registration.socket) registration.socket->close(ec);
      if (epmd_server) epmd_server->stop();
    });
    auto drained = asio::co_spawn(io, []() -> asio::awaitable<void> { co_return; }, asio::use_future);
    drained.wait();
  }
  // The I/O thread (or the simulated network) ends before the runtime: its callbacks deliver
  // into the runtime.
  if (opts.network && rt) opts.network->impl().detach(this);
  if (rt) inbound().set_remote(nullptr);
  if (workers_poll) inbound().set_io_poller(nullptr);
  workers_poll = false;
  work.reset();
  io.stop();
  if (io_thread.joinable()) io_thread.join();
  // Not rt.reset(), which empties `rt` before the runtime's destructor runs: that destructor
  // stops the workers first, and until it has, a process may still call Node::runtime().
  if (rt) {
    delete rt.get();
    (void)rt.release();
  }
}

// Rate-limited log lines hold counts back; this tells them once their period is over, so the
// size of a flood that stopped is logged too.
asio::awaitable<void> Node::Impl::flush_log_summaries() {
  asio::steady_timer timer(io);
  while (!stopping) {
    timer.expires_after(std::chrono::milliseconds(100));
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    log::flush_suppressed();
  }
}

// ---------------------------------------------------------------------------------- public API

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { stop(); }

Result<std::unique_ptr<Node>, std::string> Node::start(NodeOptions opts) {
  auto impl = std::make_unique<Impl>(std::move(opts));
  auto started = impl->start();
  if (!started) return unexpected(started.error());
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

void Node::stop() {
  if (impl_) impl_->stop();
}

Runtime& Node::runtime() noexcept { return *impl_->rt; }
Atom Node::name() const noexcept { return impl_->self_name; }
std::uint32_t Node::creation() const noexcept { return impl_->creation_; }
std::uint16_t Node::port() const noexcept { return impl_->listen_port; }
std::chrono::milliseconds Node::detect() const noexcept { return impl_->opts.detect; }
asio::io_context& Node::io_context() noexcept { return impl_->io; }
bool Node::serves_epmd() const noexcept { return impl_->serving_epmd; }

Result<bool, std::string> Node::connect(Atom node, std::chrono::milliseconds timeout) {
  if (node == impl_->self_name) return true;
  auto done = std::make_shared<std::promise<bool>>();
  auto fut = done->get_future();
  impl_->ensure_connection(node, [done](bool ok) { done->set_value(ok); });
  if (fut.wait_for(timeout) != std::future_status::ready)
    return unexpected("connecting to " + std::string(node.text()) + " timed out");
  if (!fut.get()) return unexpected("cannot connect to " + std::string(node.text()));
  return true;
}

void Node::connect_async(Atom node, std::function<void(bool)> done) {
  if (node == impl_->self_name) {
    if (done) done(true);
    return;
  }
  impl_->ensure_connection(node, std::move(done));
}

void Node::disconnect(Atom node) {
  std::shared_ptr<net::FrameLink> conn;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->peers.find(node);
    if (it != impl_->peers.end()) conn = it->second->conn;
  }
  if (conn) conn->close("disconnected");
}

std::vector<Atom> Node::nodes(bool include_hidden) const {
  std::vector<Atom> out;
  std::lock_guard lock(impl_->mu);
  for (const auto& [name, p] : impl_->peers)
    if (p->state == Peer::State::Up && (include_hidden || (p->flags & net::dflag::kPublished))) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<PeerInfo> Node::peers() const {
  std::vector<PeerInfo> out;
  std::lock_guard lock(impl_->mu);
  for (const auto& [name, p] : impl_->peers) {
    if (p->state != Peer::State::Up || !p->conn) continue;
    const net::ConnectionStats st = p->conn->stats();
    PeerInfo info;
    info.name = name;
    info.hidden = !(p->flags & net::dflag::kPublished);
    info.since = p->since;
    info.creation = p->creation;
    info.hypha = p->hypha;
    info.detect = impl_->detect_time(*p);
    info.messages_in = st.messages_in;
    info.messages_out = st.messages_out;
    info.bytes_in = st.bytes_in;
    info.bytes_out = st.bytes_out;
    info.send_queue_bytes = p->conn->queued_bytes();
    out.push_back(info);
  }
  std::sort(out.begin(), out.end(), [](const PeerInfo& x, const PeerInfo& y) { return x.name < y.name; });
  return out;
}

std::size_t Node::send_queue_bytes(Atom node) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->peers.find(node);
  if (it == impl_->peers.end()) return 0;
  if (it->second->conn) return it->second->conn->queued_bytes();
  return it->second->queued_bytes;
}

bool Node::wait_send_queue(Atom node, std::size_t bytes, std::chrono::milliseconds timeout) {
  std::shared_ptr<net::FrameLink> conn;
  impl_->with_peer(node, [&](Peer& p) { conn = p.conn; });
  if (!conn) return false;
  return conn->wait_queue_below(bytes, std::chrono::steady_clock::now() + timeout);
}

void Node::monitor_nodes(const Pid& subscriber, bool on) {
  std::lock_guard lock(impl_->mu);
  auto& subs = impl_->node_subscribers;
  subs.erase(std::remove(subs.begin(), subs.end(), subscriber), subs.end());
  if (on) subs.push_back(subscriber);
}

void Node::monitor_node(const Pid& subscriber, Atom node) {
  impl_->ensure_connection(node, {});
  bool added = false;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->peers.find(node);
    if (it != impl_->peers.end()) {
      it->second->node_monitors.push_back(subscriber);
      added = true;
    }
  }
  if (!added) impl_->inbound().deliver(subscriber, Term::tuple({Term(a("nodedown")), Term(node)}));
}

bool Node::ping(Atom node, std::chrono::milliseconds timeout) {
  if (node == impl_->self_name) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!connect(node, timeout)) return false;
  Mailbox me = impl_->rt->mailbox();
  const Ref tag = impl_->rt->make_ref();
  const Term call = gen::call_message(me.pid(), Term(tag), Term::tuple({Term(a("is_auth")), Term(impl_->self_name)}));
  const Pid from = me.pid();
  impl_->send_name(&from, a("net_kernel"), node, call);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  auto reply = me.receive(
      [&, tag_term = Term(tag)](const Term& m) { return gen::is_reply(m, tag_term); },
      std::max(left, std::chrono::milliseconds(0)));
  return reply && (*reply)[1].is_atom(a("yes"));
}

}  // namespace hypha
