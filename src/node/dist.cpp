// Distribution messages: what local processes send to other nodes (the RemoteTransport), and the
// dispatch of control messages that arrive (erl_dist_protocol.html, "Protocol between connected
// nodes"). Every message is the pass-through byte 112, a control tuple and, for some, a payload.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "hypha/net/flags.hpp"
#include "hypha/base/log.hpp"
#include "hypha/net/packet.hpp"
#include "hypha/term/etf.hpp"
#include "node_impl.hpp"

namespace hypha {

namespace {

enum Op : int {
  kLink = 1, kSend = 2, kExit = 3, kUnlink = 4, kNodeLink = 5, kRegSend = 6, kGroupLeader = 7, kExit2 = 8,
  kSendTT = 12, kExitTT = 13, kRegSendTT = 16, kExit2TT = 18, kMonitorP = 19, kDemonitorP = 20,
  kMonitorPExit = 21, kSendSender = 22, kSendSenderTT = 23, kPayloadExit = 24, kPayloadExitTT = 25,
  kPayloadExit2 = 26, kPayloadExit2TT = 27, kPayloadMonitorPExit = 28, kSpawnRequest = 29,
  kSpawnRequestTT = 30, kSpawnReply = 31, kSpawnReplyTT = 32, kAliasSend = 33, kAliasSendTT = 34,
  kUnlinkId = 35, kUnlinkIdAck = 36,
};

Term op(int o) { return Term(o); }
Atom empty_atom() { return Atom(); }

struct BadControl {
  std::string why;
};

const Term& at(const Term& t, std::size_t i) {
  if (!t.is_tuple() || t.tuple_size() <= i) throw BadControl{"control tuple too short"};
  return t[i];
}
const Pid& pid_at(const Term& t, std::size_t i) {
  const Term& e = at(t, i);
  if (!e.is_pid()) throw BadControl{"expected a pid at element " + std::to_string(i + 1)};
  return e.pid();
}
const Ref& ref_at(const Term& t, std::size_t i) {
  const Term& e = at(t, i);
  if (!e.is_ref()) throw BadControl{"expected a reference at element " + std::to_string(i + 1)};
  return e.ref();
}
const Term& need_payload(const Term* p) {
  if (!p) throw BadControl{"missing payload"};
  return *p;
}

}  // namespace

// ---------------------------------------------------------------------------------- outgoing

Node::Impl::Route Node::Impl::route_to(Atom node) {
  std::lock_guard lock(mu);
  if (stopped) return {0, nullptr, true};
  Peer& p = peer_locked(node);
  // Before the handshake the peer's flags are unknown: assume ours, which every OTP 25+ node has.
  if (p.state == Peer::State::Up) return {p.flags, p.conn, false};
  return {net::dflag::kOurs, nullptr, false};
}

void Node::Impl::send_control(Atom node, const Term& ctrl, const Term* payload) {
  send_control(node, route_to(node), ctrl, payload);
}

void Node::Impl::send_control(Atom node, const Route& r, const Term& ctrl, const Term* payload) {
  if (r.stopped) return;
  send_frame(node, r, net::make_frame(ctrl, payload, r.flags & net::dflag::kDistHdrAtomCache));
}

void Node::Impl::send_frame(Atom node, const Route& r, Bytes f) {
  if (r.stopped) return;
  if (r.conn) {
    r.conn->send(std::move(f));
    return;
  }
  std::shared_ptr<net::FrameLink> conn;
  {
    std::lock_guard lock(mu);
    if (stopped) return;
    Peer& p = peer_locked(node);
    if (p.state == Peer::State::Up) {
      conn = p.conn;  // it came up meanwhile
    } else if (p.queued_bytes + f.size() <= opts.max_send_queue) {
      p.queued_bytes += f.size();
      p.queued.push_back(std::move(f));
    }  // else: dropped, as a message to an unreachable node is
  }
  if (conn) conn->send(std::move(f));
}

// SEND_SENDER when the peer takes it (OTP 21+), else SEND.
Term Node::Impl::send_op(const Pid* from, const Pid& to, const Route& r) {
  if (from && (r.flags & net::dflag::kSendSender)) return Term::tuple({op(kSendSender), Term(*from), Term(to)});
  return Term::tuple({op(kSend), Term(empty_atom()), Term(to)});
}

void Node::Impl::send(const Pid* from, const Pid& to, const Term& msg) {
  const Route r = route_to(to.node);
  send_control(to.node, r, send_op(from, to, r), &msg);
}

void Node::Impl::send_each(const Pid* from, std::span<const Pid> to, const Term& msg) {
  if (to.size() == 1) return send(from, to[0], msg);
  Bytes payload(etf::encoded_size(msg));
  etf::encode_into(payload.data(), msg);
  for (const Pid& p : to) {
    const Route r = route_to(p.node);
    send_frame(p.node, r, net::make_frame(send_op(from, p, r), payload, r.flags & net::dflag::kDistHdrAtomCache));
  }
}

// REG_SEND and ALIAS_SEND need a sender; sends from outside any process name net_kernel.
Pid Node::Impl::sender_of(const Pid* from) const {
  if (from) return *from;
  static const Atom net_kernel("net_kernel");
  return rt->whereis(net_kernel).value_or(Pid{self_name, 0, 0, creation_});
}

void Node::Impl::send_name(const Pid* from, Atom name, Atom node, const Term& msg) {
  const Pid sender = sender_of(from);
  send_control(node, Term::tuple({op(kRegSend), Term(sender), Term(empty_atom()), Term(name)}), &msg);
}

void Node::Impl::send_alias(const Pid* from, const Ref& alias, const Term& msg) {
  if (alias.node == self_name) {
    inbound().deliver_alias(alias, msg);
    return;
  }
  const Pid sender = sender_of(from);
  send_control(alias.node, Term::tuple({op(kAliasSend), Term(sender), Term(alias)}), &msg);
}

void Node::Impl::link(const Pid& from, const Pid& to) {
  {
    std::lock_guard lock(mu);
    peer_locked(to.node).links.emplace(from, to);
  }
  send_control(to.node, Term::tuple({op(kLink), Term(from), Term(to)}), nullptr);
}

void Node::Impl::unlink(const Pid& from, const Pid& to) {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mu);
    auto it = peers.find(to.node);
    if (it != peers.end()) it->second->links.erase({from, to});
    id = next_unlink_id++;
  }
  const Route r = route_to(to.node);
  if (r.flags & net::dflag::kUnlinkId)
    send_control(to.node, r, Term::tuple({op(kUnlinkId), Term(static_cast<std::uint64_t>(id)), Term(from), Term(to)}), nullptr);
  else
    send_control(to.node, r, Term::tuple({op(kUnlink), Term(from), Term(to)}), nullptr);
}

