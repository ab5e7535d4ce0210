// Unique cluster tasks (cluster/tasks.hpp): the orchestrator, the member process of each node
// (hypha_tasks), the runner each task is, and the exports.
//
// A task is a child of the distributed supervisor, id {hypha_task, Name}, start
// {hypha_tasks, run_task, [Name, M, F, A, Callback]}: the runner asks the orchestrator
// {may_run, Runner, Ref, Name} (answered {may_run, Ref, true | false}: false when that name's
// run already ended), applies M:F(A) and reports
// {task_done, Runner, Ref, Name, {ok, Value} | {failed, Reason}, Callback} to the orchestrator
// until it is acknowledged ({task_ack, Ref}), through whichever orchestrator is registered then.
//
// The orchestrator (a gen_server under the registry name hypha_tasks_orchestrator, itself the
// supervisor's child hypha_tasks_orchestrator) keeps a record per task and sends each change to
// every member's hypha_tasks_member process:
//   {tasks_update, [{put, Record} | {forget, Name}]}     as they happen
//   {tasks_table, [Record]}                              the whole table, to a member that joins
//   Record: {Name, running | done | failed, Pid, Node, Result, Callback, Restart, ExpiresInMs,
//            StartedMs, EndedMs}   (Unix ms, 0 unknown; 8-tuples without them are read too)
// A running task reports progress ({task_progress, Runner, Percent}, from progress()) to the
// orchestrator alone: not replicated. A stop ({stop, Name} call) terminates the child through
// the supervisor and fails the task with reason `stopped`; stopping an ended one forgets it.
// A new orchestrator starts from its own node's replica and the registry (running tasks hold
// their ids there), so finished tasks and their results survive its move. One that loses a
// name conflict (two after a partition heals) sends its table to the winner: {tasks_merge, [Record]}.
#include "hypha/cluster/tasks.hpp"

#include <algorithm>
#include <random>

#include "hypha/base/log.hpp"
#include "hypha/base/metrics.hpp"
#include "hypha/cluster/events.hpp"
#include "hypha/cluster/registry.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/process/gen.hpp"
#include "hypha/term/match.hpp"
#include "../wall.hpp"

namespace hypha::tasks {

namespace {

using namespace pattern;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const Atom& a_member() { static const Atom a("hypha_tasks_member"); return a; }
const Atom& a_tick() { static const Atom a("$hypha_tasks_tick"); return a; }
const Atom& a_scan() { static const Atom a("$hypha_tasks_scan"); return a; }
const Atom& a_ensure() { static const Atom a("$hypha_tasks_ensure"); return a; }
const Atom& a_ensured() { static const Atom a("$hypha_tasks_ensured"); return a; }
const Atom& a_started() { static const Atom a("$hypha_tasks_started"); return a; }
const Atom& a_forget() { static const Atom a("$hypha_tasks_forget"); return a; }
const Atom& a_stopped() { static const Atom a("$hypha_tasks_stopped"); return a; }
const Atom& a_none() { static const Atom a("none"); return a; }
const Atom& a_undefined() { static const Atom a("undefined"); return a; }

// How long a task whose node died (restart true) may take to show up again on a survivor
// before it is reported failed; how often the orchestrator looks for it meanwhile.
constexpr std::chrono::milliseconds kRestartWait{10000};
constexpr std::chrono::milliseconds kTick{50};
// How often the orchestrator reads the registry for tasks it does not know (started by an
// orchestrator that lost a conflict, or before it moved), and members check that one runs.
constexpr std::chrono::milliseconds kScan{1000};
constexpr std::chrono::milliseconds kFirstEnsure{200};
// A runner re-sends its report when no ack came in this time.
constexpr std::chrono::milliseconds kAckWait{250};
constexpr std::chrono::milliseconds kNoOrchestratorRetry{50};
// How long a runner asks whether it may run before it runs without an answer.
constexpr std::chrono::milliseconds kMayRunWait{5000};
constexpr std::chrono::seconds kCallTimeout{15};

Term error(Term why) { return Term::tuple({Term(Atom("error")), std::move(why)}); }
Term task_id(const Term& name) { return Term::tuple({Term(Atom("hypha_task")), name}); }

enum class St { Starting, Running, Restarting, Done, Failed };

Atom state_atom(St s) {
  return Atom(s == St::Done ? "done" : s == St::Failed ? "failed" : "running");
}
Atom kind_atom(Status::Kind k) {
  return Atom(k == Status::Kind::Done ? "done" : k == Status::Kind::Failed ? "failed" : "running");
}
Status::Kind kind_of(St s) {
  return s == St::Done ? Status::Kind::Done : s == St::Failed ? Status::Kind::Failed : Status::Kind::Running;
}
bool finished(St s) { return s == St::Done || s == St::Failed; }

Term callback_term(const std::optional<std::pair<Atom, Atom>>& cb) {
  return cb ? Term::tuple({Term(cb->first), Term(cb->second)}) : Term(a_none());
}
bool callback_ok(const Term& t) {
  return t.is_atom(a_none()) || (t.is_tuple() && t.tuple_size() == 2 && t[0].is_atom() && t[1].is_atom());
}

// An Outcome that is not a return, as the reason a process would exit with.
Term reason_of(const Outcome& o) {
  switch (o.cls) {
    case Outcome::Class::Exit: return o.value;
    case Outcome::Class::Throw: return Term::tuple({Term::tuple({Term(Atom("nocatch")), o.value}), o.stack});
    default: return Term::tuple({o.value, o.stack});
  }
}

void untrusted(Atom node, std::string_view what, const Term& msg) {
  log::limited(log::Level::Warn, node.text(), "tasks_message_dropped", std::string(what),
               {{"reason", what}, {"message", pattern::detail::shorten(msg)}});
}

// --- the records, as the orchestrator keeps them and as they travel

struct Rec {
  Term name;
  St st = St::Running;
  Pid pid;
  Atom node;
  Term result = Term(a_undefined());  // done: the value; failed: the reason
  Term callback = Term(a_none());
  Term restart = Term(a_undefined());  // true | false | undefined (found in the registry only)
  Clock::time_point expires = Clock::time_point::max();
  std::optional<Ref> mon;
  Clock::time_point restart_deadline{};
  std::optional<From> starter;  // the start call, answered once the supervisor has answered
  std::vector<From> waiters;    // starts of the same name meanwhile: {running, Pid} then
  std::uint64_t gen = 0;
  std::optional<int> progress;  // the last report (orchestrator only)
  std::int64_t started_ms = 0, ended_ms = 0;
  std::vector<From> stoppers;  // stop calls, answered once the supervisor terminated it
};

Term rec_term(const Rec& r, Clock::time_point now) {
  const auto left = r.expires == Clock::time_point::max()
                        ? Term(Atom("infinity"))
                        : Term(static_cast<std::int64_t>(
                              std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(r.expires - now).count())));
  return Term::tuple({r.name, Term(state_atom(r.st)), Term(r.pid), Term(r.node), r.result, r.callback, r.restart, left,
                      Term(r.started_ms), Term(r.ended_ms)});
}

std::optional<Rec> rec_of(const Term& t, Clock::time_point now) {
  if (!t.is_tuple() || (t.tuple_size() != 8 && t.tuple_size() != 10)) return std::nullopt;
  Rec r;
  r.name = t[0];
  if (t[1].is_atom(Atom("running"))) r.st = St::Running;
  else if (t[1].is_atom(Atom("done"))) r.st = St::Done;
  else if (t[1].is_atom(Atom("failed"))) r.st = St::Failed;
  else return std::nullopt;
  if (!t[2].is_pid() || !t[3].is_atom() || !callback_ok(t[5])) return std::nullopt;
  r.pid = t[2].pid();
  r.node = t[3].atom_value();
  r.result = t[4];
  r.callback = t[5];
  r.restart = t[6];
  if (t[7].is_integer()) {
    auto ms = from_term<std::int64_t>(t[7]);
    if (!ms || *ms < 0) return std::nullopt;
    r.expires = now + std::chrono::milliseconds(*ms);
  } else if (!t[7].is_atom(Atom("infinity"))) {
    return std::nullopt;
  }
  if (t.tuple_size() == 10) {
    auto started = from_term<std::int64_t>(t[8]);
    auto ended = from_term<std::int64_t>(t[9]);
    if (!started || !ended) return std::nullopt;
    r.started_ms = *started;
    r.ended_ms = *ended;
  }
  return r;
}

// What list and info answer of a record: {Name, State, Node, Pid, Progress | undefined,
// StartedMs, EndedMs} (and the result after it, for info).
Term summary_term(const Rec& r, bool with_result) {
  std::vector<Term> parts{r.name, Term(state_atom(r.st)), Term(r.node), Term(r.pid),
                          r.progress ? Term(static_cast<std::int64_t>(*r.progress)) : Term(a_undefined()),
                          Term(r.started_ms), Term(r.ended_ms)};
  if (with_result) parts.push_back(r.result);
  return Term::tuple(std::move(parts));
}

std::optional<Info> info_of(const Term& e) {
  if (!e.is_tuple() || e.tuple_size() < 4 || !e[1].is_atom() || !e[2].is_atom() || !e[3].is_pid()) return std::nullopt;
  const Atom state = e[1].atom_value();
  Info i{e[0], state == Atom("done") ? Status::Kind::Done : state == Atom("failed") ? Status::Kind::Failed
                                                                                   : Status::Kind::Running,
         e[2].atom_value(), e[3].pid()};
  if (e.tuple_size() >= 7) {
    if (auto p = from_term<std::int64_t>(e[4]); p && *p >= 0 && *p <= 100) i.progress = static_cast<int>(*p);
    i.started_ms = from_term<std::int64_t>(e[5]).value_or(0);
    i.ended_ms = from_term<std::int64_t>(e[6]).value_or(0);
  }
  i.result = e.tuple_size() >= 8 ? e[7] : Term(a_undefined());
  return i;
}

Term status_term(const Term& name, Status::Kind k) { return Status{k, name}.to_term(); }

// --- the orchestrator

class Orchestrator final : public GenServer {
 public:
  Orchestrator(Node& node, Exports* exports, Options opts) : node_(node), exports_(exports), opts_(opts) {}

