// hypha_sup, the distributed supervisor (cluster/supervisor.hpp): one process per member node.
// It runs its own children (linked, trapping exits), keeps a replica of every other member's
// children, and starts a gone member's children again where the hash ring of the survivors says.
//
// Messages between members (each member's process is registered under the supervisor's name):
//   {hello, From, Children}                 Children: [{Id, Spec, Pid}] it runs; answered once
//   {child_up, From, Ref, Id, Spec, Pid}    answered {ack, Ref, Self}; a start replies once all acked
//   {child_down, From, Id}
//   {start_here, ReplyTo, Spec}             ReplyTo: {Pid, Tag} of a call, or none (failover)
//   {terminate_here, ReplyTo, Id}
//   {handover, From, [Spec]}                a member that leaves cleanly, its children stopped
//   {move, From, Spec, OldPid}              active redistribution: start it, OldPid stopped
//   {lease, From}                           quorum: every lease/3, to every member
//   {child_ended, From, Id, Pid}            it ended for good (clean exit of a transient child,
//                                           given up, terminated): not to be started again
//   {ended_query, From, Ref, [Id]}          quorum, before children parked in a minority start
//                                           again: which of them ended meanwhile? answered
//   {ended_answer, Ref, From, [Id]}         with the ones it knows ended
#include "hypha/cluster/supervisor.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "hypha/base/log.hpp"
#include "hypha/base/metrics.hpp"
#include "hypha/cluster/events.hpp"
#include "hypha/cluster/registry.hpp"
#include "hypha/cluster/routing.hpp"
#include "hypha/process/gen.hpp"
#include "hypha/term/match.hpp"

namespace hypha::dsup {

namespace {

using namespace pattern;
using Clock = std::chrono::steady_clock;

const Atom& a_go() { static const Atom a("$hypha_sup_go"); return a; }
const Atom& a_started() { static const Atom a("$hypha_sup_started"); return a; }
const Atom& a_retry() { static const Atom a("$hypha_sup_retry"); return a; }
const Atom& a_kill() { static const Atom a("$hypha_sup_kill"); return a; }
const Atom& a_none() { static const Atom a("none"); return a; }
const Atom& a_lease() { static const Atom a("$hypha_sup_lease"); return a; }
const Atom& a_query_timeout() { static const Atom a("$hypha_sup_query_timeout"); return a; }

// Registration attempts of a start whose id is still held by a process that is gone (its node
// died, or it left) but not yet out of this node's registry replica: every 10 ms, for 3 s.
constexpr int kRegisterAttempts = 300;
constexpr std::chrono::milliseconds kRegisterRetry{10};
constexpr std::chrono::milliseconds kShutdown{5000};
// Ids of children that ended for good are kept this long, and at most this many: what a member
// that comes back from a minority asks before it starts the children it parked there.
constexpr std::chrono::minutes kEndedHorizon{10};
constexpr std::size_t kEndedMax = 100000;
// How long parked children wait for the members' answers before they start anyway.
constexpr std::chrono::milliseconds kQueryTimeout{1000};

Term restart_term(Restart r) {
  return Term(Atom(r == Restart::Permanent ? "permanent" : r == Restart::Transient ? "transient" : "temporary"));
}

Term error(Term why) { return Term::tuple({Term(Atom("error")), std::move(why)}); }

struct LocalChild {
  ChildSpec spec;
  Pid pid;  // the runner, or the process its export started
  std::deque<Clock::time_point> restarts;
};

struct Pending {
  ChildSpec spec;
  std::optional<From> reply_to;
  Pid runner;
  int attempts = 0;
  std::deque<Clock::time_point> restarts;
};

// A child another member runs, as it told us.
struct RemoteChild {
  ChildSpec spec;
  Pid pid;
};

// A start deferred to the process that held the id: started again should that one end.
struct Holder {
  ChildSpec spec;
  Pid holder;
  std::deque<Clock::time_point> restarts;
};

struct Member {
  Ref mref;
  bool leaving = false;
  Clock::time_point heard{};  // quorum: its last lease message
  std::map<Term, RemoteChild> children;
};

struct AckWait {
  From reply_to;
  Term reply;
  std::set<Pid> waiting;
};

// Parked children waiting for the members to say which of them ended meanwhile.
struct EndedQuery {
  std::map<Term, ChildSpec> specs;
  std::set<Pid> waiting;
};

std::optional<From> from_of(const Term& t) {
  Pid pid;
  const Term* tag = nullptr;
  if (!match(t, tuple(bind(pid), bind(tag)))) return std::nullopt;
  return From{pid, *tag};
}
Term from_term(const std::optional<From>& f) {
  return f ? Term::tuple({Term(f->pid), f->tag}) : Term(a_none());
}

class Sup final : public GenServer {
 public:
  Sup(Node& node, std::shared_ptr<Exports> exports, Options opts)
      : node_(node), exports_(std::move(exports)), opts_(opts) {
    known_.insert(node_.name());
    known_.insert(opts_.members.begin(), opts_.members.end());
  }

  Task<> init(Process& self) override {
    self.trap_exit(true);
    node_.monitor_nodes(self.pid());
    for (Atom n : node_.nodes(true)) say_hello(self, n);
    if (opts_.distribution == Distribution::Quorum) {
      lease_ = opts_.lease.count() > 0 ? opts_.lease
               : node_.detect().count() > 0 ? node_.detect() / 2
                                             : std::chrono::milliseconds(20000);  // detection by the tick only
      self.send_after(lease_ / 3, self.pid(), Term(a_lease()));
    }
    co_return;
  }