void Node::Impl::exit(const Pid& from, const Pid& to, const Term& reason, bool linked) {
  if (linked) {
    std::lock_guard lock(mu);
    auto it = peers.find(to.node);
    if (it == peers.end()) return;  // no connection: the peer already saw noconnection
    it->second->links.erase({from, to});
  }
  const Route r = route_to(to.node);
  if (r.flags & net::dflag::kExitPayload)
    send_control(to.node, r, Term::tuple({op(linked ? kPayloadExit : kPayloadExit2), Term(from), Term(to)}), &reason);
  else
    send_control(to.node, r, Term::tuple({op(linked ? kExit : kExit2), Term(from), Term(to), reason}), nullptr);
}

void Node::Impl::monitor(const Pid& from, const Term& target, Atom node, const Ref& ref) {
  {
    std::lock_guard lock(mu);
    // What the DOWN will name: the pid, or {Name, Node}.
    peer_locked(node).monitors_out.emplace(ref, std::make_pair(from, target.is_atom() ? Term::tuple({target, Term(node)}) : target));
  }
  send_control(node, Term::tuple({op(kMonitorP), Term(from), target, Term(ref)}), nullptr);
}

void Node::Impl::demonitor(const Pid& from, const Term& target, Atom node, const Ref& ref) {
  {
    std::lock_guard lock(mu);
    auto it = peers.find(node);
    if (it == peers.end()) return;
    it->second->monitors_out.erase(ref);
  }
  send_control(node, Term::tuple({op(kDemonitorP), Term(from), target, Term(ref)}), nullptr);
}

