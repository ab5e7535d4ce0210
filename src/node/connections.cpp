// The node's connection table: making and accepting connections (the handshake, OTP's tie-break
// for simultaneous connects), peers coming up, and everything that must hear when one goes.
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>


#include "hypha/base/log.hpp"
#include "node_impl.hpp"
#include "sim_impl.hpp"

namespace hypha {

using asio::use_awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

// ---------------------------------------------------------------------------------- connecting

Peer& Node::Impl::peer_locked(Atom node) {
  auto& p = peers[node];
  if (!p) {
    p = std::make_shared<Peer>();
    p->name = node;
    p->attempt = next_attempt++;
    if (opts.network)
      opts.network->impl().connect_later(this, node, p->attempt);
    else
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
    // An attempt given up or superseded meanwhile (a previous one, crossing a new one) answers
    // no: the peer must not take a connection we drop.
    auto replace_stale = [this, node, attempt] {
      bool replace = false;
      with_peer(node, [&](Peer& p) {
        replace = p.state == Peer::State::Pending && p.attempt == attempt;
        if (replace) p.replacing = attempt;  // the peer will use this one
      });
      return replace;
    };
    // Before the message that lets the peer take the connection: would establish() still take
    // it? (Once another is up, ours could only win had the peer told us to replace that one.)
    auto still_wanted = [this, node, attempt] {
      bool wanted = false;
      with_peer(node, [&](Peer& p) {
        wanted = p.attempt == attempt && (p.state == Peer::State::Pending || p.replacing == attempt);
      });
      return wanted;
    };
    // The peer gives way to this attempt: its own, arriving on our acceptor, must not be taken.
    auto peer_yields = [this, node, attempt] {
      with_peer(node, [&](Peer& p) {
        if (p.attempt == attempt) p.peer_yields = attempt;
      });
    };
    net::ConnectHooks hooks{replace_stale, peer_yields, still_wanted};  // named: GCC 12 and co_await
    auto shaken = co_await net::handshake_connect(*sock, hs, full, hooks);
    // Losing a simultaneous connect is routine (the peer's connection takes over): not a warning.
    if (!shaken) {
      const bool lost = shaken.error().starts_with(net::kSimultaneousLost) ||
                        shaken.error().starts_with(net::kAttemptAbandoned);
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
  bool awaiting = false;  // the peer's connection is on its way and takes over this pending peer
  if (!r) {
    std::lock_guard lock(mu);
    auto it = peers.find(node);
    if (it != peers.end() && it->second->state == Peer::State::Pending &&
        it->second->owner == Peer::Owner::Connecting && it->second->attempt == attempt &&
        (r.error().starts_with(net::kSimultaneousLost) || it->second->yielding > 0)) {
      it->second->owner = Peer::Owner::Awaiting;
      awaiting = true;
    }
  }
  if (awaiting) {
    // Both sides connected at once and the peer's attempt wins (it said nok to ours, or we said
    // ok_simultaneous to its): its connection, arriving on our acceptor, takes over this
    // pending peer (and its queued sends and waiters).
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
  establish(node, tcp_link(std::move(*sock)), *r, attempt, false);
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
  net::AcceptStatus said = net::AcceptStatus::Ok;
  std::shared_ptr<Peer> yielded_to;
  auto decide_fn = [this, &said, &yielded_to](const net::PeerInfo& peer) { return said = decide(peer, yielded_to); };
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
      // "alive" answered "true": the peer says the connection we have is stale.
      const bool up = establish(*name, tcp_link(std::move(sock)), info, 0, said == net::AcceptStatus::Alive, std::move(c));
      if (yielded_to) yield_ended(yielded_to, up);
      co_return;
    }
    failure = "cannot make the peer's name an atom: " + name.error();
  }
  if (yielded_to) yield_ended(yielded_to, false);
  // A node on its way out refuses every handshake: expected, not worth a warning.
  bool leaving = false;
  {
    std::lock_guard lock(mu);
    leaving = stopped;
  }
  log::limited(leaving ? log::Level::Debug : log::Level::Warn, self_name.text(), "connection_refused", c->source() + " " + log::reason_class(failure),
               {{"source", c->source()}, {"reason", failure}});
}

net::AcceptStatus Node::Impl::decide(const net::PeerInfo& info, std::shared_ptr<Peer>& yielded_to) {
  // Nothing here makes an atom or a peer entry: the peer has not proved the cookie yet, and a
  // handshake that never does must not hold the name against the real node.
  if (!net::valid_node_name(info.name)) return net::AcceptStatus::NotAllowed;
  const auto name = Atom::existing(info.name);
  std::lock_guard lock(mu);
  if (stopped) return net::AcceptStatus::NotAllowed;
  if (!name) return net::AcceptStatus::Ok;  // no atom: no peer entry either
  auto it = peers.find(*name);
  if (it == peers.end()) return net::AcceptStatus::Ok;
  Peer& p = *it->second;
  if (p.state == Peer::State::Up) return net::AcceptStatus::Alive;
  if (p.owner != Peer::Owner::Connecting) return net::AcceptStatus::Ok;
  // Both sides are connecting: the node with the greater name keeps its own attempt (net_kernel).
  // Ours, when it gives way, is answered nok by the peer and waits for this connection; when
  // this one wins, ours gives way to it (unless it fails: this handshake is not authenticated yet).
  if (self_name > *name) return net::AcceptStatus::Nok;
  ++p.yielding;
  yielded_to = it->second;
  return net::AcceptStatus::OkSimultaneous;
}

std::shared_ptr<net::FrameLink> Node::Impl::tcp_link(tcp::socket sock) {
  return std::make_shared<net::DistConnection>(
      std::move(sock), opts.net_ticktime,
      net::ConnectionLimits{opts.max_frame, opts.max_send_queue, opts.max_send_wait, opts.max_partial_frames});
}

// Two connections between the same nodes: both sides connected at once, and decide() could not
// settle it (the peer's handshake said its name before our attempt began: an accepted handshake
// claims a peer only once authenticated, so that one which never is cannot hold the name). Both
// nodes must keep the same one, and one only, or each closes the one the other kept; each node
// knows what the peer told its attempt (nok, ok_simultaneous, alive) and what it told the peer's.
// - One that replaces a connection the other side said was stale ("alive" answered "true") wins.
// - Pending: an accepted one wins over our attempt on its way unless the peer answered that
//   attempt ok_simultaneous (it gives way to ours) or alive (it replaces what it has with ours);
//   our attempt wins unless we answered ok_simultaneous to a handshake of the peer's still in
//   flight (then it is held until that one ends; see yield_ended()).
// - Already up (a handshake crossed our check in still_wanted): the one the node with the
//   greater name made wins (what nok / ok_simultaneous give); between two made by one node, the
//   newer.
bool Node::Impl::new_connection_wins(const Peer& p, bool ours, bool confirmed) const {
  if (confirmed) return true;
  const bool greater_made_it = ours ? self_name > p.name : p.name > self_name;
  if (p.state == Peer::State::Up) {
    if (p.conn_confirmed) return false;
    return p.conn_ours == ours || greater_made_it;
  }
  if (ours) return p.yielding == 0;  // else held until the peer's connection we yielded to ends
  // An accepted connection, with an attempt of ours on its way too: it wins, unless the peer told
  // ours to replace what it has, or told ours it gives way (so it drops this one). (Had ours been
  // on its way when this one said its name, decide() would have settled it.)
  const bool own_in_flight = p.owner == Peer::Owner::Connecting && p.attempt != 0;
  return !own_in_flight || (p.replacing != p.attempt && p.peer_yields != p.attempt);
}

bool Node::Impl::establish(Atom node, std::shared_ptr<net::FrameLink> conn, const net::PeerInfo& info,
                           std::uint64_t attempt, bool confirmed, std::shared_ptr<net::Connection> accepted) {
  std::vector<std::function<void(bool)>> waiters;
  std::shared_ptr<net::FrameLink> replaced, dropped_held;
  {
    std::lock_guard lock(mu);
    if (stopped) return false;  // `conn` (and its socket) just goes away
    auto it = peers.find(node);
    if (attempt) {
      // Not ours any more: given up (timed out, disconnected) or superseded by a newer attempt.
      if (it == peers.end() || it->second->attempt != attempt) return false;
    } else if (it == peers.end()) {
      it = peers.emplace(node, std::make_shared<Peer>()).first;
      it->second->name = node;
    }
    auto& p = it->second;
    confirmed = confirmed || (attempt && p->replacing == attempt);
    if (!new_connection_wins(*p, attempt != 0, confirmed)) {
      if (attempt && p->state == Peer::State::Pending) {
        p->held = std::move(conn);  // the peer's connection we yielded to may still fail
        p->held_info = info;
      }
      return false;
    }
    if (p->state == Peer::State::Up) replaced = p->conn;
    dropped_held = std::move(p->held);
    p->held = nullptr;
    if (attempt) p->replacing = 0;
    p->state = Peer::State::Up;
    p->since = std::chrono::system_clock::now();
    p->conn = conn;
    // The heartbeat is agreed per connection: a new one says hello again (NodeOptions::detect).
    p->hypha = p->heard_ours = false;
    p->peer_detect = {};
    p->conn_ours = attempt != 0;
    p->conn_confirmed = confirmed;
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
  if (dropped_held) dropped_held->close("the peer's simultaneous connection took over");
  auto in = std::make_shared<Inbound>();
  in->atom_budget = opts.max_new_atoms_per_peer;
  in->accepted = std::move(accepted);
  in->link = conn;
  conn->start([this, node, in](std::span<const std::uint8_t> packet) { dispatch(node, packet, *in); },
              [this, node, weak = std::weak_ptr<net::FrameLink>(conn)](const std::string& reason) {
                if (auto c = weak.lock()) connection_lost(node, c, reason);
              });
  conn->flush();
  send_hello(node, false);
  for (auto& w : waiters) w(true);
  log_event(2, "nodeup", {{"peer", node.text()}});
  notify_nodes(node, true);
  return true;
}

void Node::Impl::yield_ended(const std::shared_ptr<Peer>& peer, bool accepted_up) {
  std::shared_ptr<net::FrameLink> held;
  net::PeerInfo info;
  std::uint64_t attempt = 0;
  bool nothing_left = false;
  {
    std::lock_guard lock(mu);
    --peer->yielding;
    auto it = peers.find(peer->name);
    if (accepted_up || peer->yielding > 0 || it == peers.end() || it->second != peer ||
        peer->state != Peer::State::Pending)
      return;
    if (peer->held) {
      held = std::move(peer->held);
      peer->held = nullptr;
      info = peer->held_info;
      attempt = peer->attempt;
    } else {
      nothing_left = peer->owner == Peer::Owner::Awaiting;
    }
  }
  // The peer's connection failed (a node only claiming the peer's name, say): ours goes up.
  if (held) establish(peer->name, std::move(held), info, attempt, false);
  if (nothing_left) fail_attempt(peer->name, Peer::Owner::Awaiting, 0, "the peer's simultaneous connection failed");
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

void Node::Impl::connection_lost(Atom node, const std::shared_ptr<net::FrameLink>& conn, const std::string& reason) {
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

}  // namespace hypha
