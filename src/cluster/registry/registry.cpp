// The cluster registry: the process of each member that owns its entries and syncs the
// replicas (state.hpp has the merge rules), the API, the rpc built-ins.
//
// Between the registry processes of two members (all tuples, the sender's registry pid second):
//   {hello, From}                            I run this registry: send me your entries
//   {snapshot, From, Counter, [Entry]}       all my entries, as of my change Counter
//   {delta, From, Prev, Counter, [Change]}   my changes after Prev, up to Counter
//   {resync, From}                           I missed some of yours: send a snapshot
//   {state, From, Counter}                   anti-entropy: I am at Counter
// Entry: {Name, Pid, Meta, WallMs, Logical}; Change: {put, Name, Pid, Meta, WallMs, Logical} or
// {remove, Name}. hello goes to the registry's name on every node that comes up (a BEAM node
// drops it); the rest go to members only, and only what comes from members is read.
#include "hypha/cluster/registry.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <shared_mutex>

#include "hypha/base/hlc.hpp"
#include "hypha/base/log.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/term/match.hpp"
#include "../by_name.hpp"
#include "../wall.hpp"
#include "state.hpp"

namespace hypha::registry {

namespace {

using namespace pattern;
using detail::Change;
using detail::Conflict;
using detail::Entry;

const Atom& a_ok() { static const Atom a("ok"); return a; }
const Atom& a_error() { static const Atom a("error"); return a; }
const Atom& a_tick() { static const Atom a("$hypha_registry_tick"); return a; }
const Atom& a_ae() { static const Atom a("$hypha_registry_anti_entropy"); return a; }

// The replica, read from any thread; written by its registry process only.
struct Table {
  mutable std::shared_mutex mu;
  std::optional<detail::State> state;
  std::size_t members = 0;  // the registry process's member count, for stats() from any thread
};

cluster::detail::ByName<Table>& tables() {
  static cluster::detail::ByName<Table> t;
  return t;
}

Term entry_term(const Term& name, const Entry& e) {
  return Term::tuple({name, Term(e.pid), e.meta, Term(static_cast<std::int64_t>(e.ts.wall_ms)),
                      Term(static_cast<std::int64_t>(e.ts.logical))});
}

std::optional<std::pair<Term, Entry>> entry_of(const Term& t) {
  const Term* name = nullptr;
  const Term* meta = nullptr;
  Pid pid;
  std::uint64_t wall = 0;
  std::uint32_t logical = 0;
  if (!match(t, tuple(bind(name), bind(pid), bind(meta), bind(wall), bind(logical)))) return std::nullopt;
  return std::pair{*name, Entry{pid, *meta, HlcTime{wall, logical}}};
}

std::optional<Change> change_of(const Term& t) {
  const Term* name = nullptr;
  if (match(t, tuple("remove", bind(name)))) return Change{*name, std::nullopt};
  if (!t.is_tuple() || t.tuple_size() != 6 || !t[0].is_atom(Atom("put"))) return std::nullopt;
  auto e = entry_of(Term::tuple({t[1], t[2], t[3], t[4], t[5]}));
  if (!e) return std::nullopt;
  return Change{e->first, e->second};
}

Term change_term(const Change& c) {
  if (!c.entry) return Term::tuple({Term(Atom("remove")), c.name});
  const Entry& e = *c.entry;
  return Term::tuple({Term(Atom("put")), c.name, Term(e.pid), e.meta, Term(static_cast<std::int64_t>(e.ts.wall_ms)),
                      Term(static_cast<std::int64_t>(e.ts.logical))});
}

// The pattern rule of select(): '_' matches anything; tuples and lists element by element.
bool matches(const Term& pattern, const Term& t) {
  static const Atom wildcard("_");
  if (pattern.is_atom(wildcard)) return true;
  if (pattern.is_tuple()) {
    if (!t.is_tuple() || t.tuple_size() != pattern.tuple_size()) return false;
    for (std::size_t i = 0; i < pattern.tuple_size(); ++i)
      if (!matches(pattern[i], t[i])) return false;
    return true;
  }
  if (pattern.is_proper_list() && t.is_proper_list()) {
    const auto ps = pattern.list_elements();
    const auto ts = t.list_elements();
    if (ps.size() != ts.size()) return false;
    for (std::size_t i = 0; i < ps.size(); ++i)
      if (!matches(ps[i], ts[i])) return false;
    return true;
  }
  return pattern == t;
}

using cluster::detail::wall_of;

class Registry final : public GenServer {
 public:
  Registry(Node& node, Options opts)
      : node_(node), opts_(opts), table_(std::make_shared<Table>()), hlc_(wall_of(node.runtime())) {}