void Node::Impl::monitor_exit(const Pid& from, const Term& watched, const Pid& watcher, const Ref& ref,
                              const Term& reason) {
  {
    std::lock_guard lock(mu);
    auto it = peers.find(watcher.node);
    if (it == peers.end()) return;
    it->second->monitors_in.erase(ref);
  }
  // The process is named as the watcher named it: a registered name stays a name.
  const Term proc = watched.is_tuple() ? watched[0] : Term(from);
  const Route r = route_to(watcher.node);
  if (r.flags & net::dflag::kExitPayload)
    send_control(watcher.node, r, Term::tuple({op(kPayloadMonitorPExit), proc, Term(watcher), Term(ref)}), &reason);
  else
    send_control(watcher.node, r, Term::tuple({op(kMonitorPExit), proc, Term(watcher), Term(ref), reason}), nullptr);
}

void Node::Impl::spawn_request(const Pid& from, const Pid& group_leader, Atom node, const Ref& req, Atom mod,
                               Atom fun, const Term& args, const SpawnRequestOptions& opts) {
  {
    std::lock_guard lock(mu);
    if (!stopped) peer_locked(node).spawns_out.emplace(req, Peer::PendingSpawn{from, opts});
  }
  std::vector<Term> o;
  if (opts.link) o.emplace_back(a("link"));
  if (opts.monitor) o.emplace_back(a("monitor"));
  const Term mfa = Term::tuple({Term(mod), Term(fun), Term(static_cast<std::int64_t>(args.list_elements().size()))});
  send_control(node, Term::tuple({op(kSpawnRequest), Term(req), Term(from), Term(group_leader), mfa, Term::list(std::move(o))}), &args);
}

// ---------------------------------------------------------------------------------- incoming

void Node::Impl::dispatch(Atom node, std::span<const std::uint8_t> packet, Inbound& in) {
  etf::DecodeOptions dopts;
  dopts.max_bytes = opts.max_frame;
  dopts.max_memory = opts.max_decoded_bytes;
  dopts.atom_budget = &in.atom_budget;
  const std::size_t budget_before = in.atom_budget;
  auto parsed = net::parse_packet(packet, in.cache, dopts);
  if (in.atom_budget != budget_before || !parsed) warn_if_atoms_low();
  std::string why;
  if (!parsed) {
    why = parsed.error();
  } else {
    try {
      const Term* payload = parsed->payload ? &*parsed->payload : nullptr;
      if (!handle_hello(node, parsed->control, payload, in)) handle_control(node, parsed->control, payload);
      return;
    } catch (const BadControl& b) {
      why = b.why + " in " + parsed->control.to_string().substr(0, 200);
    } catch (const BadTermAccess& b) {
      why = std::string(b.what()) + " in " + parsed->control.to_string().substr(0, 200);
    }
  }
  log::limited(log::Level::Warn, self_name.text(), "bad_packet", std::string(node.text()) + " " + log::reason_class(why),
               {{"peer", node.text()}, {"reason", why}});
  std::shared_ptr<net::FrameLink> conn;
  with_peer(node, [&](Peer& p) { conn = p.conn; });
  if (conn) conn->close("malformed packet: " + why);
}

// ---------------------------------------------------------------------------------- heartbeat

namespace {
const Atom& heartbeat_name() {
  static const Atom name("hypha_heartbeat");
  return name;
}
// A peer's detect time is taken between these (a peer cannot make this node tick every microsecond).
constexpr std::chrono::milliseconds kMinDetect{100}, kMaxDetect{86400000};
}  // namespace