  // A clean stop (the node leaves): the children stop first, then the others take them over.
  Task<> terminate(Process& self, const Term&) override {
    node_.monitor_nodes(self.pid(), false);
    std::vector<Term> handed;
    std::vector<Pid> stopping;
    for (auto& [id, c] : local_) {
      if (c.spec.restart != Restart::Temporary) handed.push_back(c.spec.to_term());
      self.exit(c.pid, Term(Atom("shutdown")));
      stopping.push_back(c.pid);
    }
    for (const Pid& p : stopping) {
      const Term pt(p);
      auto exited = [&pt](const Term& m) { return m.is_tuple() && m.tuple_size() == 3 && m[0].is_atom(Atom("EXIT")) && m[1] == pt; };
      if (!co_await self.receive(exited, kShutdown)) self.exit(p, Term(Atom("kill")));
    }
    const Term msg = Term::tuple({Term(Atom("handover")), Term(self.pid()), Term::list(std::move(handed))});
    for (const auto& [pid, m] : members_) self.send(pid, msg);
    co_return;
  }

  Task<Action> handle_call(Process& self, const Term& req, const From& from) override {
    const Term* spec_t = nullptr;
    const Term* id = nullptr;
    if (match(req, tuple("start_child", bind(spec_t)))) {
      auto spec = ChildSpec::from_term(*spec_t);
      if (!spec) co_return Action::reply(error(Term::tuple({Term(Atom("bad_child_spec")), *spec_t})));
      if (!quorum()) co_return Action::reply(error(Term(Atom("no_quorum"))));
      const Atom owner = opts_.distribution == Distribution::Local ? node_.name() : owner_of(spec->id);
      if (owner == node_.name()) co_await start_local(self, *spec, from, {});
      else self.send(opts_.name, owner, Term::tuple({Term(Atom("start_here")), from_term(from), *spec_t}));
      co_return Action::noreply();
    }
    if (match(req, tuple("terminate_child", bind(id)))) {
      if (auto it = local_.find(*id); it != local_.end()) {
        const Pid pid = it->second.pid;
        Term r = stop_local(self, *id);
        ended(self, *id, pid);
        co_return Action::reply(std::move(r));
      }
      for (const auto& [pid, m] : members_)
        if (m.children.count(*id)) {
          self.send(pid, Term::tuple({Term(Atom("terminate_here")), from_term(from), *id}));
          co_return Action::noreply();
        }
      co_return Action::reply(error(Term(Atom("not_found"))));
    }
    if (req.is_atom(Atom("which_children"))) {
      std::vector<Term> out;
      for (const Child& c : children()) out.push_back(Term::tuple({c.id, Term(c.pid), Term(c.node), restart_term(c.restart)}));
      co_return Action::reply(Term::list(std::move(out)));
    }
    untrusted("unexpected_call", req);
    co_return Action::reply(error(Term(Atom("badarg"))));
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    Pid from, pid;
    Ref ref;
    Atom node;
    const Term* items = nullptr;
    const Term* id = nullptr;
    const Term* spec_t = nullptr;
    const Term* reply_to = nullptr;
    const Term* ref_t = nullptr;
    const Term* reason = nullptr;
    if (match(msg, tuple("EXIT", bind(pid), bind(reason)))) {
      co_await child_exit(self, pid, *reason);
    } else if (match(msg, tuple(a_started(), bind(id), bind(from), bind(pid)))) {
      co_await child_moved(self, *id, from, pid);
    } else if (match(msg, tuple(a_retry(), bind(id)))) {
      if (pending_.count(*id)) co_await try_register(self, *id);
    } else if (msg.is_atom(a_lease())) {
      lease_tick(self);
      self.send_after(lease_ / 3, self.pid(), Term(a_lease()));
    } else if (match(msg, tuple("lease", bind(from)))) {
      if (auto it = members_.find(from); it != members_.end()) it->second.heard = self.runtime().clock()->now();
    } else if (match(msg, tuple(a_kill(), bind(pid)))) {
      if (self.runtime().alive(pid)) self.exit(pid, Term(Atom("kill")));
    } else if (match(msg, tuple("hello", bind(from), bind(items)))) {
      hello(self, from, *items);
    } else if (match(msg, tuple("child_up", bind(from), bind(ref_t), bind(id), bind(spec_t), bind(pid)))) {
      auto spec = ChildSpec::from_term(*spec_t);
      if (spec && from.node != node_.name()) {
        Member& m = member(self, from);
        m.children[*id] = RemoteChild{*spec, pid};
        ended_.erase(*id);  // started again
      }
      self.send(from, Term::tuple({Term(Atom("ack")), *ref_t, Term(self.pid())}));
    } else if (match(msg, tuple("child_down", bind(from), bind(id)))) {
      auto it = members_.find(from);
      if (it != members_.end()) {
        // Its pid may stay in this node's registry replica a moment: not a holder to defer to.
        if (auto c = it->second.children.find(*id); c != it->second.children.end()) gone_.insert(c->second.pid);
        it->second.children.erase(*id);
      }
    } else if (match(msg, tuple("child_ended", bind(from), bind(id), bind(pid)))) {
      // (A copy started since, heard of first, is not ended by it.)
      if (members_.count(from) && !runs_other_than(*id, pid)) remember_ended(self, *id);
    } else if (match(msg, tuple("ended_query", bind(from), bind(ref_t), bind(items)))) {
      answer_ended(self, from, *ref_t, *items);
    } else if (match(msg, tuple("ended_answer", bind(ref_t), bind(from), bind(items)))) {
      co_await ended_answer(self, *ref_t, from, *items);
    } else if (match(msg, tuple(a_query_timeout(), bind(ref_t)))) {
      if (auto q = queries_.find(*ref_t); q != queries_.end()) {
        q->second.waiting.clear();
        co_await query_done(self, *ref_t);
      }
    } else if (match(msg, tuple("ack", bind(ref_t), bind(from)))) {
      acked(self, *ref_t, from);
    } else if (match(msg, tuple("start_here", bind(reply_to), bind(spec_t)))) {
      auto spec = ChildSpec::from_term(*spec_t);
      auto rt = from_of(*reply_to);
      if (spec && !quorum()) {
        if (rt) gen::reply(self, *rt, error(Term(Atom("no_quorum"))));
      } else if (spec) {
        co_await start_local(self, *spec, rt, {});
      } else if (rt) gen::reply(self, *rt, error(Term::tuple({Term(Atom("bad_child_spec")), *spec_t})));
    } else if (match(msg, tuple("terminate_here", bind(reply_to), bind(id)))) {
      auto rt = from_of(*reply_to);
      Term r = error(Term(Atom("not_found")));
      if (auto it = local_.find(*id); it != local_.end()) {
        const Pid child = it->second.pid;
        r = stop_local(self, *id);
        ended(self, *id, child);
      }
      if (rt) gen::reply(self, *rt, r);
    } else if (match(msg, tuple("move", bind(from), bind(spec_t), bind(pid)))) {
      auto spec = ChildSpec::from_term(*spec_t);
      if (spec && members_.count(from)) {
        gone_.insert(pid);
        co_await start_local(self, *spec, std::nullopt, {});
      }
    } else if (match(msg, tuple("handover", bind(from), bind(items)))) {
      co_await handover(self, from, *items);
    } else if (match(msg, tuple("DOWN", bind(ref), "process", bind(pid), bind(reason)))) {
      if (auto h = holders_.find(ref); h != holders_.end()) co_await holder_down(self, h, *reason);
      else co_await member_down(self, pid);
    } else if (match(msg, tuple("nodeup", bind(node)))) {
      say_hello(self, node);
    } else if (!match(msg, tuple("nodedown", any))) {
      untrusted("unexpected_message", msg);
    }
    co_return Action::noreply();
  }