  Task<> init(Process& self) override {
    self.trap_exit(true);
    node_.monitor_nodes(self.pid());
    const auto now = clock_now(self);
    // The replica of this node's member: what the previous orchestrator had.
    Term req(Atom("snapshot"));
    auto snap = co_await gen_server::call(self, ServerRef(a_member()), std::move(req), kCallTimeout);
    std::size_t from_replica = 0;
    if (snap && snap->is_proper_list())
      for (const Term& t : snap->list_elements())
        if (auto r = rec_of(t, now)) {
          adopt(self, std::move(*r));
          ++from_replica;
        }
    const std::size_t from_registry = scan(self);
    log::event(log::Level::Info, node_.name().text(), "tasks_orchestrator_started",
               {{"replica", std::to_string(from_replica)}, {"registry", std::to_string(from_registry)}});
    broadcast_table(self, std::nullopt);
    self.send_after(kScan, self.pid(), Term(a_scan()));
    co_return;
  }

  Task<Action> handle_call(Process& self, const Term& req, const From& from) override {
    const Term* name = nullptr;
    const Term* args = nullptr;
    const Term* cb = nullptr;
    const Term* restart = nullptr;
    Atom mod, fun;
    if (match(req, tuple("start", bind(name), bind(mod), bind(fun), bind(args), bind(cb), bind(restart)))) {
      if (!args->is_proper_list() || !callback_ok(*cb) || !restart->is_atom())
        co_return Action::reply(error(Term(Atom("badarg"))));
      start(self, from, *name, mod, fun, *args, *cb, restart->is_atom(Atom("true")));
      co_return Action::noreply();
    }
    if (match(req, tuple("status", bind(name)))) {
      auto it = recs_.find(*name);
      co_return Action::reply(status_term(*name, it == recs_.end() ? Status::Kind::NotFound : kind_of(it->second.st)));
    }
    if (match(req, tuple("result", bind(name)))) {
      auto it = recs_.find(*name);
      if (it == recs_.end()) co_return Action::reply(error(Term::tuple({Term(Atom("distributed_task_not_found")), *name})));
      const Rec& r = it->second;
      if (r.st == St::Done) co_return Action::reply(Term::tuple({Term(Atom("ok")), r.result}));
      if (r.st == St::Failed)
        co_return Action::reply(error(Term::tuple({Term(Atom("distributed_task_failed")), *name, r.result})));
      co_return Action::reply(error(Term::tuple({Term(Atom("not_finished")), *name})));
    }
    if (req.is_atom(Atom("list"))) {
      std::vector<Term> out;
      for (const auto& [n, r] : recs_)
        if (r.st != St::Starting) out.push_back(summary_term(r, false));
      co_return Action::reply(Term::list(std::move(out)));
    }
    if (match(req, tuple("info", bind(name)))) {
      auto it = recs_.find(*name);
      if (it == recs_.end() || it->second.st == St::Starting)
        co_return Action::reply(error(Term::tuple({Term(Atom("distributed_task_not_found")), *name})));
      co_return Action::reply(Term::tuple({Term(Atom("ok")), summary_term(it->second, true)}));
    }
    if (match(req, tuple("stop", bind(name)))) {
      stop(self, from, *name);
      co_return Action::noreply();
    }
    untrusted(node_.name(), "unexpected_call", req);
    co_return Action::reply(error(Term(Atom("badarg"))));
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    Pid pid;
    Ref ref;
    Atom node;
    const Term* name = nullptr;
    const Term* ref_t = nullptr;
    const Term* outcome = nullptr;
    const Term* cb = nullptr;
    const Term* reason = nullptr;
    const Term* items = nullptr;
    const Term* r = nullptr;
    std::uint64_t gen = 0;
    std::int64_t percent = 0;
    if (match(msg, tuple("task_progress", bind(pid), bind(percent)))) {
      if (auto it = by_pid_.find(pid); it != by_pid_.end())
        if (auto r = recs_.find(it->second); r != recs_.end() && r->second.st == St::Running) {
          const int now = static_cast<int>(std::clamp<std::int64_t>(percent, 0, 100));
          if (r->second.progress != now) {
            r->second.progress = now;
            tell_watchers(self, r->second);
          }
        }
    } else if (match(msg, tuple("may_run", bind(pid), bind(ref_t), bind(name)))) {
      auto it = recs_.find(*name);
      const bool ended = it != recs_.end() && finished(it->second.st) && it->second.pid != pid;
      self.send(pid, Term::tuple({Term(Atom("may_run")), *ref_t, Term(Atom(ended ? "false" : "true"))}));
    } else if (match(msg, tuple("task_done", bind(pid), bind(ref_t), bind(name), bind(outcome), bind(cb)))) {
      task_done(self, pid, *name, *outcome, *cb);
      self.send(pid, Term::tuple({Term(Atom("task_ack")), *ref_t}));
    } else if (match(msg, tuple(a_started(), bind(name), bind(gen), bind(r)))) {
      started(self, *name, gen, *r);
    } else if (match(msg, tuple("DOWN", bind(ref), "process", bind(pid), bind(reason)))) {
      task_down(self, ref, pid, *reason);
    } else if (msg.is_atom(a_tick())) {
      ticking_ = false;
      tick(self);
    } else if (msg.is_atom(a_scan())) {
      scan(self);
      self.send_after(kScan, self.pid(), Term(a_scan()));
    } else if (match(msg, tuple(a_forget(), bind(name), bind(gen)))) {
      forget(self, *name, gen);
    } else if (match(msg, tuple(a_stopped(), bind(name), bind(gen), bind(r)))) {
      stopped(self, *name, gen, *r);
    } else if (match(msg, tuple("nodeup", bind(node)))) {
      broadcast_table(self, node);
    } else if (match(msg, tuple("tasks_merge", bind(items)))) {
      merge(self, *items);
    } else if (match(msg, tuple("EXIT", bind(pid), bind(reason)))) {
      Pid winner;
      if (match(*reason, tuple("name_conflict", any, bind(winner)))) {
        // Two orchestrators (a partition healed): the winner gets what this one knows.
        std::vector<Term> all;
        const auto now = clock_now(self);
        for (const auto& [n, rec] : recs_)
          if (rec.st != St::Starting) all.push_back(rec_term(rec, now));
        self.send(winner, Term::tuple({Term(Atom("tasks_merge")), Term::list(std::move(all))}));
        co_return Action::stop(*reason);
      }
      if (!reason->is_atom(Atom("normal"))) co_return Action::stop(*reason);  // our supervisor went
    } else if (!match(msg, tuple("nodedown", any))) {
      untrusted(node_.name(), "unexpected_message", msg);
    }
    co_return Action::noreply();
  }