void Node::Impl::send_hello(Atom node, bool heard_yours) {
  const Term hello = Term::tuple({Term(heartbeat_name()), Term(static_cast<std::int64_t>(opts.detect.count())),
                                  Term(Atom(heard_yours ? "true" : "false"))});
  send_control(node, Term::tuple({op(kRegSend), Term(sender_of(nullptr)), Term(empty_atom()), Term(heartbeat_name())}),
               &hello);
}

std::chrono::milliseconds Node::Impl::detect_time(const Peer& p) const {
  return p.heard_ours && opts.detect.count() > 0 ? opts.detect : opts.net_ticktime;
}

// A hypha peer's hello on this connection: tick fast enough for its detect time, and once it has
// heard ours (it ticks fast enough for us), declare it down after our own. Anything else sent to
// the name goes on as a message.
bool Node::Impl::handle_hello(Atom node, const Term& c, const Term* payload, Inbound& in) {
  if (!payload || !c.is_tuple() || c.tuple_size() != 4 || !c[0].is_small_integer() ||
      (c[0].small_integer() != kRegSend && c[0].small_integer() != kRegSendTT) || !c[3].is_atom() ||
      c[3].atom_value() != heartbeat_name())
    return false;
  const Term& m = *payload;
  if (!m.is_tuple() || m.tuple_size() != 3 || !m[0].is_atom() || m[0].atom_value() != heartbeat_name() ||
      !m[1].is_small_integer() || m[1].small_integer() < 0 || !m[2].is_atom())
    return false;
  const bool heard_ours = m[2].atom_value() == Atom("true");
  const auto detect = std::chrono::milliseconds(m[1].small_integer());
  auto conn = in.link.lock();
  if (!conn) return true;
  std::chrono::milliseconds tick_every = opts.net_ticktime / 4, silent_after{0};
  {
    std::lock_guard lock(mu);
    auto it = peers.find(node);
    if (it == peers.end() || it->second->conn != conn) return true;  // an old connection's
    Peer& p = *it->second;
    p.hypha = true;
    if (detect.count() > 0) p.peer_detect = std::clamp(detect, kMinDetect, kMaxDetect);
    p.heard_ours = p.heard_ours || heard_ours;
    const auto sixth = [](std::chrono::milliseconds d) { return std::max(d / 6, std::chrono::milliseconds(1)); };
    if (p.peer_detect.count() > 0) tick_every = std::min(tick_every, sixth(p.peer_detect));
    if (opts.detect.count() > 0) tick_every = std::min(tick_every, sixth(opts.detect));
    if (p.heard_ours && opts.detect.count() > 0) silent_after = opts.detect;
  }
  conn->liveness(tick_every, silent_after);
  if (!heard_ours && !in.hello_answered) {
    in.hello_answered = true;
    send_hello(node, true);  // after liveness(): the peer may count on our pace once it hears this
  }
  return true;
}

void Node::Impl::warn_if_atoms_low() {
  const std::size_t used = Atom::count(), limit = Atom::limit(Atom::Source::Input);
  if (used < limit / 10 * 9) return;
  log::limited(log::Level::Warn, self_name.text(), "atom_table_nearly_full", "atoms",
               {{"atoms", std::to_string(used)}, {"limit_for_peers", std::to_string(limit)},
                {"effect", "peers that send new atoms are disconnected; known atoms are served"}});
}