 private:
  Term reg_name(const Term& id) const { return registered_as(id, opts_.name); }

  void untrusted(std::string_view what, const Term& msg) {
    log::limited(log::Level::Warn, node_.name().text(), "supervisor_message_dropped",
                 std::string(opts_.name.text()) + " " + std::string(what),
                 {{"supervisor", opts_.name.text()}, {"reason", what}, {"message", pattern::detail::shorten(msg)}});
  }

  Term table_term() const {
    std::vector<Term> out;
    for (const auto& [id, c] : local_) out.push_back(Term::tuple({id, c.spec.to_term(), Term(c.pid)}));
    return Term::list(std::move(out));
  }

  void say_hello(Process& self, Atom node) {
    if (node != node_.name()) self.send(opts_.name, node, Term::tuple({Term(Atom("hello")), Term(self.pid()), table_term()}));
  }

  // The member entry of a supervisor process, monitored (and greeted) the first time it is heard.
  Member& member(Process& self, const Pid& pid) {
    auto it = members_.find(pid);
    if (it != members_.end()) return it->second;
    Member& m = members_[pid];
    ring_.reset();
    m.mref = self.monitor(pid);
    m.heard = self.runtime().clock()->now();
    if (opts_.members.empty()) known_.insert(pid.node);
    self.send(pid, Term::tuple({Term(Atom("hello")), Term(self.pid()), table_term()}));
    return m;
  }

  void hello(Process& self, const Pid& from, const Term& items) {
    if (from.node == node_.name() || !items.is_proper_list()) return;
    const bool joined = !members_.count(from);
    Member& m = member(self, from);  // a new member is greeted back by member()
    m.children.clear();
    const Term* id = nullptr;
    const Term* spec_t = nullptr;
    Pid pid;
    for (const Term& e : items.list_elements()) {
      if (!match(e, tuple(bind(id), bind(spec_t), bind(pid)))) continue;
      auto spec = ChildSpec::from_term(*spec_t);
      if (!spec) continue;
      m.children[*id] = RemoteChild{*spec, pid};
    }
    if (joined && opts_.active_redistribution) redistribute(self, from);
    if (fenced_) check_lease(self);  // heard again just now: maybe a majority
    resume_parked(self);
  }

  // The member the hash ring of the live members (this one included, leaving ones not) picks.
  // (Built again only when the members change.)
  Atom owner_of(const Term& id) {
    if (!ring_) {
      ring_.emplace();
      ring_->add(node_.name());
      for (const auto& [pid, m] : members_)
        if (!m.leaving) ring_->add(pid.node);
    }
    return ring_->lookup(id.to_string()).value_or(node_.name());
  }

  // Active redistribution: the children the ring now gives the member that joined go there.
  void redistribute(Process& self, const Pid& to) {
    if (!quorum()) return;
    std::vector<Term> moving;
    for (const auto& [id, c] : local_)
      if (owner_of(id) == to.node) moving.push_back(id);
    if (moving.empty()) return;
    log::event(log::Level::Info, node_.name().text(), "supervisor_redistributing",
               {{"to", to.node.text()}, {"children", std::to_string(moving.size())}});
    for (const Term& id : moving) {
      const LocalChild c = local_.at(id);
      (void)stop_local(self, id);
      gone_.insert(c.pid);
      self.send(to, Term::tuple({Term(Atom("move")), Term(self.pid()), c.spec.to_term(), Term(c.pid)}));
    }
  }

  // Quorum: this member and the live members it counts are a strict majority of those it knows.
  // Other distributions always have it.
  bool quorum() const {
    if (opts_.distribution != Distribution::Quorum) return true;
    if (fenced_) return false;
    std::set<Atom> live{node_.name()};
    for (const auto& [pid, m] : members_)
      if (!m.leaving && known_.count(pid.node)) live.insert(pid.node);
    return live.size() * 2 > known_.size();
  }

  // Quorum fencing: a member that has not heard a majority (itself included) within the lease
  // stops its children, before the others can have declared it down (the lease is half the
  // detect time, checked every third of it: stopped within 2/3 of the detect time of the silence,
  // while the others take at least 5/6 of it) and so before they start them: never two copies.
  // Once a majority is heard again, the children it stopped start where the ring says.
  void lease_tick(Process& self) {
    const Term msg = Term::tuple({Term(Atom("lease")), Term(self.pid())});
    for (const auto& [pid, m] : members_) self.send(pid, msg);
    check_lease(self);
  }

