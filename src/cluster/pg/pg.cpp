// pg: the scope server (OTP 25's pg.erl protocol, message for message), its table, the API.
#include "hypha/cluster/pg.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "hypha/base/log.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/term/match.hpp"
#include "../by_name.hpp"

namespace hypha::pg {

namespace {

using namespace pattern;

const Atom& a_join() { static const Atom a("join"); return a; }
const Atom& a_leave() { static const Atom a("leave"); return a; }
const Atom& a_ok() { static const Atom a("ok"); return a; }

// ------------------------------------------------------------------------------------ the table

// What OTP keeps in the scope's ETS table: per group, every member and the local ones. Stored
// oldest first (joins append); read newest first, as OTP's lists are.
struct Group {
  std::vector<Pid> all, local;
};

struct Table {
  mutable std::shared_mutex mu;
  std::unordered_map<Term, Group> groups;
};

// The tables of the scopes running in this process, by runtime and scope name.
cluster::detail::ByName<Table>& tables() {
  static cluster::detail::ByName<Table> t;
  return t;
}
std::shared_ptr<Table> table_of(const Runtime& rt, Atom scope) { return tables().find(rt, scope); }

// Removes the last occurrence (the newest member) of `p`; false when absent.
bool erase_newest(std::vector<Pid>& v, const Pid& p) {
  auto it = std::find(v.rbegin(), v.rend(), p);
  if (it == v.rend()) return false;
  v.erase(std::next(it).base());
  return true;
}

std::vector<Pid> newest_first(const std::vector<Pid>& v) { return {v.rbegin(), v.rend()}; }

Term pid_list(const std::vector<Pid>& pids) {
  std::vector<Term> out;
  out.reserve(pids.size());
  for (const Pid& p : pids) out.emplace_back(p);
  return Term::list(std::move(out));
}

// A pid or a proper list of pids (PidOrPids in OTP's messages), in the order given.
bool pids_of(const Term& t, std::vector<Pid>& out, bool& single) {
  single = t.is_pid();
  if (single) {
    out.push_back(t.pid());
    return true;
  }
  if (!t.is_proper_list()) return false;
  for (const Term& e : t.list_elements()) {
    if (!e.is_pid()) return false;
    out.push_back(e.pid());
  }
  return true;
}

// ------------------------------------------------------------------------------------ the scope

class Scope final : public GenServer {
 public:
  Scope(Node& node, Atom scope) : node_(node), scope_(scope), table_(std::make_shared<Table>()) {}

  Task<> init(Process& self) override {
    tables().put(self.runtime(), scope_, table_);
    node_.monitor_nodes(self.pid());
    // Every connected node, hidden ones too: an Erlang scope never discovers a hidden node, so
    // the first discover must come from here when this node (or the peer) is hidden.
    for (Atom n : node_.nodes(true)) self.send(scope_, n, Term::tuple({Term(Atom("discover")), Term(self.pid())}));
    co_return;
  }

  Task<> terminate(Process& self, const Term&) override {
    node_.monitor_nodes(self.pid(), false);
    tables().remove(self.runtime(), scope_, table_);
    co_return;
  }

  Task<Action> handle_call(Process& self, const Term& req, const From& from) override {
    const Term* group = nullptr;
    const Term* who = nullptr;
    Ref ref;
    if (match(req, tuple("join_local", bind(group), bind(who)))) co_return join_local(self, *group, *who);
    if (match(req, tuple("leave_local", bind(group), bind(who)))) co_return leave_local(self, *group, *who);
    if (match(req, "monitor")) {
      const Ref mref = self.monitor(from.pid);
      scope_monitors_[mref] = from.pid;
      std::vector<MapEntry> groups;
      {
        std::shared_lock lock(table_->mu);
        for (const auto& [g, e] : table_->groups) groups.push_back({g, pid_list(newest_first(e.all))});
      }
      co_return Term::tuple({Term(mref), Term::map(std::move(groups))});
    }
    if (match(req, tuple("monitor", bind(group)))) {
      const Ref mref = self.monitor(from.pid);
      group_monitors_[mref] = {from.pid, *group};
      monitored_groups_[*group].push_back({from.pid, mref});
      co_return Term::tuple({Term(mref), pid_list(members(*group))});
    }
    if (match(req, tuple("demonitor", bind(ref)))) co_return demonitor(self, ref);
    untrusted("unexpected_call", req);
    co_return Term::tuple({Term(Atom("error")), Term(Atom("badarg"))});
  }