void Node::Impl::handle_control(Atom node, const Term& c, const Term* payload) {
  if (!c.is_tuple() || c.tuple_size() == 0 || !c[0].is_small_integer()) throw BadControl{"control message is not a tagged tuple"};
  RuntimeInbound r = inbound();
  switch (c[0].small_integer()) {
    case kSend: case kSendTT: case kSendSender: case kSendSenderTT:
      r.deliver(pid_at(c, 2), need_payload(payload));
      return;
    case kRegSend: case kRegSendTT: {
      const Term& name = at(c, 3);
      if (!name.is_atom()) throw BadControl{"REG_SEND to a non-atom"};
      r.deliver_name(name.atom_value(), need_payload(payload));  // nobody there: dropped, as in OTP
      return;
    }
    case kLink: {
      const Pid& from = pid_at(c, 1);
      const Pid& to = pid_at(c, 2);
      with_peer(node, [&](Peer& p) { p.links.emplace(to, from); });
      r.deliver_link(from, to);
      return;
    }
    case kUnlink: case kUnlinkId: {
      const bool with_id = c[0].small_integer() == kUnlinkId;
      const Pid& from = pid_at(c, with_id ? 2 : 1);
      const Pid& to = pid_at(c, with_id ? 3 : 2);
      with_peer(node, [&](Peer& p) { p.links.erase({to, from}); });
      r.deliver_unlink(from, to);
      if (with_id) send_control(node, Term::tuple({op(kUnlinkIdAck), at(c, 1), Term(to), Term(from)}), nullptr);
      return;
    }
    case kUnlinkIdAck: case kNodeLink: case kGroupLeader:
      return;
    case kExit: case kExitTT: case kPayloadExit: case kPayloadExitTT:
    case kExit2: case kExit2TT: case kPayloadExit2: case kPayloadExit2TT: {
      const int o = static_cast<int>(c[0].small_integer());
      const bool linked = o == kExit || o == kExitTT || o == kPayloadExit || o == kPayloadExitTT;
      const bool in_payload = o == kPayloadExit || o == kPayloadExitTT || o == kPayloadExit2 || o == kPayloadExit2TT;
      const Pid& from = pid_at(c, 1);
      const Pid& to = pid_at(c, 2);
      const Term& reason = in_payload ? need_payload(payload) : at(c, (o == kExitTT || o == kExit2TT) ? 4 : 3);
      if (linked) with_peer(node, [&](Peer& p) { p.links.erase({to, from}); });
      r.deliver_exit(from, to, reason, linked);
      return;
    }
    case kMonitorP: {
      const Pid& from = pid_at(c, 1);
      const Term& target = at(c, 2);
      const Ref& ref = ref_at(c, 3);
      if (!target.is_pid() && !target.is_atom()) throw BadControl{"MONITOR_P of something not a pid or name"};
      with_peer(node, [&](Peer& p) { p.monitors_in.emplace(ref, std::make_pair(from, target)); });
      r.deliver_monitor(from, target, ref);
      return;
    }
    case kDemonitorP: {
      const Pid& from = pid_at(c, 1);
      const Ref& ref = ref_at(c, 3);
      with_peer(node, [&](Peer& p) { p.monitors_in.erase(ref); });
      r.deliver_demonitor(from, at(c, 2), ref);
      return;
    }
    case kMonitorPExit: case kPayloadMonitorPExit: {
      const Term& proc = at(c, 1);
      const Pid& to = pid_at(c, 2);
      const Ref& ref = ref_at(c, 3);
      const Term& reason = c[0].small_integer() == kPayloadMonitorPExit ? need_payload(payload) : at(c, 4);
      Term watched = proc.is_atom() ? Term::tuple({proc, Term(node)}) : proc;
      {
        std::lock_guard lock(mu);
        auto it = peers.find(node);
        if (it != peers.end()) {
          auto m = it->second->monitors_out.find(ref);
          if (m != it->second->monitors_out.end()) {
            watched = m->second.second;
            it->second->monitors_out.erase(m);
          }
        }
      }
      r.deliver_down(to, ref, watched, reason);
      return;
    }
    case kSpawnRequest: case kSpawnRequestTT:
      serve_spawn_request(node, c, payload);
      return;
    case kSpawnReply: case kSpawnReplyTT:
      spawn_reply(node, c);
      return;
    case kAliasSend: case kAliasSendTT: {
      const Term& alias = at(c, 2);
      if (!alias.is_ref()) throw BadControl{"ALIAS_SEND to something not a reference"};
      r.deliver_alias(alias.ref(), need_payload(payload));  // an inactive alias: dropped, as in OTP
      return;
    }
    default:
      log_event(3, "unknown_control", {{"peer", node.text()}, {"op", std::to_string(c[0].small_integer())}});
      return;
  }
}