  void check_lease(Process& self) {
    const auto now = self.runtime().clock()->now();
    std::set<Atom> heard{node_.name()};
    for (const auto& [pid, m] : members_)
      if (!m.leaving && known_.count(pid.node) && now - m.heard <= lease_) heard.insert(pid.node);
    const bool majority = heard.size() * 2 > known_.size();
    if (!majority && !fenced_) {
      log::event(log::Level::Warn, node_.name().text(), "supervisor_lease_expired",
                 {{"heard", std::to_string(heard.size())}, {"known", std::to_string(known_.size())}});
      lose_quorum(self);
      fenced_ = true;
    } else if (majority && fenced_) {
      fenced_ = false;
      resume_parked(self);
    }
  }

  // A majority again: the children stopped meanwhile start where the ring says, unless the
  // majority side runs them already or they ended there meanwhile (a transient child that
  // finished, one terminated): the members are asked first, and answer within kQueryTimeout.
  void resume_parked(Process& self) {
    if (parked_.empty() || !quorum()) return;
    log::event(log::Level::Info, node_.name().text(), "supervisor_quorum_regained", {{"parked", std::to_string(parked_.size())}});
    EndedQuery q;
    q.specs = std::exchange(parked_, {});
    std::vector<Term> ids;
    for (const auto& [id, spec] : q.specs) ids.push_back(id);
    const Term ref(self.make_ref());
    const Term ask = Term::tuple({Term(Atom("ended_query")), Term(self.pid()), ref, Term::list(std::move(ids))});
    for (const auto& [pid, m] : members_) {
      if (m.leaving) continue;
      self.send(pid, ask);
      q.waiting.insert(pid);
    }
    queries_[ref] = std::move(q);
    self.send_after(kQueryTimeout, self.pid(), Term::tuple({Term(a_query_timeout()), ref}));
    if (queries_[ref].waiting.empty()) self.send(self.pid(), Term::tuple({Term(a_query_timeout()), ref}));
  }

  void answer_ended(Process& self, const Pid& from, const Term& ref, const Term& ids) {
    if (!members_.count(from) || !ids.is_proper_list()) return;
    std::vector<Term> out;
    for (const Term& id : ids.list_elements())
      if (ended_.count(id)) out.push_back(id);
    self.send(from, Term::tuple({Term(Atom("ended_answer")), ref, Term(self.pid()), Term::list(std::move(out))}));
  }

  Task<> ended_answer(Process& self, Term ref, Pid from, Term ids) {
    auto q = queries_.find(ref);
    if (q == queries_.end() || !ids.is_proper_list()) co_return;
    for (const Term& id : ids.list_elements()) q->second.specs.erase(id);
    q->second.waiting.erase(from);
    if (q->second.waiting.empty()) co_await query_done(self, ref);
  }

  Task<> query_done(Process& self, Term ref) {
    auto q = queries_.find(ref);
    if (q == queries_.end() || !q->second.waiting.empty()) co_return;
    std::vector<ChildSpec> specs;
    for (auto& [id, spec] : q->second.specs) specs.push_back(std::move(spec));
    queries_.erase(q);
    if (!quorum()) {  // lost it again while asking: parked again
      for (auto& spec : specs) parked_[spec.id] = std::move(spec);
      co_return;
    }
    co_await adopt(self, std::move(specs));
  }

  // A child that ended for good here: every member hears of it, so a copy parked somewhere is not
  // started again.
  void ended(Process& self, const Term& id, const Pid& pid) {
    remember_ended(self, id);
    const Term msg = Term::tuple({Term(Atom("child_ended")), Term(self.pid()), id, Term(pid)});
    for (const auto& [pid, m] : members_) self.send(pid, msg);
  }

  void remember_ended(Process& self, const Term& id) {
    const auto now = self.runtime().clock()->now();
    parked_.erase(id);
    ended_[id] = now;
    ended_order_.emplace_back(now, id);
    while (!ended_order_.empty() &&
           (ended_order_.size() > kEndedMax || now - ended_order_.front().first > kEndedHorizon)) {
      auto it = ended_.find(ended_order_.front().second);
      if (it != ended_.end() && it->second == ended_order_.front().first) ended_.erase(it);
      ended_order_.pop_front();
    }
  }

  // A minority: every child here stops (kept, to start again once a majority is back).
  void lose_quorum(Process& self) {
    if (local_.empty()) return;
    log::event(log::Level::Warn, node_.name().text(), "supervisor_quorum_lost",
               {{"known", std::to_string(known_.size())}, {"stopping", std::to_string(local_.size())}});
    std::vector<Term> ids;
    for (const auto& [id, c] : local_) ids.push_back(id);
    for (const Term& id : ids) {
      const ChildSpec& spec = local_.at(id).spec;
      if (spec.restart != Restart::Temporary) parked_[id] = spec;
      (void)stop_local(self, id);
    }
  }

  bool runs_other_than(const Term& id, const Pid& pid) const {
    if (auto it = local_.find(id); (it != local_.end() && it->second.pid != pid) || pending_.count(id)) return true;
    for (const auto& [mpid, m] : members_)
      if (auto c = m.children.find(id); c != m.children.end() && c->second.pid != pid) return true;
    return false;
  }

  bool running_anywhere(const Term& id) const {
    if (local_.count(id) || pending_.count(id)) return true;
    for (const auto& [pid, m] : members_)
      if (m.children.count(id)) return true;
    return false;
  }

  std::vector<Child> children() const {
    std::map<Term, Child> all;
    for (const auto& [pid, m] : members_)
      for (const auto& [id, c] : m.children) all[id] = Child{id, c.pid, c.pid.node, c.spec.restart};
    for (const auto& [id, c] : local_) all[id] = Child{id, c.pid, node_.name(), c.spec.restart};
    std::vector<Child> out;
    for (auto& [id, c] : all) out.push_back(std::move(c));
    return out;
  }