 private:
  Clock::time_point clock_now(Process& self) const { return self.runtime().clock()->now(); }
  static std::int64_t wall_ms(Process& self) {
    return static_cast<std::int64_t>(cluster::detail::wall_ms_of(self.runtime())());
  }

  // A stop: a running task is terminated by the supervisor (answered in stopped()); an ended
  // one is forgotten at once.
  void stop(Process& self, const From& from, const Term& name) {
    auto it = recs_.find(name);
    if (it == recs_.end()) {
      gen::reply(self, from, error(Term::tuple({Term(Atom("distributed_task_not_found")), name})));
      return;
    }
    Rec& r = it->second;
    if (r.st == St::Starting) {
      gen::reply(self, from, error(Term::tuple({Term(Atom("starting")), name})));
      return;
    }
    if (finished(r.st)) {
      unwatch(self, r);
      recs_.erase(it);
      tell_forgotten(self, name);
      gen::reply(self, from, Term::tuple({Term(Atom("ok")), Term(Atom("forgotten"))}));
      return;
    }
    r.stoppers.push_back(from);
    if (r.stoppers.size() > 1) return;  // a stop is under way
    const Pid me = self.pid();
    const Atom sup = opts_.supervisor;
    const std::uint64_t gen = r.gen;
    const Term id = task_id(name);
    self.spawn([me, sup, id, name, gen](Process& helper) -> Task<> {
      auto res = co_await dsup::terminate_child(helper, id, sup);
      const bool gone = res.ok() || res.error().is_atom(Atom("not_found"));
      const Term out = gone ? Term(Atom("ok")) : error(res.error());
      helper.send(me, Term::tuple({Term(a_stopped()), name, Term(static_cast<std::int64_t>(gen)), out}));
    });
  }

  void stopped(Process& self, const Term& name, std::uint64_t gen, const Term& res) {
    auto it = recs_.find(name);
    if (it == recs_.end() || it->second.gen != gen) return;
    Rec& r = it->second;
    const auto waiting = std::exchange(r.stoppers, {});
    if (!res.is_atom(Atom("ok"))) {  // the supervisor could not (no quorum): still running
      for (const From& f : waiting) gen::reply(self, f, res);
      return;
    }
    if (!finished(r.st)) {
      unwatch(self, r);
      finish(self, r, St::Failed, Term(Atom("stopped")));
    }
    for (const From& f : waiting) gen::reply(self, f, Term::tuple({Term(Atom("ok")), Term(Atom("stopped"))}));
  }