// SPAWN_REQUEST {29, ReqId, From, GroupLeader, {Mod, Fun, Arity}, Opts} + Args: the process runs
// Mod:Fun(Args) through the runtime's spawn handler (the otp layer's exports and erpc). The reply
// goes out before the process can run, so it precedes the process's exit signal or DOWN.
void Node::Impl::serve_spawn_request(Atom node, const Term& c, const Term* payload) {
  const Ref& req = ref_at(c, 1);
  const Pid& from = pid_at(c, 2);
  const Term& mfa = at(c, 4);
  const Term& opts = at(c, 5);
  const Term& args = need_payload(payload);
  const auto refuse = [&](const char* why) {
    send_control(node, Term::tuple({op(kSpawnReply), Term(req), Term(from), Term(0), Term(a(why))}), nullptr);
  };
  if (!mfa.is_tuple() || mfa.tuple_size() != 3 || !mfa[0].is_atom() || !mfa[1].is_atom() || !args.is_proper_list())
    return refuse("badarg");
  if (!opts.is_proper_list()) return refuse("badopt");
  bool link = false, monitor = false;
  for (const Term& o : opts.list_elements()) {
    if (o.is_atom(a("link"))) link = true;
    else if (o.is_atom(a("monitor"))) monitor = true;
  }
  SpawnOptions so;
  if (link) so.link = from;
  if (monitor) so.monitored_by = std::make_pair(from, req);
  so.before_start = [&](const Pid& pid) {
    with_peer(node, [&](Peer& p) {
      if (link) p.links.emplace(pid, from);
      if (monitor) p.monitors_in.emplace(req, std::make_pair(from, Term(pid)));
    });
    const int flags = (link ? 1 : 0) | (monitor ? 2 : 0);
    send_control(node, Term::tuple({op(kSpawnReply), Term(req), Term(from), Term(flags), Term(pid)}), nullptr);
  };
  rt->spawn(mfa[0].atom_value(), mfa[1].atom_value(), args, so);
}

// SPAWN_REPLY {31, ReqId, To, Flags, Result}: the outcome of one of our spawn requests.
void Node::Impl::spawn_reply(Atom node, const Term& c) {
  const Ref& req = ref_at(c, 1);
  const Pid& to = pid_at(c, 2);
  const Term& flags_term = at(c, 3);
  const Term& result = at(c, 4);
  if (!flags_term.is_small_integer() || !(result.is_pid() || result.is_atom())) throw BadControl{"malformed SPAWN_REPLY"};
  const auto flags = flags_term.small_integer();
  const bool linked = result.is_pid() && (flags & 1);
  const bool monitored = result.is_pid() && (flags & 2);
  std::optional<Peer::PendingSpawn> pending;
  with_peer(node, [&](Peer& p) {
    auto it = p.spawns_out.find(req);
    if (it == p.spawns_out.end()) return;
    pending = it->second;
    p.spawns_out.erase(it);
    if (pending->abandoned) return;
    if (linked) p.links.emplace(to, result.pid());
    if (monitored) p.monitors_out.emplace(req, std::make_pair(to, result));
  });
  if (!pending) return;  // not ours (or the connection was replaced meanwhile)
  if (pending->abandoned) {  // undo what the other node set up for a requester that gave up
    if (linked) exit(to, result.pid(), Term(a("abandoned")), true);
    if (monitored) send_control(node, Term::tuple({op(kDemonitorP), Term(to), result, Term(req)}), nullptr);
    return;
  }
  inbound().deliver_spawn_reply(to, req, result, linked, monitored, pending->opts.wants_reply(result.is_pid()));
}

bool Node::Impl::spawn_abandon(const Pid& from, const Ref& req) {
  std::lock_guard lock(mu);
  for (auto& [_, peer] : peers) {
    auto it = peer->spawns_out.find(req);
    if (it != peer->spawns_out.end() && it->second.from == from && !it->second.abandoned) {
      it->second.abandoned = true;
      return true;
    }
  }
  return false;
}

}  // namespace hypha
