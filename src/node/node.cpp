// Node: start and stop, EPMD, accepting and making connections, the public API. The services a
// node runs (net_kernel, rex, ...) are its kernel (otp/kernel.hpp).
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <future>

#include "hypha/net/digest.hpp"
#include "hypha/net/flags.hpp"
#include "hypha/net/listener.hpp"
#include "hypha/base/log.hpp"
#include "hypha/process/gen.hpp"
#include "node_impl.hpp"

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

  hs = net::HandshakeConfig{std::string(self_name.text()), cookie,
                            opts.hidden ? (net::dflag::kOurs & ~net::dflag::kPublished) : net::dflag::kOurs,
                            creation_};
  // The atoms of the paths that lose a peer exist before any peer can fill the table.
  for (const char* name : {"nodeup", "nodedown", "noconnection", "abandoned", "badarg", "badopt", "yes", "no"}) (void)a(name);
  rt = std::make_unique<Runtime>(RuntimeOptions{.node = self_name, .creation = creation_, .threads = opts.threads, .idle_spin = opts.idle_spin});
  inbound().set_remote(this);
  if (opts.workers_poll_io) {  // hand the io_context over to the workers
    io_thread_stop = true;
    asio::post(io, [] {});
    io_thread.join();
    inbound().set_io_poller(&poller);
    workers_poll = true;
  }


  asio::co_spawn(io, accept_loop(), asio::detached);
  asio::co_spawn(io, flush_log_summaries(), asio::detached);
  if (opts.publish) asio::co_spawn(io, watch_epmd(), asio::detached);
  log_event(2, "node_started", {{"port", std::to_string(listen_port)},
                               {"epmd", serving_epmd ? "embedded" : "external"},
                               {"creation", std::to_string(creation_)}});
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
  // The I/O thread ends before the runtime: its callbacks deliver into the runtime.
  if (rt) inbound().set_remote(nullptr);
  if (workers_poll) inbound().set_io_poller(nullptr);
  workers_poll = false;
  work.reset();
  io.stop();
  if (io_thread.joinable()) io_thread.join();
  rt.reset();
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

// ---------------------------------------------------------------------------------- connecting

Peer& Node::Impl::peer_locked(Atom node) {
  auto& p = peers[node];
  if (!p) {
    p = std::make_shared<Peer>();
    p->name = node;
    p->attempt = next_attempt++;
    asio::co_spawn(io, connect_attempt(node, p->attempt), asio::detached);
  }
  return *p;
}

void Node::Impl::ensure_connection(Atom node, std::function<void(bool)> waiter) {
  bool up = false;
  {
    std::lock_guard lock(mu);
    if (stopped) {
      if (waiter) waiter(false);
      return;
    }
    Peer& p = peer_locked(node);
    up = p.state == Peer::State::Up;
    if (!up && waiter) p.waiters.push_back(std::move(waiter));
  }
  if (up && waiter) waiter(true);
}