  void start(Process& self, const From& from, Term name, Atom mod, Atom fun, Term args, Term cb, bool restart) {
    if (name.is_atom(a_undefined())) name = Term::binary(uuid4());
    auto it = recs_.find(name);
    if (it != recs_.end()) {
      Rec& r = it->second;
      if (r.st == St::Starting) {
        r.waiters.push_back(from);
        return;
      }
      if (!finished(r.st)) {
        gen::reply(self, from, error(Term::tuple({Term(Atom("running")), Term(r.pid)})));
        return;
      }
      unwatch(self, r);
      recs_.erase(it);  // a finished name is used again
    }
    Rec r;
    r.name = name;
    r.st = St::Starting;
    r.callback = cb;
    r.restart = Term(Atom(restart ? "true" : "false"));
    r.starter = from;
    r.gen = ++gen_;
    r.started_ms = wall_ms(self);
    recs_[name] = r;
    dsup::ChildSpec spec{.id = task_id(name), .module = Atom("hypha_tasks"), .function = Atom("run_task"),
                         .args = Term::list({name, Term(mod), Term(fun), args, cb}),
                         .restart = restart ? Restart::Transient : Restart::Temporary};
    // The supervisor answers once every member holds the child: not in this process's way.
    const Pid me = self.pid();
    const Atom sup = opts_.supervisor;
    const std::uint64_t gen = r.gen;
    self.spawn([me, sup, spec, name, gen](Process& helper) -> Task<> {
      auto res = co_await dsup::start_child(helper, spec, sup);
      const Term out = res ? Term::tuple({Term(Atom("ok")), Term(*res)}) : error(res.error());
      helper.send(me, Term::tuple({Term(a_started()), name, Term(static_cast<std::int64_t>(gen)), out}));
    });
  }

  void started(Process& self, const Term& name, std::uint64_t gen, const Term& res) {
    auto it = recs_.find(name);
    if (it == recs_.end() || it->second.gen != gen) return;
    Rec& r = it->second;
    Pid pid;
    const Term* why = nullptr;
    std::optional<Term> answer;
    if (match(res, tuple("ok", bind(pid)))) {
      if (r.st == St::Starting) {
        r.st = St::Running;
        watch(self, r, pid);
        put(self, r);
      }
      answer = Term::tuple({Term(Atom("ok")), Term::tuple({name, Term(pid)})});
      pid = r.pid;
    } else if (match(res, tuple("error", tuple("already_started", bind(pid))))) {
      // A run of that name we did not know of (started before this orchestrator, or by another).
      if (r.st == St::Starting) {
        r.st = St::Running;
        r.restart = Term(a_undefined());
        r.callback = Term(a_none());
        watch(self, r, pid);
        put(self, r);
      }
      answer = error(Term::tuple({Term(Atom("running")), Term(pid)}));
    } else if (match(res, tuple("error", bind(why)))) {
      answer = res;
      if (r.st == St::Starting) {
        if (r.starter) gen::reply(self, *r.starter, res);
        for (const From& w : r.waiters) gen::reply(self, w, res);
        recs_.erase(it);
        return;
      }
    } else {
      return;
    }
    if (r.starter) gen::reply(self, *r.starter, *answer);
    r.starter.reset();
    for (const From& w : std::exchange(r.waiters, {}))
      gen::reply(self, w, error(Term::tuple({Term(Atom("running")), Term(r.pid)})));
  }

  // The record's runner no longer reports progress under its name.
  void drop_runner(const Rec& r) {
    if (auto it = by_pid_.find(r.pid); it != by_pid_.end() && it->second == r.name) by_pid_.erase(it);
  }

  void unwatch(Process& self, Rec& r) {
    drop_runner(r);
    if (!r.mon) return;
    mons_.erase(*r.mon);
    self.demonitor(*r.mon, true);
    r.mon.reset();
  }

  void watch(Process& self, Rec& r, const Pid& pid) {
    unwatch(self, r);
    r.pid = pid;
    r.node = pid.node;
    r.mon = self.monitor(pid);
    mons_[*r.mon] = r.name;
    by_pid_[pid] = r.name;
  }

  // A record from a replica or a merge: running ones are watched from now on.
  void adopt(Process& self, Rec r) {
    const Term name = r.name;
    r.gen = ++gen_;
    if (r.st == St::Running) {
      const Pid pid = r.pid;
      r.mon.reset();
      watch(self, r, pid);
    } else {
      schedule_forget(self, r);
    }
    recs_[name] = std::move(r);
  }

  // Tasks in the registry (children {hypha_task, Name} of the supervisor) this one does not know.
  std::size_t scan(Process& self) {
    const Term pattern = dsup::registered_as(task_id(Term(Atom("_"))), opts_.supervisor);
    std::size_t found = 0;
    for (const auto& reg : registry::select(self.runtime(), pattern, opts_.registry)) {
      const Term& name = reg.name[1][1];
      auto it = recs_.find(name);
      if (it != recs_.end()) {
        const Rec& r = it->second;
        if (r.st == St::Starting || r.pid == reg.pid || !finished(r.st)) continue;
        // Finished, and a new run holds the name: replaced.
        unwatch(self, it->second);
        recs_.erase(it);
      }
      Rec r;
      r.name = name;
      r.st = St::Running;
      r.pid = reg.pid;
      r.node = reg.pid.node;
      adopt(self, std::move(r));
      put(self, recs_.at(name));
      ++found;
    }
    return found;
  }

  void merge(Process& self, const Term& items) {
    if (!items.is_proper_list()) return;
    const auto now = clock_now(self);
    for (const Term& t : items.list_elements()) {
      auto r = rec_of(t, now);
      if (!r) continue;
      auto it = recs_.find(r->name);
      // Ours stands, unless it is still running where theirs says that same run finished.
      if (it != recs_.end() && !(!finished(it->second.st) && finished(r->st) && it->second.pid == r->pid)) continue;
      if (it != recs_.end()) unwatch(self, it->second);
      const Term name = r->name;
      adopt(self, std::move(*r));
      put(self, recs_.at(name));
    }
  }

  void task_done(Process& self, const Pid& from, const Term& name, const Term& outcome, const Term& cb) {
    const Term* value = nullptr;
    St st;
    if (match(outcome, tuple("ok", bind(value)))) st = St::Done;
    else if (match(outcome, tuple("failed", bind(value)))) st = St::Failed;
    else {
      untrusted(node_.name(), "bad_task_outcome", outcome);
      return;
    }
    auto it = recs_.find(name);
    if (it == recs_.end()) {
      Rec r;
      r.name = name;
      r.gen = ++gen_;
      it = recs_.emplace(name, std::move(r)).first;
    } else if (finished(it->second.st)) {
      return;  // told twice (an ack lost), or a second copy after a heal: the first stands
    }
    Rec& r = it->second;
    unwatch(self, r);
    r.pid = from;
    r.node = from.node;
    if (callback_ok(cb) && !cb.is_atom(a_none())) r.callback = cb;
    finish(self, r, st, *value);
  }

  void finish(Process& self, Rec& r, St st, Term value) {
    drop_runner(r);
    r.st = st;
    r.result = value;
    r.ended_ms = wall_ms(self);
    if (st == St::Done) r.progress = 100;
    r.expires = clock_now(self) + opts_.cleanup;
    schedule_forget(self, r);
    put(self, r);  // (one that ended before the supervisor's answer came still gets it: started())
    run_callback(self, r);
  }