  Task<Action> handle_cast(Process& self, const Term& msg) override {
    Pid peer;
    const Term* groups = nullptr;
    if (match(msg, tuple("sync", bind(peer), bind(groups))) && remote_pid(peer)) sync(self, peer, *groups);
    else untrusted("unexpected_cast", msg);
    co_return Action::noreply();
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    Pid peer, pid;
    Ref ref;
    Atom node;
    const Term* group = nullptr;
    const Term* who = nullptr;
    const Term* groups = nullptr;
    if (match(msg, tuple("join", bind(peer), bind(group), bind(who))) && remote_pid(peer)) {
      remote_join(self, peer, *group, *who, msg);
    } else if (match(msg, tuple("leave", bind(peer), bind(who), bind(groups))) && remote_pid(peer)) {
      remote_leave(self, peer, *who, *groups, msg);
    } else if (match(msg, tuple("discover", bind(peer))) && remote_pid(peer)) {
      discover(self, peer);
    } else if (match(msg, tuple("DOWN", bind(ref), "process", bind(pid), any))) {
      down(self, ref, pid);
    } else if (match(msg, tuple("nodeup", bind(node)))) {
      if (node != node_.name()) self.send(scope_, node, Term::tuple({Term(Atom("discover")), Term(self.pid())}));
    } else if (!match(msg, tuple("nodedown", any))) {  // nodedown: the peer scope's DOWN does it
      untrusted("unexpected_message", msg);
    }
    co_return Action::noreply();
  }

 private:
  struct LocalMember {
    Ref mref;
    std::vector<Term> groups;  // one per join, newest first
  };
  struct Peer {
    Ref mref;
    std::unordered_map<Term, std::vector<Pid>> groups;  // what the peer contributed, newest first
  };

  void untrusted(std::string_view what, const Term& msg) {
    log::limited(log::Level::Warn, node_.name().text(), "pg_message_dropped", std::string(scope_.text()) + " " + std::string(what),
                 {{"scope", scope_.text()}, {"reason", what}, {"message", pattern::detail::shorten(msg)}});
  }
  bool remote_pid(const Pid& p) const { return p.node != node_.name(); }

  std::vector<Pid> members(const Term& group) const {
    std::shared_lock lock(table_->mu);
    auto it = table_->groups.find(group);
    return it == table_->groups.end() ? std::vector<Pid>{} : newest_first(it->second.all);
  }

  void broadcast(Process& self, const Term& msg) {
    for (const auto& [peer, state] : remote_) self.send(peer, msg);
  }

  // {Ref, join | leave, Group, Pids} to the scope's monitors and the group's.
  void notify(Process& self, const Atom& action, const Term& group, const std::vector<Pid>& pids) {
    if (scope_monitors_.empty() && monitored_groups_.empty()) return;
    const Term list = pid_list(pids);
    for (const auto& [ref, pid] : scope_monitors_) self.send(pid, Term::tuple({Term(ref), Term(action), group, list}));
    auto it = monitored_groups_.find(group);
    if (it == monitored_groups_.end()) return;
    for (const auto& [pid, ref] : it->second) self.send(pid, Term::tuple({Term(ref), Term(action), group, list}));
  }

  // --- the table, as OTP's *_update_ets functions change it (pids as given, in order)
  void table_join(Process& self, const Term& group, const std::vector<Pid>& pids, bool local) {
    {
      std::unique_lock lock(table_->mu);
      Group& g = table_->groups[group];
      for (auto it = pids.rbegin(); it != pids.rend(); ++it) {  // Pids ++ All: the first given is newest
        g.all.push_back(*it);
        if (local) g.local.push_back(*it);
      }
    }
    notify(self, a_join(), group, pids);
  }
  void table_leave(Process& self, const Term& group, const std::vector<Pid>& pids, bool local) {
    {
      std::unique_lock lock(table_->mu);
      auto it = table_->groups.find(group);
      if (it == table_->groups.end()) return;
      for (const Pid& p : pids) {
        erase_newest(it->second.all, p);
        if (local) erase_newest(it->second.local, p);
      }
      if (it->second.all.empty()) table_->groups.erase(it);
    }
    notify(self, a_leave(), group, pids);
  }