  // --- starting here

  Task<> start_local(Process& self, ChildSpec spec, std::optional<From> reply_to, std::deque<Clock::time_point> restarts) {
    if (auto it = local_.find(spec.id); it != local_.end()) {
      if (reply_to) gen::reply(self, *reply_to, error(Term::tuple({Term(Atom("already_started")), Term(it->second.pid)})));
      co_return;
    }
    if (auto it = pending_.find(spec.id); it != pending_.end()) {
      if (reply_to) gen::reply(self, *reply_to, error(Term::tuple({Term(Atom("already_started")), Term(it->second.runner)})));
      co_return;
    }
    ended_.erase(spec.id);  // started again (by a user, or after a restart)
    const Pid sup = self.pid();
    const Term id = spec.id;
    auto exports = exports_;
    const Atom mod = spec.module, fun = spec.function;
    const Term args = spec.args;
    // The runner waits for its go (the id is registered) before it runs the export.
    const Pid runner = self.spawn_link([sup, id, exports, mod, fun, args](Process& me) -> Task<> {
      co_await me.receive([](const Term& m) { return m.is_atom(a_go()); });
      Outcome o = co_await exports->apply(me, mod, fun, args);
      if (o.ok()) {
        if (o.value.is_tuple() && o.value.tuple_size() == 2 && o.value[0].is_atom(Atom("ok")) && o.value[1].is_pid() &&
            o.value[1].pid() != me.pid())
          me.send(sup, Term::tuple({Term(a_started()), id, Term(me.pid()), o.value[1]}));
        co_return;
      }
      switch (o.cls) {
        case Outcome::Class::Exit: throw Exit(o.value);
        case Outcome::Class::Throw: throw Exit(Term::tuple({Term::tuple({Term(Atom("nocatch")), o.value}), o.stack}));
        default: throw Exit(Term::tuple({o.value, o.stack}));
      }
    });
    pid_ids_[runner] = id;
    Pending p;
    p.spec = std::move(spec);
    p.reply_to = std::move(reply_to);
    p.runner = runner;
    p.restarts = std::move(restarts);
    pending_[id] = std::move(p);
    co_await try_register(self, id);
  }

  // A holder of the id that is gone or going: its node is not connected, it left, or it is a
  // child we know ended.
  bool stale_holder(Process& self, const Pid& h) const {
    if (h.node == node_.name()) return !self.runtime().alive(h);
    if (gone_.count(h)) return true;
    for (const auto& [pid, m] : members_)
      if (m.leaving && pid.node == h.node) return true;
    const auto up = node_.nodes(true);
    return std::find(up.begin(), up.end(), h.node) == up.end();
  }

  Task<> try_register(Process& self, Term id) {
    const Term name = reg_name(id);
    const Pid runner = pending_.at(id).runner;
    auto r = co_await registry::register_name(self, name, runner, Term::list({}), opts_.registry);
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.runner != runner) co_return;  // given up meanwhile
    Pending& now = it->second;
    if (r.ok()) {
      self.send(runner, Term(a_go()));
      LocalChild c{now.spec, runner, std::move(now.restarts)};
      std::optional<From> reply_to = now.reply_to;
      pending_.erase(it);
      local_[id] = c;
      announce(self, id, reply_to, Term::tuple({Term(Atom("ok")), Term(runner)}));
      co_return;
    }
    const Term& e = r.error();
    const bool held = e.is_tuple() && e.tuple_size() == 2 && e[0].is_atom(Atom("already_registered")) && e[1].is_pid();
    if (held && stale_holder(self, e[1].pid()) && now.attempts < kRegisterAttempts) {
      ++now.attempts;
      self.send_after(kRegisterRetry, self.pid(), Term::tuple({Term(a_retry()), id}));
      co_return;
    }
    const Term why = held ? Term::tuple({Term(Atom("already_started")), e[1]}) : e;
    if (now.reply_to) gen::reply(self, *now.reply_to, error(why));
    if (!now.reply_to && held && now.spec.restart != Restart::Temporary) {
      // A restart or an adoption, and another process holds the id: that one runs it. Should
      // it end without a successor (a copy that lost a conflict and whose unregistration this
      // node has not heard yet, or one that dies later), this member starts it again.
      watch_holder(self, now.spec, e[1].pid(), std::move(now.restarts));
      log::event(log::Level::Info, node_.name().text(), "supervisor_child_held_elsewhere",
                 {{"id", pattern::detail::shorten(id)}, {"holder", e[1].to_string()}});
    } else if (!now.reply_to) {
      log::event(log::Level::Warn, node_.name().text(), "supervisor_child_not_started",
                 {{"id", pattern::detail::shorten(id)}, {"reason", why.to_string()}});
    }
    if (!now.reply_to) broadcast_down(self, id);  // a restart: the members' entry of its last run goes
    pending_.erase(it);
    pid_ids_.erase(runner);
    self.unlink(runner);
    self.exit(runner, Term(Atom("kill")));
  }

  void watch_holder(Process& self, const ChildSpec& spec, const Pid& holder, std::deque<Clock::time_point> restarts) {
    if (auto old = holder_ids_.find(spec.id); old != holder_ids_.end()) {
      self.demonitor(old->second, true);
      holders_.erase(old->second);
      holder_ids_.erase(old);
    }
    const Ref ref = self.monitor(holder);
    holders_[ref] = Holder{spec, holder, std::move(restarts)};
    holder_ids_[spec.id] = ref;
  }