  void run_callback(Process& self, const Rec& r) {
    if (!r.callback.is_tuple()) return;
    const Atom mod = r.callback[0].atom_value(), fun = r.callback[1].atom_value();
    const Term arg = r.st == St::Done ? r.result : Term::tuple({Term(Atom("EXIT")), r.result});
    const Term args = Term::list({r.name, arg});
    Exports* exports = exports_;
    const Atom node = node_.name();
    self.spawn([exports, mod, fun, args, node](Process& me) -> Task<> {
      Outcome o = co_await exports->apply(me, mod, fun, args);
      if (!o.ok())
        log::event(log::Level::Warn, node.text(), "task_callback_failed",
                   {{"callback", std::string(mod.text()) + ":" + std::string(fun.text())},
                    {"reason", pattern::detail::shorten(reason_of(o))}});
    });
  }

  void task_down(Process& self, const Ref& ref, const Pid& pid, const Term& reason) {
    auto m = mons_.find(ref);
    if (m == mons_.end()) return;
    const Term name = m->second;
    mons_.erase(m);
    auto it = recs_.find(name);
    if (it == recs_.end() || it->second.pid != pid || finished(it->second.st)) return;
    Rec& r = it->second;
    r.mon.reset();
    if (!r.stoppers.empty()) {  // terminated by a stop: failed, reason stopped (answered in stopped())
      finish(self, r, St::Failed, Term(Atom("stopped")));
      return;
    }
    Pid winner;
    if (match(reason, tuple("name_conflict", any, bind(winner)))) {
      // Two copies after a partition healed: this one lost to the older, which runs on.
      watch(self, r, winner);
      r.st = St::Running;
      put(self, r);
      return;
    }
    if (reason.is_atom(Atom("noconnection")) && !r.restart.is_atom(Atom("false"))) {
      // Its node went: the supervisor starts it again on a survivor (restart true), if it can.
      r.st = St::Restarting;
      r.restart_deadline = clock_now(self) + kRestartWait;
      start_ticking(self);
      return;
    }
    finish(self, r, St::Failed, reason);
  }

  void start_ticking(Process& self) {
    if (ticking_) return;
    ticking_ = true;
    self.send_after(kTick, self.pid(), Term(a_tick()));
  }

  // Tasks being restarted elsewhere: running again once the registry shows the new run.
  void tick(Process& self) {
    const auto now = clock_now(self);
    bool waiting = false;
    for (auto& [name, r] : recs_) {
      if (r.st != St::Restarting) continue;
      auto holder = registry::whereis(self.runtime(), dsup::registered_as(task_id(name), opts_.supervisor), opts_.registry);
      if (holder && *holder != r.pid) {
        r.st = St::Running;
        watch(self, r, *holder);
        put(self, r);
      } else if (now >= r.restart_deadline) {
        finish(self, r, St::Failed, Term(Atom("noconnection")));
      } else {
        waiting = true;
      }
    }
    if (waiting) start_ticking(self);
  }

  void schedule_forget(Process& self, const Rec& r) {
    if (r.expires == Clock::time_point::max()) return;
    const auto left = std::max(Clock::duration::zero(), r.expires - clock_now(self));
    self.send_after(std::chrono::ceil<std::chrono::milliseconds>(left), self.pid(),
                    Term::tuple({Term(a_forget()), r.name, Term(static_cast<std::int64_t>(r.gen))}));
  }

  void forget(Process& self, const Term& name, std::uint64_t gen) {
    auto it = recs_.find(name);
    if (it == recs_.end() || it->second.gen != gen || !finished(it->second.st)) return;
    recs_.erase(it);
    tell_forgotten(self, name);
  }

  void tell_forgotten(Process& self, const Term& name) {
    send_members(self, Term::tuple({Term(Atom("tasks_update")),
                                    Term::list({Term::tuple({Term(Atom("forget")), name})})}));
    events::publish(self.runtime(), opts_.events,
                    events::map({{"kind", Term(Atom("task"))}, {"name", name}, {"status", Term(Atom("forgotten"))}}));
  }

  void put(Process& self, const Rec& r) {
    send_members(self, Term::tuple({Term(Atom("tasks_update")),
                                    Term::list({Term::tuple({Term(Atom("put")), rec_term(r, clock_now(self))})})}));
    tell_watchers(self, r);
  }

  // The task as it is now, to whoever watches the cluster (cluster/events.hpp).
  void tell_watchers(Process& self, const Rec& r) {
    if (!opts_.events || r.st == St::Starting) return;
    events::publish(self.runtime(), opts_.events,
                    events::map({{"kind", Term(Atom("task"))},
                                 {"name", r.name},
                                 {"status", Term(state_atom(r.st))},
                                 {"node", Term(r.node)},
                                 {"pid", Term(r.pid)},
                                 {"progress", r.progress ? Term(static_cast<std::int64_t>(*r.progress)) : Term(a_undefined())},
                                 {"started", Term(r.started_ms)},
                                 {"ended", Term(r.ended_ms)}}));
  }

  void send_members(Process& self, const Term& msg) {
    self.send(a_member(), node_.name(), msg);
    for (Atom n : node_.nodes(true)) self.send(a_member(), n, msg);
  }

  // The whole table to one member (one that came up), or to every member.
  void broadcast_table(Process& self, std::optional<Atom> to) {
    std::vector<Term> all;
    const auto now = clock_now(self);
    for (const auto& [n, r] : recs_)
      if (r.st != St::Starting) all.push_back(rec_term(r, now));
    const Term msg = Term::tuple({Term(Atom("tasks_table")), Term::list(std::move(all))});
    if (to) self.send(a_member(), *to, msg);
    else send_members(self, msg);
  }

  Node& node_;
  Exports* exports_;
  Options opts_;
  std::map<Term, Rec> recs_;
  std::map<Ref, Term> mons_;
  std::map<Pid, Term> by_pid_;  // running tasks' runners, for their progress reports
  std::uint64_t gen_ = 0;
  bool ticking_ = false;
};

// --- the member process of each node: the replica, and an orchestrator when none runs

class Member final : public GenServer {
 public:
  Member(Node& node, Options opts) : node_(node), opts_(opts) {}

  Task<> init(Process& self) override {
    self.send_after(kFirstEnsure, self.pid(), Term(a_ensure()));
    co_return;
  }