  // --- local joins and leaves
  Action join_local(Process& self, const Term& group, const Term& who) {
    std::vector<Pid> pids;
    bool single = false;
    if (!pids_of(who, pids, single)) return Term::tuple({Term(Atom("error")), Term::tuple({Term(Atom("nolocal")), who})});
    for (const Pid& p : pids)
      if (!self.runtime().is_local(p))
        return Term::tuple({Term(Atom("error")), Term::tuple({Term(Atom("nolocal")), Term(p)})});
    for (const Pid& p : pids) {
      auto it = local_.find(p);
      if (it == local_.end()) it = local_.emplace(p, LocalMember{self.monitor(p), {}}).first;
      it->second.groups.insert(it->second.groups.begin(), group);
    }
    table_join(self, group, pids, true);
    broadcast(self, Term::tuple({Term(a_join()), Term(self.pid()), group, who}));
    return Term(a_ok());
  }

  Action leave_local(Process& self, const Term& group, const Term& who) {
    std::vector<Pid> pids;
    bool single = false;
    if (!pids_of(who, pids, single)) return Term(Atom("not_joined"));
    bool changed = false;
    std::vector<Pid> left;
    for (const Pid& p : pids) {
      auto it = local_.find(p);
      if (it == local_.end()) continue;
      auto& gs = it->second.groups;
      auto g = std::find(gs.begin(), gs.end(), group);
      if (g == gs.end()) continue;
      gs.erase(g);
      changed = true;
      left.push_back(p);
      if (gs.empty()) {
        self.demonitor(it->second.mref, true);
        local_.erase(it);
      }
    }
    if (!changed) return Term(Atom("not_joined"));
    table_leave(self, group, left, true);
    broadcast(self, Term::tuple({Term(a_leave()), Term(self.pid()), who, Term::list({group})}));
    return Term(a_ok());
  }

  // --- the protocol between scopes
  void discover(Process& self, const Pid& peer) {
    // Our local members, as a list of {Group, [Pid]}, each list built as OTP's all_local_pids
    // builds it (a fold over the members by pid, prepending).
    std::unordered_map<Term, std::vector<Pid>> mine;
    std::vector<Term> order;
    for (const auto& [pid, m] : local_)
      for (const Term& g : m.groups) {
        auto [it, fresh] = mine.try_emplace(g);
        if (fresh) order.push_back(g);
        it->second.push_back(pid);
      }
    std::vector<Term> groups;
    for (const Term& g : order) {
      auto& pids = mine[g];
      std::reverse(pids.begin(), pids.end());
      groups.push_back(Term::tuple({g, pid_list(pids)}));
    }
    gen_server::cast(self, ServerRef(peer), Term::tuple({Term(Atom("sync")), Term(self.pid()), Term::list(std::move(groups))}));
    if (remote_.count(peer)) return;
    remote_.emplace(peer, Peer{self.monitor(peer), {}});
    self.send(peer, Term::tuple({Term(Atom("discover")), Term(self.pid())}));
  }

  void sync(Process& self, const Pid& peer, const Term& groups) {
    // Validate all of it before changing anything: a bad sync changes nothing.
    std::vector<std::pair<Term, std::vector<Pid>>> incoming;
    if (!groups.is_proper_list()) return untrusted("malformed_sync", groups);
    for (const Term& e : groups.list_elements()) {
      const Term* g = nullptr;
      const Term* who = nullptr;
      std::vector<Pid> pids;
      bool single = false;
      if (!match(e, tuple(bind(g), bind(who))) || !pids_of(*who, pids, single) || single || !from_peer(peer, pids))
        return untrusted("malformed_sync", groups);
      incoming.emplace_back(*g, std::move(pids));
    }
    auto it = remote_.find(peer);
    if (it == remote_.end()) it = remote_.emplace(peer, Peer{self.monitor(peer), {}}).first;
    auto old = std::move(it->second.groups);
    std::unordered_map<Term, std::vector<Pid>> now;
    for (auto& [g, pids] : incoming) {
      auto o = old.find(g);
      if (o == old.end()) {
        table_join(self, g, pids, false);
      } else if (o->second != pids) {
        table_leave(self, g, o->second, false);
        table_join(self, g, pids, false);
      }
      if (o != old.end()) old.erase(o);
      now[g] = std::move(pids);
    }
    for (const auto& [g, pids] : old) table_leave(self, g, pids, false);  // groups it no longer has
    it->second.groups = std::move(now);
  }