  Task<> init(Process& self) override {
    {
      std::unique_lock lock(table_->mu);
      table_->state.emplace(self.pid());
    }
    tables().put(self.runtime(), opts_.name, table_);
    node_.monitor_nodes(self.pid());
    for (Atom n : node_.nodes(true)) say_hello(self, n);
    self.send_after(opts_.anti_entropy, self.pid(), Term(a_ae()));
    co_return;
  }

  Task<> terminate(Process& self, const Term&) override {
    node_.monitor_nodes(self.pid(), false);
    tables().remove(self.runtime(), opts_.name, table_);
    co_return;
  }

  Task<Action> handle_call(Process& self, const Term& req, const From&) override {
    const Term* name = nullptr;
    const Term* meta = nullptr;
    Pid pid;
    if (match(req, tuple("register", bind(name), bind(pid), bind(meta)))) co_return do_register(self, *name, pid, *meta);
    if (match(req, tuple("unregister", bind(name)))) co_return do_unregister(self, *name);
    if (match(req, tuple("update_meta", bind(name), bind(meta)))) co_return do_update_meta(self, *name, *meta);
    untrusted("unexpected_call", req);
    co_return Term::tuple({Term(a_error()), Term(Atom("badarg"))});
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    Pid from, pid;
    Ref ref;
    Atom node;
    std::uint64_t prev = 0, counter = 0;
    const Term* items = nullptr;
    const Term* reason = nullptr;
    if (match(msg, tuple("hello", bind(from)))) hello(self, from);
    else if (match(msg, tuple("snapshot", bind(from), bind(counter), bind(items)))) snapshot(self, from, counter, *items, msg);
    else if (match(msg, tuple("delta", bind(from), bind(prev), bind(counter), bind(items)))) delta(self, from, prev, counter, *items, msg);
    else if (match(msg, tuple("resync", bind(from)))) { if (members_.count(from)) send_snapshot(self, from); }
    else if (match(msg, tuple("state", bind(from), bind(counter)))) peer_state(self, from, counter);
    else if (match(msg, tuple("DOWN", bind(ref), "process", bind(pid), bind(reason)))) down(self, ref, pid);
    else if (match(msg, tuple("nodeup", bind(node)))) say_hello(self, node);
    else if (msg.is_atom(a_tick())) tick(self);
    else if (msg.is_atom(a_ae())) anti_entropy(self);
    else if (!match(msg, tuple("nodedown", any)))
      untrusted("unexpected_message", msg);
    co_return Action::noreply();
  }

 private:
  struct Member {
    Ref mref;
    std::uint64_t sent = 0;  // our changes sent to it, up to
  };

  bool remote(const Pid& p) const { return p.node != node_.name(); }
  // A node whose registry may be a member: any, or one of the static list.
  bool may_be_member(Atom node) const {
    return node != node_.name() &&
           (opts_.members.empty() || std::find(opts_.members.begin(), opts_.members.end(), node) != opts_.members.end());
  }
  void say_hello(Process& self, Atom node) {
    if (may_be_member(node)) self.send(opts_.name, node, Term::tuple({Term(Atom("hello")), Term(self.pid())}));
  }

  void untrusted(std::string_view what, const Term& msg) {
    log::limited(log::Level::Warn, node_.name().text(), "registry_message_dropped",
                 std::string(opts_.name.text()) + " " + std::string(what),
                 {{"registry", opts_.name.text()}, {"reason", what}, {"message", pattern::detail::shorten(msg)}});
  }

  // --- writes of our own

  Term do_register(Process& self, const Term& name, const Pid& pid, const Term& meta) {
    std::vector<Conflict> none;
    {
      std::unique_lock lock(table_->mu);
      detail::State& s = *table_->state;
      auto held_by = [](const Entry& w) {
        return Term::tuple({Term(a_error()), Term::tuple({Term(Atom("already_registered")), Term(w.pid)})});
      };
      if (const Entry* w = s.winner(name)) {
        // A local holder that died is leaving (its DOWN is on its way here): not a holder.
        if (!(self.runtime().is_local(w->pid) && !self.runtime().alive(w->pid))) return held_by(*w);
        remove_pid_locked(s, w->pid);
        if (const Entry* next = s.winner(name)) return held_by(*next);
      }
      s.put_own(name, Entry{pid, meta, hlc_.now()});
    }
    if (!watched_.count(pid)) watched_[pid] = self.monitor(pid);
    changed(self);
    return Term(a_ok());
  }