  Task<Action> handle_call(Process& self, const Term& req, const From&) override {
    if (req.is_atom(Atom("snapshot"))) {
      expire(self);
      std::vector<Term> out;
      const auto now = self.runtime().clock()->now();
      for (const auto& [n, r] : replica_) out.push_back(rec_term(r, now));
      co_return Action::reply(Term::list(std::move(out)));
    }
    untrusted(node_.name(), "unexpected_call", req);
    co_return Action::reply(error(Term(Atom("badarg"))));
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    const Term* items = nullptr;
    if (match(msg, tuple("tasks_update", bind(items))) && items->is_proper_list()) {
      const auto now = self.runtime().clock()->now();
      const Term* name = nullptr;
      const Term* rec = nullptr;
      for (const Term& it : items->list_elements()) {
        if (match(it, tuple("forget", bind(name)))) {
          replica_.erase(*name);
        } else if (match(it, tuple("put", bind(rec)))) {
          if (auto r = rec_of(*rec, now)) replica_[r->name] = std::move(*r);
          else untrusted(node_.name(), "bad_task_record", *rec);
        }
      }
    } else if (match(msg, tuple("tasks_table", bind(items))) && items->is_proper_list()) {
      const auto now = self.runtime().clock()->now();
      std::map<Term, Rec> fresh;
      for (const Term& t : items->list_elements())
        if (auto r = rec_of(t, now)) fresh[r->name] = std::move(*r);
      replica_ = std::move(fresh);
    } else if (msg.is_atom(a_ensure())) {
      expire(self);
      ensure(self);
      self.send_after(kScan, self.pid(), Term(a_ensure()));
    } else if (msg.is_atom(a_ensured())) {
      ensuring_ = false;
    } else {
      untrusted(node_.name(), "unexpected_message", msg);
    }
    co_return Action::noreply();
  }

 private:
  void expire(Process& self) {
    const auto now = self.runtime().clock()->now();
    std::erase_if(replica_, [&](const auto& kv) { return finished(kv.second.st) && kv.second.expires <= now; });
  }

  // No orchestrator registered: ask the supervisor for one (it keeps it running from then on,
  // on the member the hash picks; this is for the first start, and if it ever gave it up).
  void ensure(Process& self) {
    if (ensuring_ || registry::whereis(self.runtime(), Term(orchestrator_name()), opts_.registry)) return;
    ensuring_ = true;
    const Pid me = self.pid();
    const Atom sup = opts_.supervisor;
    const Atom node = node_.name();
    self.spawn([me, sup, node](Process& helper) -> Task<> {
      dsup::ChildSpec spec{.id = Term(orchestrator_name()), .module = Atom("hypha_tasks"),
                           .function = Atom("orchestrator"), .args = Term::list({}), .restart = Restart::Transient};
      auto r = co_await dsup::start_child(helper, std::move(spec), sup);
      const bool fine = r.ok() || (r.error().is_tuple() && r.error().tuple_size() == 2 &&
                                   r.error()[0].is_atom(Atom("already_started")));
      if (!fine)
        log::limited(log::Level::Warn, node.text(), "tasks_orchestrator_not_started", "",
                     {{"reason", pattern::detail::shorten(r.error())}});
      helper.send(me, Term(a_ensured()));
    });
  }

  Node& node_;
  Options opts_;
  std::map<Term, Rec> replica_;
  bool ensuring_ = false;
};

// --- calls to the orchestrator

class ClusterService final : public Service {
 public:
  explicit ClusterService(Options opts) : opts_(opts) {}

  Task<Result<std::pair<Term, Pid>, Term>> start_async(Process& self, Atom mod, Atom fun, Term args,
                                                        StartOptions o) override {
    if (!args.is_proper_list() && !args.is_nil()) co_return unexpected(Term::tuple({Term(Atom("badarg")), args}));
    Term req = Term::tuple({Term(Atom("start")), o.name.value_or(Term(a_undefined())), Term(mod), Term(fun), args,
                            callback_term(o.callback), Term(Atom(o.restart ? "true" : "false"))});
    auto r = co_await call(self, std::move(req));
    if (!r) co_return unexpected(r.error());
    const Term* name = nullptr;
    Pid pid;
    if (match(*r, tuple("ok", tuple(bind(name), bind(pid))))) co_return std::pair<Term, Pid>{*name, pid};
    if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("error"))) co_return unexpected((*r)[1]);
    co_return unexpected(*r);
  }

  Task<Status> get_status(Process& self, Term name) override {
    Term req = Term::tuple({Term(Atom("status")), name});
    auto r = co_await call(self, std::move(req));
    Status out;
    out.kind = Status::Kind::Unavailable;
    out.name = name;
    if (r)
      if (auto s = Status::from_term(*r)) out = *s;
    co_return out;
  }

  Task<Result<Term, Term>> result(Process& self, Term name) override {
    Term req = Term::tuple({Term(Atom("result")), name});
    auto r = co_await call(self, std::move(req));
    if (!r) co_return unexpected(r.error());
    if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("ok"))) co_return (*r)[1];
    if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("error"))) co_return unexpected((*r)[1]);
    co_return unexpected(*r);
  }

  Task<Result<std::vector<Info>, Term>> list(Process& self) override {
    Term req(Atom("list"));
    auto r = co_await call(self, std::move(req));
    if (!r) co_return unexpected(r.error());
    std::vector<Info> out;
    if (!r->is_proper_list()) co_return out;
    for (const Term& e : r->list_elements())
      if (auto i = info_of(e)) out.push_back(std::move(*i));
    co_return out;
  }

  Task<Result<Info, Term>> info(Process& self, Term name) override {
    Term req = Term::tuple({Term(Atom("info")), name});
    auto r = co_await call(self, std::move(req));
    if (!r) co_return unexpected(r.error());
    if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("ok")))
      if (auto i = info_of((*r)[1])) co_return std::move(*i);
    if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("error"))) co_return unexpected((*r)[1]);
    co_return unexpected(*r);
  }

  Task<Result<Stopped, Term>> stop(Process& self, Term name) override {
    Term req = Term::tuple({Term(Atom("stop")), name});
    auto r = co_await call(self, std::move(req));
    if (!r) co_return unexpected(r.error());
    if (*r == Term::tuple({Term(Atom("ok")), Term(Atom("stopped"))})) co_return Stopped::Stopped;
    if (*r == Term::tuple({Term(Atom("ok")), Term(Atom("forgotten"))})) co_return Stopped::Forgotten;
    if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("error"))) co_return unexpected((*r)[1]);
    co_return unexpected(*r);
  }

 private:
  // The orchestrator's reply, or unavailable() when none is registered or it did not answer
  // (its node went during the call, or it is moving).
  Task<Result<Term, Term>> call(Process& self, Term req) {
    ServerRef to(registry::via_name(Term(orchestrator_name()), opts_.registry));
    auto r = co_await gen_server::call(self, std::move(to), std::move(req), kCallTimeout);
    if (!r) co_return unexpected(unavailable());
    co_return *r;
  }

  Options opts_;
};