asio::awaitable<void> Node::Impl::connect_attempt(Atom node, std::uint64_t attempt) {
  const std::string full(node.text());
  const auto at = full.find('@');
  if (at == std::string::npos) {
    fail_attempt(node, Peer::Owner::Connecting, attempt, "not a node name");
    co_return;
  }
  const std::string peer_alive = full.substr(0, at), peer_host = full.substr(at + 1);
  auto sock = std::make_shared<tcp::socket>(io);
  auto attempt_body = [&]() -> asio::awaitable<Result<net::PeerInfo, std::string>> {
    auto entry = co_await net::epmd_port_please(peer_host, peer_alive, epmd);
    if (!entry) co_return unexpected(entry.error());
    tcp::resolver resolver(io);
    asio::error_code ec;
    auto eps = co_await resolver.async_resolve(peer_host, std::to_string(entry->port), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return unexpected("cannot resolve " + peer_host + ": " + ec.message());
    co_await asio::async_connect(*sock, eps, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return unexpected("cannot connect to " + full + ": " + ec.message());
    // "alive": the peer believes it is connected to us. Replace that connection only if we do not
    // have it up ourselves (it may be the one we just accepted from the peer's own attempt).
    auto replace_stale = [this, node] {
      bool up = false;
      with_peer(node, [&](Peer& p) { up = p.state == Peer::State::Up; });
      return !up;
    };
    auto shaken = co_await net::handshake_connect(*sock, hs, full, replace_stale);
    // Losing a simultaneous connect is routine (the peer's connection takes over): not a warning.
    if (!shaken) {
      const bool lost = shaken.error().starts_with(net::kSimultaneousLost);
      log_event(lost ? 3 : 1, "handshake_failed", {{"peer", full}, {"reason", shaken.error()}});
    }
    co_return shaken;
  };
  asio::steady_timer timer(io, opts.setup_timeout);
  auto outcome = co_await (attempt_body() || timer.async_wait(use_awaitable));
  if (outcome.index() == 1) {
    fail_attempt(node, Peer::Owner::Connecting, attempt, "connection setup timed out");
    co_return;
  }
  auto& r = std::get<0>(outcome);
  if (!r && r.error().starts_with(net::kSimultaneousLost)) {
    // Both sides connected at once and the peer's attempt wins: its connection is arriving on
    // our acceptor, which takes over this pending peer (and its queued sends and waiters).
    {
      std::lock_guard lock(mu);
      auto it = peers.find(node);
      if (it != peers.end() && it->second->state == Peer::State::Pending &&
          it->second->owner == Peer::Owner::Connecting && it->second->attempt == attempt)
        it->second->owner = Peer::Owner::Awaiting;
    }
    asio::steady_timer grace(io, opts.setup_timeout);
    asio::error_code ec;
    co_await grace.async_wait(asio::redirect_error(use_awaitable, ec));
    // A no-op when the peer's connection came (or an accept is under way with its own timeout).
    fail_attempt(node, Peer::Owner::Awaiting, 0, "the peer's simultaneous connection did not come");
    co_return;
  }
  if (!r) {
    fail_attempt(node, Peer::Owner::Connecting, attempt, r.error());
    co_return;
  }
  establish(node, std::move(*sock), *r, attempt);
}

asio::awaitable<void> Node::Impl::accept_loop() {
  co_await listener->accept_loop(acceptor, [this](std::shared_ptr<net::Connection> c) {
    asio::co_spawn(io, accept_one(std::move(c)), asio::detached);
  });
}

// The connection stays pending in the listener (so that a flood of handshakes makes the oldest
// give way) until the peer has proved the cookie; each attempt also ends after setup_timeout.
asio::awaitable<void> Node::Impl::accept_one(std::shared_ptr<net::Connection> c) {
  tcp::socket& sock = c->socket();
  asio::steady_timer timer(io, opts.setup_timeout);
  auto decide_fn = [this](const net::PeerInfo& peer) { return decide(peer); };
  auto outcome = co_await (net::handshake_accept(sock, hs, decide_fn) || timer.async_wait(use_awaitable));
  std::string failure;
  if (c->evicted()) failure = "too many unauthenticated handshakes: this one gave way";
  else if (outcome.index() == 1) failure = "handshake timed out";
  else if (!std::get<0>(outcome)) failure = std::get<0>(outcome).error();
  if (failure.empty()) {
    const net::PeerInfo info = std::get<0>(outcome).value();
    // The peer proved the cookie: only now does its name become an atom.
    auto name = Atom::make(info.name, Atom::Source::Peer);
    if (name) {
      c->settle();
      establish(*name, std::move(sock), info, 0, std::move(c));
      co_return;
    }
    failure = "cannot make the peer's name an atom: " + name.error();
  }
  log::limited(log::Level::Warn, self_name.text(), "connection_refused", c->source() + " " + log::reason_class(failure),
               {{"source", c->source()}, {"reason", failure}});
}

net::AcceptStatus Node::Impl::decide(const net::PeerInfo& info) {
  // Nothing here makes an atom or a peer entry: the peer has not proved the cookie yet, and a
  // handshake that never does must not hold the name against the real node.
  if (!net::valid_node_name(info.name)) return net::AcceptStatus::NotAllowed;
  const auto name = Atom::existing(info.name);
  std::lock_guard lock(mu);
  if (stopped) return net::AcceptStatus::NotAllowed;
  if (!name) return net::AcceptStatus::Ok;  // no atom: no peer entry either
  auto it = peers.find(*name);
  if (it == peers.end()) return net::AcceptStatus::Ok;
  const Peer& p = *it->second;
  if (p.state == Peer::State::Up) return net::AcceptStatus::Alive;
  if (p.owner != Peer::Owner::Connecting) return net::AcceptStatus::Ok;
  // Both sides are connecting: the node with the greater name keeps its own attempt (net_kernel).
  // Ours, when it gives way, is answered nok by the peer and waits for this connection.
  return self_name > *name ? net::AcceptStatus::Nok : net::AcceptStatus::OkSimultaneous;
}

void Node::Impl::establish(Atom node, tcp::socket sock, const net::PeerInfo& info, std::uint64_t attempt,
                           std::shared_ptr<net::Connection> accepted) {
  auto conn = std::make_shared<net::DistConnection>(
      std::move(sock), opts.net_ticktime,
      net::ConnectionLimits{opts.max_frame, opts.max_send_queue, opts.max_send_wait, opts.max_partial_frames});
  std::vector<std::function<void(bool)>> waiters;
  std::shared_ptr<net::DistConnection> replaced;
  {
    std::lock_guard lock(mu);
    auto it = peers.find(node);
    if (!attempt && !stopped) {
      // An authenticated accepted connection takes over what is pending for its node (our own
      // attempt that gave way, or waits for it) or replaces one the peer said is stale.
      if (it == peers.end()) {
        it = peers.emplace(node, std::make_shared<Peer>()).first;
        it->second->name = node;
      }
      if (it->second->state == Peer::State::Pending) {
        it->second->owner = Peer::Owner::Accepting;
        it->second->attempt = 0;
      }
    }
    const bool ours = it != peers.end() &&
                      (attempt ? it->second->owner == Peer::Owner::Connecting && it->second->attempt == attempt
                               : true);
    // An attempt of ours whose handshake succeeded is the connection the peer now uses (it
    // accepted it, replacing any it had, after asking us whether to): it replaces one we
    // accepted meanwhile. Dropping it instead left neither side connected (each closed the
    // connection the other kept) in a simultaneous connect that took that turn.
    if (stopped || !ours) return;  // superseded: `conn` (and its socket) just goes away
    auto& p = it->second;
    if (p->state == Peer::State::Up) replaced = p->conn;
    p->state = Peer::State::Up;
    p->since = std::chrono::system_clock::now();
    p->conn = conn;
    p->flags = info.flags;
    p->creation = info.creation;
    // What was sent while connecting goes first: queued on the connection before any sender can
    // see it up and write to it directly (each sender's messages stay in order).
    conn->preload(std::move(p->queued));
    p->queued.clear();
    p->queued_bytes = 0;
    waiters = std::move(p->waiters);
  }
  if (replaced) replaced->close("replaced by a new connection");
  auto in = std::make_shared<Inbound>();
  in->atom_budget = opts.max_new_atoms_per_peer;
  in->accepted = std::move(accepted);
  conn->start([this, node, in](std::span<const std::uint8_t> packet) { dispatch(node, packet, *in); },
              [this, node, weak = std::weak_ptr<net::DistConnection>(conn)](const std::string& reason) {
                if (auto c = weak.lock()) connection_lost(node, c, reason);
              });
  conn->flush();
  for (auto& w : waiters) w(true);
  log_event(2, "nodeup", {{"peer", node.text()}});
  notify_nodes(node, true);
}

void Node::Impl::fail_attempt(Atom node, Peer::Owner owner, std::uint64_t attempt, const std::string& reason) {
  std::shared_ptr<Peer> peer;
  {
    std::lock_guard lock(mu);
    auto it = peers.find(node);
    if (it == peers.end() || it->second->state != Peer::State::Pending || it->second->owner != owner ||
        (owner == Peer::Owner::Connecting && it->second->attempt != attempt))
      return;
    peer = it->second;
    peers.erase(it);
  }
  log_event(3, "connect_failed", {{"peer", node.text()}, {"reason", reason}});
  for (auto& w : peer->waiters) w(false);
  peer_gone(peer);
}

void Node::Impl::connection_lost(Atom node, const std::shared_ptr<net::DistConnection>& conn, const std::string& reason) {
  std::shared_ptr<Peer> peer;
  {
    std::lock_guard lock(mu);
    auto it = peers.find(node);
    if (it == peers.end() || it->second->conn != conn) return;
    peer = it->second;
    peers.erase(it);
  }
  // A connection we cut (a limit, a bad packet, a silent peer, a write error) is worth an
  // operator's look, one line per peer and cause per period; a peer that closed it (it stopped,
  // or was told to disconnect) is routine.
  if (stopping || reason == "connection closed by peer" || reason == "disconnected")
    log_event(2, "nodedown", {{"peer", node.text()}, {"reason", reason}});
  else
    log::limited(log::Level::Warn, self_name.text(), "nodedown", std::string(node.text()) + " " + log::reason_class(reason),
                 {{"peer", node.text()}, {"reason", reason}});
  peer_gone(peer);
  notify_nodes(node, false);
}

void Node::Impl::peer_gone(const std::shared_ptr<Peer>& peer) {
  if (!rt) return;
  const Term noconnection(atoms::noconnection());
  for (const auto& [local, remote] : peer->links) inbound().deliver_exit(remote, local, noconnection, true);
  for (const auto& [ref, watch] : peer->monitors_out) inbound().deliver_down(watch.first, ref, watch.second, noconnection);
  for (const auto& [ref, watch] : peer->monitors_in) inbound().deliver_demonitor(watch.first, watch.second, ref);
  const Term down = Term::tuple({Term(a("nodedown")), Term(peer->name)});
  for (const Pid& p : peer->node_monitors) inbound().deliver(p, down);
  for (const auto& [req, pending] : peer->spawns_out)
    if (!pending.abandoned)
      inbound().deliver_spawn_reply(pending.from, req, noconnection, false, false, pending.opts.wants_reply(false));
}

void Node::Impl::notify_nodes(Atom node, bool up) {
  std::vector<Pid> subs;
  {
    std::lock_guard lock(mu);
    subs = node_subscribers;
  }
  const Term msg = Term::tuple({Term(a(up ? "nodeup" : "nodedown")), Term(node)});
  for (const Pid& p : subs) inbound().deliver(p, msg);
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

void Node::disconnect(Atom node) {
  std::shared_ptr<net::DistConnection> conn;
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
    out.push_back(PeerInfo{name, !(p->flags & net::dflag::kPublished), p->since, st.messages_in, st.messages_out,
                           st.bytes_in, st.bytes_out, p->conn->queued_bytes()});
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
  std::shared_ptr<net::DistConnection> conn;
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