  Term do_unregister(Process& self, const Term& name) {
    bool had = false;
    std::optional<Pid> pid;
    {
      std::unique_lock lock(table_->mu);
      detail::State& s = *table_->state;
      if (const Entry* e = s.own(name)) pid = e->pid;
      had = s.remove_own(name);
    }
    if (!had) return Term(Atom("not_registered"));
    if (pid) unwatch_if_unused(self, *pid);
    changed(self);
    return Term(a_ok());
  }

  Term do_update_meta(Process& self, const Term& name, const Term& meta) {
    {
      std::unique_lock lock(table_->mu);
      detail::State& s = *table_->state;
      const Entry* e = s.own(name);
      if (!e) return Term(Atom("not_registered"));
      Entry updated{e->pid, meta, e->ts};
      s.put_own(name, std::move(updated));
    }
    changed(self);
    return Term(a_ok());
  }

  // Removes our entries of `pid` (under the table's lock).
  static bool remove_pid_locked(detail::State& s, const Pid& pid) {
    bool any = false;
    for (const Term& name : s.own_names_of(pid)) any = s.remove_own(name) || any;
    return any;
  }

  void unwatch_if_unused(Process& self, const Pid& pid) {
    bool used = false;
    {
      std::shared_lock lock(table_->mu);
      used = !table_->state->own_names_of(pid).empty();
    }
    auto it = watched_.find(pid);
    if (used || it == watched_.end()) return;
    self.demonitor(it->second, true);
    watched_.erase(it);
  }

  // Our entries that lost to older registrations elsewhere: they go, and their processes hear why.
  void resolve(Process& self, const std::vector<Conflict>& conflicts) {
    if (conflicts.empty()) return;
    {
      std::unique_lock lock(table_->mu);
      for (const Conflict& c : conflicts) table_->state->remove_own(c.name);
    }
    for (const Conflict& c : conflicts) {
      log::event(log::Level::Info, node_.name().text(), "registry_name_conflict",
                 {{"registry", opts_.name.text()}, {"name", pattern::detail::shorten(c.name)},
                  {"loser", Term(c.loser).to_string()}, {"winner", Term(c.winner).to_string()}});
      self.exit(c.loser, Term::tuple({Term(Atom("name_conflict")), c.name, Term(c.winner)}));
      unwatch_if_unused(self, c.loser);
    }
    changed(self);
  }

  // --- sending our changes

  // A change made when none went out for a sync interval goes at once; the ones after it wait
  // for the interval's end, together.
  void changed(Process& self) {
    if (cooling_) {
      dirty_ = true;
      return;
    }
    flush(self);
    cooling_ = true;
    self.send_after(opts_.sync_interval, self.pid(), Term(a_tick()));
  }

  void tick(Process& self) {
    cooling_ = false;
    if (!dirty_) return;
    dirty_ = false;
    changed(self);
  }

  void flush(Process& self) {
    std::vector<std::pair<Pid, Term>> out;
    {
      std::unique_lock lock(table_->mu);
      detail::State& s = *table_->state;
      const std::uint64_t now = s.counter();
      std::uint64_t low = now;
      for (auto& [pid, m] : members_) {
        if (m.sent < now) {
          if (auto changes = s.changes_since(m.sent)) {
            std::vector<Term> items;
            items.reserve(changes->size());
            for (const Change& c : *changes) items.push_back(change_term(c));
            out.emplace_back(pid, Term::tuple({Term(Atom("delta")), Term(self.pid()), Term(static_cast<std::int64_t>(m.sent)),
                                               Term(static_cast<std::int64_t>(now)), Term::list(std::move(items))}));
          } else {
            out.emplace_back(pid, snapshot_term_locked(self, s));
          }
          m.sent = now;
        }
        low = std::min(low, m.sent);
      }
      s.truncate_log(low);  // every member has what is cut
    }
    for (auto& [pid, msg] : out) self.send(pid, std::move(msg));
  }

  Term snapshot_term_locked(Process& self, const detail::State& s) const {
    std::vector<Term> items;
    for (const auto& [name, e] : s.own_entries()) items.push_back(entry_term(name, e));
    return Term::tuple({Term(Atom("snapshot")), Term(self.pid()), Term(static_cast<std::int64_t>(s.counter())),
                        Term::list(std::move(items))});
  }