  // The process that held a child's id (when this member wanted to start it) ended. Unless the
  // child ended for good, runs (here or at another member), or the holder stopped cleanly and
  // the child is not permanent, this member starts it: the registry keeps it to one copy.
  Task<> holder_down(Process& self, std::map<Ref, Holder>::iterator it, Term reason) {
    Holder h = std::move(it->second);
    holder_ids_.erase(h.spec.id);
    holders_.erase(it);
    gone_.insert(h.holder);
    if (ended_.count(h.spec.id) || runs_other_than(h.spec.id, h.holder)) co_return;
    if (h.spec.restart != Restart::Permanent && gen_server::is_clean_stop(reason)) co_return;
    if (!quorum()) {
      parked_[h.spec.id] = h.spec;
      co_return;
    }
    co_await start_local(self, std::move(h.spec), std::nullopt, std::move(h.restarts));
  }

  // Tells every member; the reply (if any) goes once all of them hold the child.
  void announce(Process& self, const Term& id, const std::optional<From>& reply_to, Term reply) {
    const LocalChild& c = local_.at(id);
    const Ref ref = self.make_ref();
    const Term msg = Term::tuple({Term(Atom("child_up")), Term(self.pid()), Term(ref), id, c.spec.to_term(), Term(c.pid)});
    tell_watchers(self, id, true, c.pid);
    std::set<Pid> waiting;
    for (const auto& [pid, m] : members_) {
      self.send(pid, msg);
      if (!m.leaving) waiting.insert(pid);
    }
    if (!reply_to) return;
    if (waiting.empty()) {
      gen::reply(self, *reply_to, std::move(reply));
      return;
    }
    acks_[Term(ref)] = AckWait{*reply_to, std::move(reply), std::move(waiting)};
  }

  void acked(Process& self, const Term& ref, const Pid& from) {
    auto it = acks_.find(ref);
    if (it == acks_.end()) return;
    it->second.waiting.erase(from);
    if (!it->second.waiting.empty()) return;
    gen::reply(self, it->second.reply_to, it->second.reply);
    acks_.erase(it);
  }

  void broadcast_down(Process& self, const Term& id) {
    const Term msg = Term::tuple({Term(Atom("child_down")), Term(self.pid()), id});
    for (const auto& [pid, m] : members_) self.send(pid, msg);
    tell_watchers(self, id, false, std::nullopt);
  }

  // A child up or down here, to whoever watches the cluster (cluster/events.hpp).
  void tell_watchers(Process& self, const Term& id, bool up, std::optional<Pid> pid) {
    events::publish(self.runtime(), opts_.events,
                    events::map({{"kind", Term(Atom("child"))},
                                 {"id", id},
                                 {"status", Term(Atom(up ? "up" : "down"))},
                                 {"node", Term(node_.name())},
                                 {"pid", pid ? Term(*pid) : Term(Atom("undefined"))}}));
  }

  Term stop_local(Process& self, const Term& id) {
    auto it = local_.find(id);
    const Pid pid = it->second.pid;
    local_.erase(it);
    pid_ids_.erase(pid);  // its EXIT is then not a child's
    self.unlink(pid);
    self.exit(pid, Term(Atom("shutdown")));
    self.send_after(kShutdown, self.pid(), Term::tuple({Term(a_kill()), Term(pid)}));
    broadcast_down(self, id);
    return Term(Atom("ok"));
  }

  // The export returned {ok, Pid}: that process is the child from now on, under the child's id.
  Task<> child_moved(Process& self, Term id, Pid runner, Pid pid) {
    auto it = local_.find(id);
    if (it == local_.end() || it->second.pid != runner) co_return;
    self.link(pid);
    pid_ids_[pid] = id;
    pid_ids_.erase(runner);
    it->second.pid = pid;
    const Term name = reg_name(id);
    (void)co_await registry::unregister_name(self, name, opts_.registry);
    auto r = co_await registry::register_name(self, name, pid, Term::list({}), opts_.registry);
    if (!r.ok()) {
      log::event(log::Level::Warn, node_.name().text(), "supervisor_child_lost_its_id",
                 {{"id", pattern::detail::shorten(id)}, {"reason", r.error().to_string()}});
    }
    announce(self, id, std::nullopt, Term());
  }

  Task<> child_exit(Process& self, Pid pid, Term reason) {
    auto pit = pid_ids_.find(pid);
    if (pit == pid_ids_.end()) co_return;  // a runner that handed over, or one we stopped
    const Term id = pit->second;
    pid_ids_.erase(pit);
    if (auto pend = pending_.find(id); pend != pending_.end() && pend->second.runner == pid) {
      // Died before its go (killed from outside): the start fails.
      if (pend->second.reply_to) gen::reply(self, *pend->second.reply_to, error(reason));
      pending_.erase(pend);
      co_return;
    }
    auto it = local_.find(id);
    if (it == local_.end() || it->second.pid != pid) co_return;
    LocalChild c = std::move(it->second);
    local_.erase(it);
    gone_.insert(pid);
    const bool conflict = reason.is_tuple() && reason.tuple_size() == 3 && reason[0].is_atom(Atom("name_conflict"));
    const bool again = !conflict && (c.spec.restart == Restart::Permanent ||
                                     (c.spec.restart == Restart::Transient && !gen_server::is_clean_stop(reason)));
    if (!again) {
      if (conflict)
        log::event(log::Level::Info, node_.name().text(), "supervisor_duplicate_stopped",
                   {{"id", pattern::detail::shorten(id)}, {"reason", reason.to_string()}});
      broadcast_down(self, id);
      if (!conflict && c.spec.restart != Restart::Temporary) ended(self, id, pid);
      co_return;
    }
    const auto now = self.runtime().clock()->now();  // the simulated one in harness tests
    c.restarts.push_back(now);
    while (!c.restarts.empty() && now - c.restarts.front() > opts_.period) c.restarts.pop_front();
    if (static_cast<int>(c.restarts.size()) > opts_.intensity) {
      log::event(log::Level::Error, node_.name().text(), "supervisor_child_given_up",
                 {{"id", pattern::detail::shorten(id)}, {"reason", reason.to_string()},
                  {"restarts", std::to_string(c.restarts.size())}});
      broadcast_down(self, id);
      ended(self, id, pid);
      co_return;
    }
    restarts_->add();
    log::event(log::Level::Info, node_.name().text(), "supervisor_child_restarting",
               {{"id", pattern::detail::shorten(id)}, {"reason", pattern::detail::shorten(reason)}});
    co_await start_local(self, std::move(c.spec), std::nullopt, std::move(c.restarts));
  }