// A task this node ran to its end: counted by outcome, its duration in the histogram.
void task_ran(Atom node, bool ok, std::chrono::steady_clock::duration took) {
  const std::string n(node.text());
  metrics::counter("hypha_tasks_finished_total", "Tasks this node ran to their end, by outcome",
                   {{"node", n}, {"outcome", ok ? "done" : "failed"}})
      .add();
  metrics::histogram("hypha_task_duration_seconds", "How long the tasks this node ran took (to done or failed)",
                     {0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600}, {{"node", n}})
      .observe(std::chrono::duration<double>(took).count());
}

// Erlang-side options: a proplist ([{name, N}, {callback, {M, F}}, {restart, true}], what an
// Elixir keyword list is) or a map with those keys.
std::optional<StartOptions> options_of(const Term& t) {
  std::vector<std::pair<Term, Term>> kv;
  if (t.is_map()) {
    for (const auto& [k, v] : t.map_entries()) kv.emplace_back(k, v);
  } else if (t.is_proper_list() || t.is_nil()) {
    for (const Term& e : t.list_elements()) {
      if (!e.is_tuple() || e.tuple_size() != 2) return std::nullopt;
      kv.emplace_back(e[0], e[1]);
    }
  } else {
    return std::nullopt;
  }
  StartOptions o;
  for (const auto& [k, v] : kv) {
    if (k.is_atom(Atom("name"))) o.name = v;
    else if (k.is_atom(Atom("restart")) && v.is_atom(Atom("true"))) o.restart = true;
    else if (k.is_atom(Atom("restart")) && v.is_atom(Atom("false"))) o.restart = false;
    else if (k.is_atom(Atom("callback")) && v.is_tuple() && v.tuple_size() == 2 && v[0].is_atom() && v[1].is_atom())
      o.callback = std::pair{v[0].atom_value(), v[1].atom_value()};
    else return std::nullopt;
  }
  return o;
}

Term start_reply(const Result<std::pair<Term, Pid>, Term>& r) {
  return r ? Term::tuple({Term(Atom("ok")), Term::tuple({r->first, Term(r->second)})}) : error(r.error());
}

// Sends `msg` ({Tag, From, ...}) to whichever orchestrator is registered, with a fresh Ref put
// after From, until an answer {Tag', Ref, ...} comes (re-sent every kAckWait, and while none is
// registered, retried every kNoOrchestratorRetry) or `patience` passes.
Task<std::optional<Term>> ask_orchestrator(Process& self, Atom registry, Term msg, std::chrono::milliseconds patience) {
  const auto until = self.runtime().clock()->now() + patience;
  while (self.runtime().clock()->now() < until) {
    auto orch = registry::whereis(self.runtime(), Term(orchestrator_name()), registry);
    if (!orch) {
      co_await self.sleep(kNoOrchestratorRetry);
      continue;
    }
    const Term ref(self.make_ref());
    std::vector<Term> parts{msg[0], msg[1], ref};
    for (std::size_t i = 2; i < msg.tuple_size(); ++i) parts.push_back(msg[i]);
    self.send(*orch, Term::tuple(std::move(parts)));
    auto answer = co_await self.receive(
        [&ref](const Term& m) { return m.is_tuple() && m.tuple_size() >= 2 && m[1] == ref; }, kAckWait);
    if (answer) co_return answer;
  }
  co_return std::nullopt;
}

}  // namespace

Atom orchestrator_name() { return Atom("hypha_tasks_orchestrator"); }

Term unavailable() {
  return Term::tuple({Term(Atom("distributed_tasks_not_available")), Term(Atom("orchestrator_not_running"))});
}

Term Status::to_term() const {
  switch (kind) {
    case Kind::Running: return Term::tuple({Term(Atom("running")), name});
    case Kind::Done: return Term::tuple({Term(Atom("done")), name});
    case Kind::Failed: return error(Term::tuple({Term(Atom("distributed_task_failed")), name}));
    case Kind::NotFound: return error(Term::tuple({Term(Atom("distributed_task_not_found")), name}));
    case Kind::Unavailable: break;
  }
  return error(unavailable());
}

std::optional<Status> Status::from_term(const Term& t) {
  const Term* name = nullptr;
  if (match(t, tuple("running", bind(name)))) return Status{Kind::Running, *name};
  if (match(t, tuple("done", bind(name)))) return Status{Kind::Done, *name};
  if (match(t, tuple("error", tuple("distributed_task_failed", bind(name))))) return Status{Kind::Failed, *name};
  if (match(t, tuple("error", tuple("distributed_task_not_found", bind(name))))) return Status{Kind::NotFound, *name};
  if (t == error(unavailable())) return Status{Kind::Unavailable, Term()};
  return std::nullopt;
}

Result<std::pair<Term, Pid>, Term> Service::start_async(Runtime& rt, Atom mod, Atom fun, Term args, StartOptions opts) {
  return block_on(rt, [&](Process& self) { return start_async(self, mod, fun, args, opts); });
}
Status Service::get_status(Runtime& rt, Term name) {
  return block_on(rt, [&](Process& self) { return get_status(self, name); });
}
Result<Term, Term> Service::result(Runtime& rt, Term name) {
  return block_on(rt, [&](Process& self) { return result(self, name); });
}
Result<std::vector<Info>, Term> Service::list(Runtime& rt) {
  return block_on(rt, [&](Process& self) { return list(self); });
}
Result<Info, Term> Service::info(Runtime& rt, Term name) {
  return block_on(rt, [&](Process& self) { return info(self, name); });
}
Result<Stopped, Term> Service::stop(Runtime& rt, Term name) {
  return block_on(rt, [&](Process& self) { return stop(self, name); });
}

void progress(Process& self, int percent, const Options& opts) {
  auto orch = registry::whereis(self.runtime(), Term(orchestrator_name()), opts.registry);
  if (!orch) return;
  self.send(*orch, Term::tuple({Term(Atom("task_progress")), Term(self.pid()),
                                Term(static_cast<std::int64_t>(std::clamp(percent, 0, 100)))}));
}

std::shared_ptr<Service> cluster_service(const Options& opts) { return std::make_shared<ClusterService>(opts); }

std::string uuid4() {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  std::uint64_t hi = gen(), lo = gen();
  hi = (hi & ~0xF000ull) | 0x4000ull;                      // version 4
  lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48);     // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

hypha::ChildSpec spec(Node& node, std::shared_ptr<Exports>, const Options& opts) {
  return hypha::ChildSpec::server(Term(a_member()), [&node, opts] { return std::make_unique<Member>(node, opts); },
                                  gen_server::StartOptions{.name = a_member()});
}