  void send_snapshot(Process& self, const Pid& to) {
    Term msg;
    {
      std::shared_lock lock(table_->mu);
      msg = snapshot_term_locked(self, *table_->state);
      members_[to].sent = table_->state->counter();
    }
    self.send(to, std::move(msg));
  }

  // --- other members

  // A member's registry says it runs (at its start, or at nodeup): a new one gets our hello back;
  // every one gets our entries (from a known one this is mostly the second of two crossing
  // hellos, but it may also have forgotten us while we kept it: a snapshot is cheap, and safe).
  void hello(Process& self, const Pid& from) {
    if (!may_be_member(from.node)) return untrusted("not_a_listed_member", Term(from));
    if (!members_.count(from)) {
      members_[from].mref = self.monitor(from);
      {
        std::unique_lock lock(table_->mu);
        table_->members = members_.size();
      }
      self.send(from, Term::tuple({Term(Atom("hello")), Term(self.pid())}));
    }
    send_snapshot(self, from);
  }

  // The timestamps of what a member sends move our clock past them (so a name registered here
  // after we saw it elsewhere is younger); one too far ahead is kept but not followed.
  void observe(const Entry& e) { hlc_.observe(e.ts); }

  void snapshot(Process& self, const Pid& from, std::uint64_t counter, const Term& items, const Term& msg) {
    if (!members_.count(from)) return untrusted("not_a_member", msg);
    std::vector<std::pair<Term, Entry>> entries;
    if (!items.is_proper_list()) return untrusted("malformed_snapshot", msg);
    for (const Term& t : items.list_elements()) {
      auto e = entry_of(t);
      if (!e) return untrusted("malformed_snapshot", msg);
      observe(e->second);
      entries.push_back(std::move(*e));
    }
    std::vector<Conflict> conflicts;
    {
      std::unique_lock lock(table_->mu);
      table_->state->replace(from, counter, entries, conflicts);
    }
    resolve(self, conflicts);
  }

  void delta(Process& self, const Pid& from, std::uint64_t prev, std::uint64_t counter, const Term& items,
             const Term& msg) {
    if (!members_.count(from)) return untrusted("not_a_member", msg);
    std::vector<Change> changes;
    if (!items.is_proper_list()) return untrusted("malformed_delta", msg);
    for (const Term& t : items.list_elements()) {
      auto c = change_of(t);
      if (!c) return untrusted("malformed_delta", msg);
      if (c->entry) observe(*c->entry);
      changes.push_back(std::move(*c));
    }
    std::vector<Conflict> conflicts;
    bool applied = false;
    {
      std::unique_lock lock(table_->mu);
      applied = table_->state->apply(from, prev, counter, changes, conflicts);
    }
    if (!applied) self.send(from, Term::tuple({Term(Atom("resync")), Term(self.pid())}));
    resolve(self, conflicts);
  }

  void peer_state(Process& self, const Pid& from, std::uint64_t counter) {
    if (!members_.count(from)) {
      // It counts us a member and we do not count it: hello makes both sides agree again.
      if (may_be_member(from.node)) self.send(from, Term::tuple({Term(Atom("hello")), Term(self.pid())}));
      return;
    }
    std::optional<std::uint64_t> have;
    {
      std::shared_lock lock(table_->mu);
      have = table_->state->version(from);
    }
    // What it sent before this came first: behind means a change was lost.
    if (!have || *have != counter) self.send(from, Term::tuple({Term(Atom("resync")), Term(self.pid())}));
  }

  void anti_entropy(Process& self) {
    // How far we sent to each (a change still waiting for the interval is not lost).
    for (const auto& [pid, m] : members_)
      self.send(pid, Term::tuple({Term(Atom("state")), Term(self.pid()), Term(static_cast<std::int64_t>(m.sent))}));
    self.send_after(opts_.anti_entropy, self.pid(), Term(a_ae()));
  }

  void down(Process& self, const Ref& ref, const Pid& pid) {
    if (auto m = members_.find(pid); m != members_.end() && m->second.mref == ref) {
      members_.erase(m);
      std::unique_lock lock(table_->mu);
      table_->state->forget(pid);
      table_->members = members_.size();
      return;
    }
    auto w = watched_.find(pid);
    if (w == watched_.end() || w->second != ref) return;
    watched_.erase(w);
    bool any = false;
    {
      std::unique_lock lock(table_->mu);
      any = remove_pid_locked(*table_->state, pid);
    }
    if (any) changed(self);
  }