  bool from_peer(const Pid& peer, const std::vector<Pid>& pids) const {
    return std::all_of(pids.begin(), pids.end(), [&](const Pid& p) { return p.node == peer.node; });
  }

  void remote_join(Process& self, const Pid& peer, const Term& group, const Term& who, const Term& msg) {
    auto it = remote_.find(peer);
    if (it == remote_.end()) return;  // not (yet, or any more) in the overlay: ignored, as OTP does
    std::vector<Pid> pids;
    bool single = false;
    if (!pids_of(who, pids, single) || !from_peer(peer, pids)) return untrusted("malformed_join", msg);
    auto& mine = it->second.groups[group];
    mine.insert(mine.begin(), pids.begin(), pids.end());
    table_join(self, group, pids, false);
  }

  void remote_leave(Process& self, const Pid& peer, const Term& who, const Term& groups, const Term& msg) {
    auto it = remote_.find(peer);
    if (it == remote_.end()) return;
    std::vector<Pid> pids;
    bool single = false;
    if (!pids_of(who, pids, single) || !groups.is_proper_list()) return untrusted("malformed_leave", msg);
    for (const Term& g : groups.list_elements()) {
      auto gi = it->second.groups.find(g);
      if (gi == it->second.groups.end()) continue;  // a group it never announced (OTP crashes here)
      std::vector<Pid> left;
      for (const Pid& p : pids) {
        auto pos = std::find(gi->second.begin(), gi->second.end(), p);
        if (pos == gi->second.end()) continue;
        gi->second.erase(pos);
        left.push_back(p);
      }
      if (gi->second.empty()) it->second.groups.erase(gi);
      if (!left.empty()) table_leave(self, g, left, false);
    }
  }

  void down(Process& self, const Ref& ref, const Pid& pid) {
    if (auto it = local_.find(pid); it != local_.end() && it->second.mref == ref) {
      const std::vector<Term> groups = std::move(it->second.groups);
      local_.erase(it);
      for (const Term& g : groups) table_leave(self, g, {pid}, true);
      broadcast(self, Term::tuple({Term(a_leave()), Term(self.pid()), Term(pid), Term::list(groups)}));
      return;
    }
    if (auto it = remote_.find(pid); it != remote_.end() && it->second.mref == ref) {
      // The peer scope went (its node's connection, or the process): its members leave here.
      auto groups = std::move(it->second.groups);
      remote_.erase(it);
      for (const auto& [g, pids] : groups) table_leave(self, g, pids, false);
      return;
    }
    drop_monitor(ref);
  }

  void drop_monitor(const Ref& ref) {
    if (scope_monitors_.erase(ref)) return;
    auto it = group_monitors_.find(ref);
    if (it == group_monitors_.end()) return;
    auto& list = monitored_groups_[it->second.second];
    list.erase(std::remove_if(list.begin(), list.end(), [&](const auto& e) { return e.second == ref; }), list.end());
    if (list.empty()) monitored_groups_.erase(it->second.second);
    group_monitors_.erase(it);
  }

  Term demonitor(Process& self, const Ref& ref) {
    if (!scope_monitors_.count(ref) && !group_monitors_.count(ref)) return Term(Atom("false"));
    self.demonitor(ref, true);
    drop_monitor(ref);
    return Term(a_ok());
  }