  // --- other members going

  Task<> member_down(Process& self, Pid pid) {
    auto it = members_.find(pid);
    if (it == members_.end()) co_return;
    Member m = std::move(it->second);
    members_.erase(it);
    ring_.reset();
    // Starts waiting for its ack need not wait any more.
    for (auto a = acks_.begin(); a != acks_.end();) {
      a->second.waiting.erase(pid);
      if (a->second.waiting.empty()) {
        gen::reply(self, a->second.reply_to, a->second.reply);
        a = acks_.erase(a);
      } else {
        ++a;
      }
    }
    std::vector<Term> asked;
    for (auto& [ref, q] : queries_)
      if (q.waiting.erase(pid) && q.waiting.empty()) asked.push_back(ref);
    for (const Term& ref : asked) co_await query_done(self, ref);
    if (!quorum()) {
      lose_quorum(self);
      for (auto& [id, c] : m.children)
        if (c.spec.restart != Restart::Temporary) parked_[id] = c.spec;  // theirs too, for when a majority is back
      co_return;
    }
    std::vector<ChildSpec> orphans;
    for (auto& [id, c] : m.children) {
      gone_.insert(c.pid);
      if (c.spec.restart != Restart::Temporary) orphans.push_back(c.spec);
    }
    if (!orphans.empty())
      log::event(log::Level::Info, node_.name().text(), "supervisor_member_down",
                 {{"member", pid.node.text()}, {"orphans", std::to_string(orphans.size())}});
    co_await adopt(self, std::move(orphans), failovers_);
  }

  Task<> handover(Process& self, Pid from, const Term& items) {
    if (!items.is_proper_list()) co_return;
    std::vector<ChildSpec> specs;
    auto it = members_.find(from);
    if (it != members_.end()) it->second.leaving = true;
    ring_.reset();
    if (opts_.members.empty()) known_.erase(from.node);  // it left: the majority is counted without it
    for (const Term& t : items.list_elements()) {
      auto spec = ChildSpec::from_term(t);
      if (!spec) continue;
      if (it != members_.end()) {
        if (auto c = it->second.children.find(spec->id); c != it->second.children.end()) gone_.insert(c->second.pid);
        it->second.children.erase(spec->id);
      }
      specs.push_back(std::move(*spec));
    }
    co_await adopt(self, std::move(specs));
  }

  // Children of a member that went: each starts on the member the ring of those left picks.
  // `counted`: what each child started here adds to (failovers: a member went).
  Task<> adopt(Process& self, std::vector<ChildSpec> specs, metrics::Counter* counted = nullptr) {
    if (!quorum()) co_return;
    for (auto& spec : specs) {
      if (running_anywhere(spec.id) || ended_.count(spec.id) || owner_of(spec.id) != node_.name()) continue;
      if (counted) counted->add();
      co_await start_local(self, std::move(spec), std::nullopt, {});
    }
  }

  Node& node_;
  std::shared_ptr<Exports> exports_;
  Options opts_;
  metrics::Counter* restarts_ = &metrics::counter(
      "hypha_supervisor_restarts_total", "Children the distributed supervisor restarted on this node after they exited",
      {{"node", std::string(node_.name().text())}, {"supervisor", std::string(opts_.name.text())}});
  metrics::Counter* failovers_ = &metrics::counter(
      "hypha_supervisor_failovers_total", "Children started on this node because the member running them went",
      {{"node", std::string(node_.name().text())}, {"supervisor", std::string(opts_.name.text())}});
  std::map<Pid, Member> members_;
  std::map<Term, LocalChild> local_;
  std::map<Term, Pending> pending_;
  std::map<Pid, Term> pid_ids_;  // our runners and children -> their ids
  std::map<Term, AckWait> acks_;
  std::map<Ref, Holder> holders_;     // holders of ids this member deferred to, by monitor
  std::map<Term, Ref> holder_ids_;
  std::set<Pid> gone_;  // children known to have ended (their ids may still be in a registry replica)
  std::set<Atom> known_;                // quorum: the members a majority is counted from
  std::map<Term, ChildSpec> parked_;    // quorum: children stopped (or not adopted) in a minority
  std::map<Term, EndedQuery> queries_;  // quorum: parked children asked about (by ref)
  std::map<Term, Clock::time_point> ended_;  // ids that ended for good, when heard
  std::deque<std::pair<Clock::time_point, Term>> ended_order_;
  std::chrono::milliseconds lease_{0};  // quorum: see lease_tick
  bool fenced_ = false;                 // quorum: the lease ran out; no children here
  std::optional<HashRing> ring_;  // of the live members, this one included
};

// What a call to the supervisor gives: its reply, or noproc when there is none.
Result<Term, Term> sup_reply(Result<Term, Term> r) {
  if (!r) {
    const Term& e = r.error();
    if (e.is_tuple() && e.tuple_size() == 2 && e[0].is_atom(Atom("noproc"))) return unexpected(Term(Atom("noproc")));
  }
  return r;
}
constexpr std::chrono::seconds kCallTimeout{30};

Term start_request(const ChildSpec& spec) { return Term::tuple({Term(Atom("start_child")), spec.to_term()}); }
Result<Pid, Term> started(Result<Term, Term> r) {
  if (!r) return unexpected(r.error());
  const Term& v = *r;
  if (v.is_tuple() && v.tuple_size() == 2 && v[0].is_atom(Atom("ok")) && v[1].is_pid()) return v[1].pid();
  if (v.is_tuple() && v.tuple_size() == 2 && v[0].is_atom(Atom("error"))) return unexpected(v[1]);
  return unexpected(v);
}
Term terminate_request(const Term& id) { return Term::tuple({Term(Atom("terminate_child")), id}); }
Result<bool, Term> terminated(Result<Term, Term> r) {
  if (!r) return unexpected(r.error());
  if (r->is_atom(Atom("ok"))) return true;
  const Term& v = *r;
  if (v.is_tuple() && v.tuple_size() == 2 && v[0].is_atom(Atom("error"))) return unexpected(v[1]);
  return unexpected(v);
}
std::vector<Child> children_of(const Result<Term, Term>& r) {
  std::vector<Child> out;
  if (!r || !r->is_proper_list()) return out;
  const Term* id = nullptr;
  const Term* restart = nullptr;
  Pid pid;
  Atom node;
  for (const Term& e : r->list_elements()) {
    if (!match(e, tuple(bind(id), bind(pid), bind(node), bind(restart)))) continue;
    const Restart rs = restart->is_atom(Atom("transient"))   ? Restart::Transient
                       : restart->is_atom(Atom("temporary")) ? Restart::Temporary
                                                             : Restart::Permanent;
    out.push_back(Child{*id, pid, node, rs});
  }
  return out;
}

}  // namespace