  Node& node_;
  Options opts_;
  std::shared_ptr<Table> table_;
  HybridClock hlc_;
  std::map<Pid, Member> members_;
  std::map<Pid, Ref> watched_;  // registered processes, monitored
  bool cooling_ = false;        // a sync interval since the last flush has not ended
  bool dirty_ = false;          // changes wait for it to end
};

std::shared_ptr<Table> table_of(const Runtime& rt, Atom registry) { return tables().find(rt, registry); }

Result<Term, Term> call_server(Runtime& rt, const ServerRef& to, Term req) {
  return gen_server::call(rt, to, std::move(req), gen_server::infinity);
}
Task<Result<Term, Term>> call_server(Process& self, ServerRef to, Term req) {
  co_return co_await gen_server::call(self, to, std::move(req), gen_server::infinity);
}

// The registry process that holds `name`'s entry (the one whose node registered it), or ours.
ServerRef owner_of(const Runtime& rt, const Term& name, Atom registry) {
  auto t = table_of(rt, registry);
  if (!t) return ServerRef(registry);
  std::shared_lock lock(t->mu);
  const Pid* origin = t->state->winner_origin(name);
  return origin ? ServerRef(*origin) : ServerRef(registry);
}

Result<bool, Term> ok_or(Result<Term, Term> r, bool not_registered_is_false) {
  if (!r) return unexpected(r.error());
  if (r->is_atom(a_ok())) return true;
  if (not_registered_is_false && r->is_atom(Atom("not_registered"))) return false;
  const Term* reason = nullptr;
  if (match(*r, tuple("error", bind(reason)))) return unexpected(*reason);
  return unexpected(*r);
}

Term register_request(const Term& name, const Pid& pid, const Term& meta) {
  return Term::tuple({Term(Atom("register")), name, Term(pid), meta});
}

}  // namespace

Atom default_name() { return Atom("hypha_registry"); }

ChildSpec spec(Node& node, const Options& opts) {
  return ChildSpec::server(Term(opts.name), [&node, opts] { return std::make_unique<Registry>(node, opts); },
                           gen_server::StartOptions{.name = opts.name});
}

Result<Pid, Term> start(Node& node, const Options& opts) {
  return gen_server::start(node.runtime(), std::make_unique<Registry>(node, opts), {.name = opts.name});
}

Result<bool, Term> register_name(Runtime& rt, const Term& name, const Pid& pid, const Term& meta, Atom registry) {
  return ok_or(call_server(rt, ServerRef(registry), register_request(name, pid, meta)), false);
}
Task<Result<bool, Term>> register_name(Process& self, Term name, Pid pid, Term meta, Atom registry) {
  Term req = register_request(name, pid, meta);
  auto r = co_await call_server(self, ServerRef(registry), std::move(req));
  co_return ok_or(std::move(r), false);
}

Result<bool, Term> unregister_name(Runtime& rt, const Term& name, Atom registry) {
  return ok_or(call_server(rt, owner_of(rt, name, registry), Term::tuple({Term(Atom("unregister")), name})), true);
}
Task<Result<bool, Term>> unregister_name(Process& self, Term name, Atom registry) {
  Term req = Term::tuple({Term(Atom("unregister")), name});
  auto r = co_await call_server(self, owner_of(self.runtime(), name, registry), std::move(req));
  co_return ok_or(std::move(r), true);
}

Result<bool, Term> update_meta(Runtime& rt, const Term& name, const Term& meta, Atom registry) {
  return ok_or(call_server(rt, owner_of(rt, name, registry), Term::tuple({Term(Atom("update_meta")), name, meta})), true);
}

std::optional<Holder> lookup(const Runtime& rt, const Term& name, Atom registry) {
  auto t = table_of(rt, registry);
  if (!t) return std::nullopt;
  std::shared_lock lock(t->mu);
  const Entry* e = t->state->winner(name);
  if (!e) return std::nullopt;
  return Holder{e->pid, e->meta};
}

std::optional<Pid> whereis(const Runtime& rt, const Term& name, Atom registry) {
  auto h = lookup(rt, name, registry);
  return h ? std::optional<Pid>(h->pid) : std::nullopt;
}

std::vector<Registration> select(const Runtime& rt, const Term& pattern, Atom registry) {
  std::vector<Registration> out;
  auto t = table_of(rt, registry);
  if (!t) return out;
  {
    std::shared_lock lock(t->mu);
    t->state->for_each([&](const Term& name, const Entry& e) {
      if (matches(pattern, name)) out.push_back({name, e.pid, e.meta});
    });
  }
  std::sort(out.begin(), out.end(), [](const Registration& a, const Registration& b) { return a.name < b.name; });
  return out;
}

std::size_t count(const Runtime& rt, Atom registry) {
  auto t = table_of(rt, registry);
  if (!t) return 0;
  std::shared_lock lock(t->mu);
  return t->state->size();
}

std::vector<Term> names_of(const Runtime& rt, const Pid& pid, Atom registry) {
  auto t = table_of(rt, registry);
  if (!t) return {};
  std::shared_lock lock(t->mu);
  return t->state->names_of(pid);
}

bool send(Runtime& rt, const Term& name, const Term& msg, Atom registry) {
  auto p = whereis(rt, name, registry);
  if (!p) return false;
  rt.send(*p, msg);
  return true;
}

Stats stats(const Runtime& rt, Atom registry) {
  auto t = table_of(rt, registry);
  if (!t) return {};
  std::shared_lock lock(t->mu);
  return Stats{t->state->size(), t->members, t->state->log_size()};
}

void add_exports(Exports& exports, Node& node) {
  Node* n = &node;
  const Atom reg = default_name();
  auto yes_no = [](const Result<bool, Term>& r) { return Term(Atom(r ? "yes" : "no")); };
  exports.add("hypha_registry", "register_name", [reg, yes_no](Process& self, Term name, Pid pid) -> Task<Term> {
    auto r = co_await register_name(self, std::move(name), pid, Term::list({}), reg);
    co_return yes_no(r);
  });
  exports.add("hypha_registry", "register_name", [reg, yes_no](Process& self, Term name, Pid pid, Term meta) -> Task<Term> {
    auto r = co_await register_name(self, std::move(name), pid, std::move(meta), reg);
    co_return yes_no(r);
  });
  exports.add("hypha_registry", "unregister_name", [reg](Process& self, Term name) -> Task<Term> {
    auto r = co_await unregister_name(self, std::move(name), reg);
    if (!r) throw Exit(r.error());
    co_return Term(a_ok());
  });
  exports.add("hypha_registry", "whereis_name", [n, reg](Term name) {
    auto p = whereis(n->runtime(), name, reg);
    return p ? Term(*p) : Term(Atom("undefined"));
  });
  exports.add("hypha_registry", "lookup", [n, reg](Term name) {
    auto h = lookup(n->runtime(), name, reg);
    return h ? Term::tuple({Term(h->pid), h->meta}) : Term(Atom("undefined"));
  });
  exports.add("hypha_registry", "send", [n, reg](Term name, Term msg) {
    auto p = whereis(n->runtime(), name, reg);
    if (!p) throw Exit(Term::tuple({Term(Atom("badarg")), Term::tuple({name, msg})}));
    n->runtime().send(*p, msg);
    return Term(*p);
  });
  exports.add("hypha_registry", "count", [n, reg]() { return static_cast<std::int64_t>(count(n->runtime(), reg)); });
  exports.add("hypha_registry", "list", [n, reg]() {
    std::vector<Term> out;
    for (const auto& r : select(n->runtime(), Term(Atom("_")), reg)) out.push_back(Term::tuple({r.name, Term(r.pid)}));
    return Term::list(std::move(out));
  });
}

namespace {
class RegistryNames final : public NameService {
 public:
  explicit RegistryNames(Atom registry) : registry_(registry) {}
  Atom module() const override { return registry_ == default_name() ? Atom("hypha_registry") : registry_; }
  Task<bool> register_name(Process& self, Term name, Pid pid) const override {
    auto r = co_await registry::register_name(self, std::move(name), pid, Term::list({}), registry_);
    co_return r.ok();
  }
  std::optional<Pid> whereis(const Runtime& rt, const Term& name) const override {
    return registry::whereis(rt, name, registry_);
  }

 private:
  Atom registry_;
};
}  // namespace

std::shared_ptr<const NameService> via(Atom registry) { return std::make_shared<RegistryNames>(registry); }
ViaName via_name(Term name, Atom registry) { return ViaName{via(registry), std::move(name)}; }

}  // namespace hypha::registry