  Node& node_;
  Atom scope_;
  std::shared_ptr<Table> table_;
  std::map<Pid, LocalMember> local_;
  std::map<Pid, Peer> remote_;
  std::map<Ref, Pid> scope_monitors_;
  std::map<Ref, std::pair<Pid, Term>> group_monitors_;
  std::unordered_map<Term, std::vector<std::pair<Pid, Ref>>> monitored_groups_;
};

// A call to the local scope, as pg's API makes it (infinity: the scope answers or is gone).
Result<Term, Term> call_scope(Runtime& rt, Atom scope, Term req) {
  return gen_server::call(rt, ServerRef(scope), std::move(req), gen_server::infinity);
}
Task<Result<Term, Term>> call_scope(Process& self, Atom scope, Term req) {
  co_return co_await gen_server::call(self, ServerRef(scope), std::move(req), gen_server::infinity);
}

// {error, {nolocal, Bad}} for the first pid that is not local (OTP checks in the caller).
std::optional<Term> not_local(const Runtime& rt, const std::vector<Pid>& pids) {
  for (const Pid& p : pids)
    if (!rt.is_local(p)) return Term::tuple({Term(Atom("nolocal")), Term(p)});
  return std::nullopt;
}

Result<bool, Term> ok_or(Result<Term, Term> r, const char* yes) {
  if (!r) return unexpected(r.error());
  if (r->is_atom(Atom(yes))) return true;
  if (r->is_atom(Atom("not_joined"))) return false;
  if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("error"))) return unexpected((*r)[1]);
  return unexpected(*r);
}

// pg's join_local / leave_local call for local `pids`, as pg:join/leave make it.
Result<bool, Term> change_local(Runtime& rt, const char* op, Atom scope, const Term& group, const std::vector<Pid>& pids) {
  if (auto bad = not_local(rt, pids)) return unexpected(*bad);
  return ok_or(call_scope(rt, scope, Term::tuple({Term(Atom(op)), group, pid_list(pids)})), "ok");
}
Task<Result<bool, Term>> change_local(Process& self, const char* op, Atom scope, Term group, std::vector<Pid> pids) {
  if (auto bad = not_local(self.runtime(), pids)) co_return unexpected(*bad);
  Term req = Term::tuple({Term(Atom(op)), std::move(group), pid_list(pids)});
  auto r = co_await call_scope(self, scope, std::move(req));
  co_return ok_or(std::move(r), "ok");
}

// The members of `group` (or its local ones), newest first.
std::vector<Pid> read_group(const Runtime& rt, Atom scope, const Term& group, bool local_only) {
  auto t = table_of(rt, scope);
  if (!t) return {};
  std::shared_lock lock(t->mu);
  auto it = t->groups.find(group);
  if (it == t->groups.end()) return {};
  return newest_first(local_only ? it->second.local : it->second.all);
}

}  // namespace

Atom default_scope() {
  static const Atom a("pg");
  return a;
}

ChildSpec scope_spec(Node& node, Atom scope) {
  return ChildSpec::server(Term(scope), [&node, scope] { return std::make_unique<Scope>(node, scope); },
                           gen_server::StartOptions{.name = scope});
}

Result<Pid, Term> start_scope(Node& node, Atom scope) {
  return gen_server::start(node.runtime(), std::make_unique<Scope>(node, scope), {.name = scope});
}

Result<bool, Term> join(Runtime& rt, Atom scope, const Term& group, const std::vector<Pid>& pids) {
  return change_local(rt, "join_local", scope, group, pids);
}
Task<Result<bool, Term>> join(Process& self, Atom scope, Term group, std::vector<Pid> pids) {
  return change_local(self, "join_local", scope, std::move(group), std::move(pids));
}
Result<bool, Term> leave(Runtime& rt, Atom scope, const Term& group, const std::vector<Pid>& pids) {
  return change_local(rt, "leave_local", scope, group, pids);
}
Task<Result<bool, Term>> leave(Process& self, Atom scope, Term group, std::vector<Pid> pids) {
  return change_local(self, "leave_local", scope, std::move(group), std::move(pids));
}

std::vector<Pid> get_members(const Runtime& rt, Atom scope, const Term& group) { return read_group(rt, scope, group, false); }
std::vector<Pid> get_local_members(const Runtime& rt, Atom scope, const Term& group) {
  return read_group(rt, scope, group, true);
}

std::vector<Term> which_groups(const Runtime& rt, Atom scope) {
  auto t = table_of(rt, scope);
  if (!t) return {};
  std::shared_lock lock(t->mu);
  std::vector<Term> out;
  for (const auto& [g, e] : t->groups) out.push_back(g);
  std::sort(out.begin(), out.end());
  return out;
}