Result<Pid, Term> start(Node& node, std::shared_ptr<Exports>, const Options& opts) {
  return gen_server::start(node.runtime(), std::make_unique<Member>(node, opts), {.name = a_member()});
}

void add_exports(Exports& exports, Node& node, const Options& opts) {
  Exports* ex = &exports;
  Node* n = &node;
  auto svc = cluster_service(opts);
  // The supervisor's child for each task: runs it, then reports until the orchestrator has it.
  exports.add("hypha_tasks", "run_task",
              [ex, opts](Process& self, Term name, Atom mod, Atom fun, Term args, Term cb) -> Task<Term> {
                // A run the orchestrator knows ended (a copy stopped in a minority and started
                // again when it rejoined, after the majority's copy finished) does not run again.
                const Term may = Term::tuple({Term(Atom("may_run")), Term(self.pid()), name});
                auto answer = co_await ask_orchestrator(self, opts.registry, may, kMayRunWait);
                if (answer && answer->tuple_size() == 3 && (*answer)[2].is_atom(Atom("false"))) {
                  log::event(log::Level::Info, self.runtime().node().text(), "task_run_skipped",
                             {{"name", pattern::detail::shorten(name)}, {"reason", "already finished"}});
                  co_return Term(Atom("ok"));
                }
                const auto t0 = self.runtime().clock()->now();  // (the simulated one in harness tests)
                Outcome o = co_await ex->apply(self, mod, fun, args);
                task_ran(self.runtime().node(), o.ok(), self.runtime().clock()->now() - t0);
                const Term outcome = o.ok() ? Term::tuple({Term(Atom("ok")), o.value})
                                            : Term::tuple({Term(Atom("failed")), reason_of(o)});
                const Term done = Term::tuple({Term(Atom("task_done")), Term(self.pid()), name, outcome, cb});
                (void)co_await ask_orchestrator(self, opts.registry, done, opts.cleanup);
                co_return Term(Atom("ok"));
              });
  // The supervisor's child hypha_tasks_orchestrator: the orchestrator, under its registry name.
  exports.add("hypha_tasks", "orchestrator", [ex, n, opts](Process& self) -> Task<Term> {
    gen_server::StartOptions so;
    so.via = registry::via_name(Term(orchestrator_name()), opts.registry);
    // Not linked to this runner (its parent, which ends as soon as this returns: a gen_server
    // stops when its parent does); the supervisor links to it when it takes it as the child.
    auto r = co_await gen_server::start(self, std::make_unique<Orchestrator>(*n, ex, opts), std::move(so));
    if (r) co_return Term::tuple({Term(Atom("ok")), Term(*r)});
    // Another holds the name: this one is not needed (and, transient, not started again).
    log::event(log::Level::Info, n->name().text(), "tasks_orchestrator_not_needed", {{"reason", r.error().to_string()}});
    co_return Term(Atom("ignore"));
  });
  auto start_with = [svc](Process& self, Atom mod, Atom fun, Term args, StartOptions o) -> Task<Term> {
    auto r = co_await svc->start_async(self, mod, fun, std::move(args), std::move(o));
    co_return start_reply(r);
  };
  exports.add("hypha_tasks", "start_async", [start_with](Process& self, Atom mod, Atom fun, Term args) -> Task<Term> {
    co_return co_await start_with(self, mod, fun, std::move(args), StartOptions{});
  });
  exports.add("hypha_tasks", "start_async",
              [start_with](Process& self, Atom mod, Atom fun, Term args, Term opts_t) -> Task<Term> {
                auto o = options_of(opts_t);
                if (!o) co_return error(Term::tuple({Term(Atom("badarg")), opts_t}));
                co_return co_await start_with(self, mod, fun, std::move(args), std::move(*o));
              });
  exports.add("hypha_tasks", "start_async",
              [start_with](Process& self, Atom mod, Atom fun, Term args, Term name, Term opts_t) -> Task<Term> {
                auto o = options_of(opts_t);
                if (!o) co_return error(Term::tuple({Term(Atom("badarg")), opts_t}));
                o->name = name;
                co_return co_await start_with(self, mod, fun, std::move(args), std::move(*o));
              });
  exports.add("hypha_tasks", "get_status", [svc](Process& self, Term name) -> Task<Term> {
    Status s = co_await svc->get_status(self, name);
    co_return s.to_term();
  });
  exports.add("hypha_tasks", "result", [svc](Process& self, Term name) -> Task<Term> {
    auto r = co_await svc->result(self, name);
    co_return r ? Term::tuple({Term(Atom("ok")), *r}) : error(r.error());
  });
  // hypha_tasks:steps(N, StepMs): a sample task for demos and tests: N steps of StepMs each,
  // reporting its progress after each; returns N.
  exports.add("hypha_tasks", "steps", [opts](Process& self, std::int64_t n, std::int64_t step_ms) -> Task<Term> {
    if (n < 1 || n > 1000000 || step_ms < 0 || step_ms > 3600000)
      throw Error(Term(Atom("badarg")), "steps(N, StepMs): N of 1..1000000, StepMs of 0..3600000");
    for (std::int64_t i = 1; i <= n; ++i) {
      co_await self.sleep(std::chrono::milliseconds(step_ms));
      progress(self, static_cast<int>(i * 100 / n), opts);
    }
    co_return Term(n);
  });
  // {ok, {Name, State, Node, Pid, Progress | undefined, StartedMs, EndedMs, Result}}: what
  // `hypha task watch` polls.
  exports.add("hypha_tasks", "info", [svc](Process& self, Term name) -> Task<Term> {
    auto r = co_await svc->info(self, name);
    if (!r) co_return error(r.error());
    const Info& i = *r;
    co_return Term::tuple({Term(Atom("ok")),
                           Term::tuple({i.name, Term(kind_atom(i.state)), Term(i.node), Term(i.pid),
                                        i.progress ? Term(static_cast<std::int64_t>(*i.progress)) : Term(a_undefined()),
                                        Term(i.started_ms), Term(i.ended_ms), i.result})});
  });
  exports.add("hypha_tasks", "stop", [svc](Process& self, Term name) -> Task<Term> {
    auto r = co_await svc->stop(self, name);
    if (!r) co_return error(r.error());
    co_return Term::tuple({Term(Atom("ok")), Term(Atom(*r == Stopped::Stopped ? "stopped" : "forgotten"))});
  });
  exports.add("hypha_tasks", "list", [svc](Process& self) -> Task<Term> {
    auto r = co_await svc->list(self);
    if (!r) co_return error(r.error());
    std::vector<Term> out;
    for (const Info& i : *r)
      out.push_back(Term::tuple({i.name, Term(kind_atom(i.state)), Term(i.node), Term(i.pid)}));
    co_return Term::list(std::move(out));
  });
}

}  // namespace hypha::tasks