Atom default_name() { return Atom("hypha_sup"); }

Term ChildSpec::to_term() const {
  return Term::map({{Term(Atom("id")), id},
                    {Term(Atom("start")), Term::tuple({Term(module), Term(function), args})},
                    {Term(Atom("restart")), restart_term(restart)}});
}

std::optional<ChildSpec> ChildSpec::from_term(const Term& t) {
  if (!t.is_map()) return std::nullopt;
  const Term* id = t.map_find(Term(Atom("id")));
  const Term* start = t.map_find(Term(Atom("start")));
  const Term* restart = t.map_find(Term(Atom("restart")));
  if (!id || !start) return std::nullopt;
  ChildSpec s;
  s.id = *id;
  if (!start->is_tuple() || start->tuple_size() != 3 || !(*start)[0].is_atom() || !(*start)[1].is_atom() ||
      !((*start)[2].is_proper_list() || (*start)[2].is_nil()))
    return std::nullopt;
  s.module = (*start)[0].atom_value();
  s.function = (*start)[1].atom_value();
  s.args = (*start)[2];
  if (restart) {
    if (restart->is_atom(Atom("permanent"))) s.restart = Restart::Permanent;
    else if (restart->is_atom(Atom("transient"))) s.restart = Restart::Transient;
    else if (restart->is_atom(Atom("temporary"))) s.restart = Restart::Temporary;
    else return std::nullopt;
  }
  return s;
}

hypha::ChildSpec spec(Node& node, std::shared_ptr<Exports> exports, const Options& opts) {
  return hypha::ChildSpec::server(Term(opts.name),
                                  [&node, exports, opts] { return std::make_unique<Sup>(node, exports, opts); },
                                  gen_server::StartOptions{.name = opts.name});
}

Result<Pid, Term> start(Node& node, std::shared_ptr<Exports> exports, const Options& opts) {
  return gen_server::start(node.runtime(), std::make_unique<Sup>(node, std::move(exports), opts), {.name = opts.name});
}

Result<Pid, Term> start_child(Runtime& rt, const ChildSpec& spec, Atom sup) {
  return started(sup_reply(gen_server::call(rt, ServerRef(sup), start_request(spec), kCallTimeout)));
}

Task<Result<Pid, Term>> start_child(Process& self, ChildSpec spec, Atom sup) {
  Term req = start_request(spec);
  co_return started(sup_reply(co_await gen_server::call(self, ServerRef(sup), std::move(req), kCallTimeout)));
}

Term registered_as(const Term& id, Atom sup) { return Term::tuple({Term(sup), id}); }

Result<bool, Term> terminate_child(Runtime& rt, const Term& id, Atom sup) {
  return terminated(sup_reply(gen_server::call(rt, ServerRef(sup), terminate_request(id), kCallTimeout)));
}

Task<Result<bool, Term>> terminate_child(Process& self, Term id, Atom sup) {
  Term req = terminate_request(id);
  co_return terminated(sup_reply(co_await gen_server::call(self, ServerRef(sup), std::move(req), kCallTimeout)));
}

std::vector<Child> which_children(Runtime& rt, Atom sup) {
  return children_of(gen_server::call(rt, ServerRef(sup), Term(Atom("which_children")), kCallTimeout));
}

Task<std::vector<Child>> which_children(Process& self, Atom sup) {
  Term req(Atom("which_children"));
  co_return children_of(co_await gen_server::call(self, ServerRef(sup), std::move(req), kCallTimeout));
}

void add_exports(Exports& exports, Node&) {
  const Atom sup = default_name();
  exports.add("hypha_sup", "start_child", [sup](Process& self, Term spec_t) -> Task<Term> {
    auto spec = ChildSpec::from_term(spec_t);
    if (!spec) co_return error(Term::tuple({Term(Atom("bad_child_spec")), spec_t}));
    auto r = co_await start_child(self, std::move(*spec), sup);
    co_return r ? Term::tuple({Term(Atom("ok")), Term(*r)}) : error(r.error());
  });
  exports.add("hypha_sup", "terminate_child", [sup](Process& self, Term id) -> Task<Term> {
    auto r = co_await terminate_child(self, std::move(id), sup);
    co_return r ? Term(Atom("ok")) : error(r.error());
  });
  exports.add("hypha_sup", "which_children", [sup](Process& self) -> Task<Term> {
    auto children = co_await which_children(self, sup);
    std::vector<Term> out;
    for (const Child& c : children) out.push_back(Term::tuple({c.id, Term(c.pid), Term(c.node)}));
    co_return Term::list(std::move(out));
  });
}

}  // namespace hypha::dsup