Task<Result<std::pair<Ref, Term>, Term>> monitor_scope(Process& self, Atom scope) {
  auto r = co_await call_scope(self, scope, Term(Atom("monitor")));
  Ref ref;
  const Term* groups = nullptr;
  if (!r) co_return unexpected(r.error());
  if (!match(*r, tuple(bind(ref), bind(groups)))) co_return unexpected(*r);
  co_return std::pair{ref, *groups};
}

Task<Result<std::pair<Ref, std::vector<Pid>>, Term>> monitor(Process& self, Atom scope, Term group) {
  Term req = Term::tuple({Term(Atom("monitor")), group});
  auto r = co_await call_scope(self, scope, std::move(req));
  Ref ref;
  const Term* members = nullptr;
  if (!r) co_return unexpected(r.error());
  std::vector<Pid> pids;
  bool single = false;
  if (!match(*r, tuple(bind(ref), bind(members))) || !pids_of(*members, pids, single)) co_return unexpected(*r);
  co_return std::pair{ref, std::move(pids)};
}

Task<bool> demonitor(Process& self, Atom scope, Ref ref) {
  Term req = Term::tuple({Term(Atom("demonitor")), Term(ref)});
  auto r = co_await call_scope(self, scope, std::move(req));
  if (!r || !r->is_atom(a_ok())) co_return false;
  // What the scope sent before it forgot the monitor.
  const Term tag(ref);
  auto pending = [tag](const Term& m) { return m.is_tuple() && m.tuple_size() == 4 && m[0] == tag; };
  for (;;) {
    auto m = co_await self.receive(pending, std::chrono::milliseconds(0));
    if (!m) break;
  }
  co_return true;
}

// ------------------------------------------------------------------------------------ rpc built-ins

namespace {

// pg:join/leave as rpc runs them: PidOrPids as given (a pid or a list), local pids only.
Task<Term> change(Process& self, const char* op, Atom scope, Term group, Term who) {
  std::vector<Pid> pids;
  bool single = false;
  if (!pids_of(who, pids, single)) throw Error(Term::tuple({Term(Atom("nolocal")), who}));
  if (auto bad = not_local(self.runtime(), pids)) throw Error(*bad);
  Term req = Term::tuple({Term(Atom(op)), std::move(group), std::move(who)});
  auto r = co_await call_scope(self, scope, std::move(req));
  if (!r) throw Exit(r.error());
  co_return *r;
}

}  // namespace

void add_exports(Exports& exports, Node& node) {
  Node* n = &node;
  const Atom pg = default_scope();
  exports.add("pg", "join", [](Process& self, Atom scope, Term group, Term who) -> Task<Term> {
    co_return co_await change(self, "join_local", scope, std::move(group), std::move(who));
  });
  exports.add("pg", "join", [pg](Process& self, Term group, Term who) -> Task<Term> {
    co_return co_await change(self, "join_local", pg, std::move(group), std::move(who));
  });
  exports.add("pg", "leave", [](Process& self, Atom scope, Term group, Term who) -> Task<Term> {
    co_return co_await change(self, "leave_local", scope, std::move(group), std::move(who));
  });
  exports.add("pg", "leave", [pg](Process& self, Term group, Term who) -> Task<Term> {
    co_return co_await change(self, "leave_local", pg, std::move(group), std::move(who));
  });
  exports.add("pg", "get_members", [n](Atom scope, Term group) { return pid_list(get_members(n->runtime(), scope, group)); });
  exports.add("pg", "get_members", [n, pg](Term group) { return pid_list(get_members(n->runtime(), pg, group)); });
  exports.add("pg", "get_local_members",
              [n](Atom scope, Term group) { return pid_list(get_local_members(n->runtime(), scope, group)); });
  exports.add("pg", "get_local_members",
              [n, pg](Term group) { return pid_list(get_local_members(n->runtime(), pg, group)); });
  exports.add("pg", "which_groups", [n](Atom scope) { return Term::list(which_groups(n->runtime(), scope)); });
  exports.add("pg", "which_groups", [n, pg]() { return Term::list(which_groups(n->runtime(), pg)); });
}

}  // namespace hypha::pg
