// Tasks and the task supervisor, speaking Elixir 1.14's Task / Task.Supervisor protocol.
#include "hypha/otp/task.hpp"

#include <map>

#include "hypha/term/match.hpp"

namespace hypha {

namespace {

Atom at(std::string_view s) { return Atom(s); }

bool is_down_for(const Term& m, const Term& ref) {
  return m.is_tuple() && m.tuple_size() == 5 && m[1] == ref && m[0].is_atom(atoms::DOWN());
}
bool is_reply_for(const Term& m, const Term& ref) { return m.is_tuple() && m.tuple_size() == 2 && m[0] == ref; }

// A task supervisor's answer to start_task: {ok, Pid} -> Pid; {error, E} (or {_, E}) -> E; else as is.
Result<Pid, Term> started_pid(const Term& r) {
  using namespace pattern;
  Pid pid;
  Term e;
  if (match(r, tuple("ok", bind(pid)))) return pid;
  if (match(r, tuple(any, bind(e)))) return unexpected(e);
  return unexpected(r);
}

// {Reason, {'Elixir.Task', Fun, [Task, Timeout]}}: how Elixir's Task.await/yield exit.
// `task` is the %Task{} map, or a list of them (await_many).
Term task_error(Term reason, const char* fun, Term task, std::chrono::milliseconds timeout) {
  const Term tmo = timeout == std::chrono::milliseconds::max() ? Term(at("infinity"))
                                                               : Term(static_cast<std::int64_t>(timeout.count()));
  return Term::tuple({std::move(reason),
                      Term::tuple({Term(at("Elixir.Task")), Term(at(fun)), Term::list({std::move(task), tmo})})});
}

// What a DOWN of the task means for its awaiter.
Term down_reason(const Term& reason, const TaskRef& t) {
  if (reason.is_atom(atoms::noconnection())) return Term::tuple({Term(at("nodedown")), Term(t.pid.node)});
  return reason;
}

// The task's process: waits for {Owner, Ref, ReplyTo, Callers, _} (the owner's monitor is in place
// by then), runs `body`, sends {Ref, Result} to ReplyTo (an alias or a pid) or exits with the
// failure's reason.
Task<> run_task(Process& self, const Pid& owner, std::function<Task<Outcome>(Process&, const Term& init)> body) {
  const Term owner_term(owner);
  const Ref watch = self.monitor(owner);  // the owner may die before it sends the init message
  const Term watch_term(watch);
  std::optional<Term> init = co_await self.receive(
      [&](const Term& m) {
        return (m.is_tuple() && m.tuple_size() == 5 && m[0] == owner_term) || is_down_for(m, watch_term);
      },
      std::chrono::seconds(5));
  if (!init) throw Exit(Term(at("timeout")));  // as Elixir's Task.Supervised does
  if (is_down_for(*init, watch_term)) throw Exit(Term(atoms::normal()));
  self.demonitor(watch, true);
  const Term ref = (*init)[1];
  const Term reply_to = (*init)[2];
  const Outcome o = co_await body(self, *init);
  if (!o.ok()) throw Exit(exit_reason_of(o));
  Term msg = Term::tuple({ref, o.value});
  if (reply_to.is_ref()) self.send(reply_to.ref(), std::move(msg));
  else if (reply_to.is_pid()) self.send(reply_to.pid(), std::move(msg));
}

TaskRef start_local(Process& self, task::TaskFn fn, bool link) {
  const Pid owner = self.pid();
  ProcessBody body = [owner, fn = std::move(fn)](Process& me) -> Task<> {
    // Named, not a temporary in the co_await: g++ 12 can destroy such temporaries twice.
    std::function<Task<Outcome>(Process&, const Term&)> run = [&fn](Process& p, const Term&) { return outcome_of(fn(p)); };
    co_await run_task(me, owner, std::move(run));
  };
  const Pid pid = link ? self.spawn_link(std::move(body)) : self.spawn(std::move(body));
  const Ref ref = self.monitor_alias(pid);
  self.send(pid, Term::tuple({Term(owner), Term(ref), Term(ref), Term::list({Term(owner)}),
                              Term::tuple({Term(at("erlang")), Term(at("apply")), Term(1)})}));
  return TaskRef{pid, ref, owner, Term::tuple({Term(at("erlang")), Term(at("apply")), Term(1)})};
}

// Task.Supervisor's {start_task, Args, Restart, Shutdown} as a child spec for a dynamic supervisor.
// Args is [{OwnerNode, OwnerNameOrPid, OwnerPid}, monitor | nomonitor] for async/async_nolink
// (the function comes in the task's init message), [Owner, Callers, {M, F, A}] for start_child.
// Restart and Shutdown are nil for the supervisor's defaults (temporary, 5000).
Result<ChildSpec, Term> task_child(const std::shared_ptr<Exports>& exports, const Term& req) {
  if (!(req.is_tuple() && req.tuple_size() == 4 && req[0].is_atom(at("start_task")) && req[1].is_proper_list()))
    return unexpected(Term::tuple({Term(at("bad_call")), req}));
  const auto args = req[1].list_elements();
  ChildSpec spec;
  const Term& restart = req[2];
  if (restart.is_atom(at("permanent"))) spec.restart = Restart::Permanent;
  else if (restart.is_atom(at("transient"))) spec.restart = Restart::Transient;
  else if (restart.is_atom(at("temporary")) || restart.is_atom(at("nil"))) spec.restart = Restart::Temporary;
  else return unexpected(Term::tuple({Term(at("invalid_restart_type")), restart}));
  const Term& shutdown = req[3];
  if (shutdown.is_atom(at("brutal_kill"))) spec.shutdown = std::chrono::milliseconds(0);
  else if (shutdown.is_atom(at("infinity"))) spec.shutdown = std::chrono::milliseconds::max();
  else if (shutdown.is_small_integer() && shutdown.small_integer() >= 0) spec.shutdown = std::chrono::milliseconds(shutdown.small_integer());
  else if (!shutdown.is_atom(at("nil"))) return unexpected(Term::tuple({Term(at("invalid_shutdown")), shutdown}));
  if (args.size() == 2 && args[0].is_tuple() && args[0].tuple_size() == 3 && args[0][2].is_pid()) {
    const Pid owner = args[0][2].pid();
    spec.start = [exports, owner](Process& sup) -> Task<Result<Pid, Term>> {
      co_return sup.spawn_link([exports, owner](Process& me) -> Task<> {
        // Named, not a temporary in the co_await: g++ 12 can destroy such temporaries twice.
        std::function<Task<Outcome>(Process&, const Term&)> run = [exports](Process& p, const Term& init) -> Task<Outcome> {
          const Term& mfa = init[4];
          if (!(mfa.is_tuple() && mfa.tuple_size() == 3 && mfa[0].is_atom() && mfa[1].is_atom()))
            co_return Outcome{Outcome::Class::Error, Term(at("badarg")), Term()};  // a fun: cannot run here
          co_return co_await exports->apply(p, mfa[0].atom_value(), mfa[1].atom_value(), mfa[2]);
        };
        co_await run_task(me, owner, std::move(run));
      });
    };
    return spec;
  }
  if (args.size() == 3 && args[2].is_tuple() && args[2].tuple_size() == 3 && args[2][0].is_atom() &&
      args[2][1].is_atom()) {
    const Term mfa = args[2];  // run at once, nobody awaits
    spec.start = [exports, mfa](Process& sup) -> Task<Result<Pid, Term>> {
      co_return sup.spawn_link([exports, mfa](Process& me) -> Task<> {
        const Outcome o = co_await exports->apply(me, mfa[0].atom_value(), mfa[1].atom_value(), mfa[2]);
        if (!o.ok()) throw Exit(exit_reason_of(o));
      });
    };
    return spec;
  }
  return unexpected(Term::tuple({Term(at("bad_start_task")), req[1]}));
}

}  // namespace

Term TaskRef::to_term() const {
  return Term::map({{Term(at("__struct__")), Term(at("Elixir.Task"))},
                    {Term(at("mfa")), mfa},
                    {Term(at("owner")), Term(owner)},
                    {Term(at("pid")), Term(pid)},
                    {Term(at("ref")), Term(ref)}});
}

namespace task {

TaskRef async(Process& self, TaskFn fn) { return start_local(self, std::move(fn), true); }
TaskRef async_nolink(Process& self, TaskFn fn) { return start_local(self, std::move(fn), false); }

Task<Result<TaskRef, Term>> async(Process& self, ServerRef supervisor, Atom mod, Atom fun, Term args, bool link) {
  const Pid owner = self.pid();
  const Term owner_info = Term::tuple({Term(self.runtime().node()), Term(owner), Term(owner)});
  const Term req = Term::tuple({Term(at("start_task")), Term::list({owner_info, Term(at("monitor"))}),
                                Term(at("temporary")), Term(at("nil"))});
  auto started = co_await gen_server::call(self, supervisor, req, gen_server::infinity);
  if (!started) co_return unexpected(started.error());
  auto pid = started_pid(*started);
  if (!pid) co_return unexpected(pid.error());
  const Pid child = *pid;
  if (link) self.link(child);
  const Ref ref = self.monitor_alias(child);
  const Term mfa = Term::tuple({Term(mod), Term(fun), args});
  self.send(child, Term::tuple({Term(owner), Term(ref), Term(ref), Term::list({Term(owner)}), mfa}));
  const auto arity = static_cast<std::int64_t>(args.is_proper_list() ? args.list_elements().size() : 0);
  co_return TaskRef{child, ref, owner, Term::tuple({Term(mod), Term(fun), Term(arity)})};
}

Task<Result<Term, Term>> await(Process& self, TaskRef t, std::chrono::milliseconds timeout) {
  const Term ref(t.ref);
  std::optional<Term> got =
      co_await self.receive([&](const Term& m) { return is_reply_for(m, ref) || is_down_for(m, ref); }, timeout);
  if (!got) {
    self.demonitor(t.ref, true);  // the alias goes with it: a late result is dropped
    co_return unexpected(task_error(Term(at("timeout")), "await", t.to_term(), timeout));
  }
  if (got->tuple_size() == 2) {
    self.demonitor(t.ref, true);
    co_return (*got)[1];
  }
  co_return unexpected(task_error(down_reason((*got)[4], t), "await", t.to_term(), timeout));
}

Task<Result<std::vector<Term>, Term>> await_many(Process& self, std::vector<TaskRef> tasks,
                                                 std::chrono::milliseconds timeout) {
  std::map<Ref, std::size_t> index;  // the reference of a task still awaited -> its place
  for (std::size_t i = 0; i < tasks.size(); ++i) index.emplace(tasks[i].ref, i);
  std::vector<Term> results(tasks.size());
  const Deadline deadline(timeout);
  std::size_t which = 0;
  auto pick = [&](const Term& m) {  // a result or DOWN of a task still awaited
    if (!m.is_tuple()) return false;
    const Term* ref = m.tuple_size() == 2 ? &m[0] : m.tuple_size() == 5 && m[0].is_atom(atoms::DOWN()) ? &m[1] : nullptr;
    if (!ref || !ref->is_ref()) return false;
    auto it = index.find(ref->ref());
    if (it == index.end()) return false;
    which = it->second;
    return true;
  };
  std::optional<Term> reason;
  while (!index.empty() && !reason) {
    std::optional<Term> got = co_await self.receive(pick, deadline.left());
    if (!got) {
      reason = Term(at("timeout"));
    } else if (got->tuple_size() == 5) {
      index.erase(tasks[which].ref);
      reason = down_reason((*got)[4], tasks[which]);
    } else {
      index.erase(tasks[which].ref);
      self.demonitor(tasks[which].ref, true);
      results[which] = (*got)[1];
    }
  }
  if (!reason) co_return results;
  // Given up: the others' results are dropped with their aliases, and those already here too.
  for (const auto& [ref, i] : index) self.demonitor(ref, true);
  while (co_await self.receive(pick, std::chrono::milliseconds(0))) {
  }
  std::vector<Term> all;
  for (const TaskRef& t : tasks) all.push_back(t.to_term());
  co_return unexpected(task_error(std::move(*reason), "await_many", Term::list(std::move(all)), timeout));
}

Task<std::optional<Result<Term, Term>>> yield(Process& self, TaskRef t, std::chrono::milliseconds timeout) {
  const Term ref(t.ref);
  std::optional<Term> got =
      co_await self.receive([&](const Term& m) { return is_reply_for(m, ref) || is_down_for(m, ref); }, timeout);
  if (!got) co_return std::nullopt;
  if (got->tuple_size() == 2) {
    self.demonitor(t.ref, true);
    co_return Result<Term, Term>((*got)[1]);
  }
  co_return Result<Term, Term>(unexpected(down_reason((*got)[4], t)));
}

Task<std::optional<Result<Term, Term>>> shutdown(Process& self, TaskRef t, std::chrono::milliseconds timeout) {
  // A monitor of our own: the task's may be gone already (an await that timed out drops it).
  const Ref mon = self.monitor(t.pid);
  self.unlink(t.pid);
  self.exit(t.pid, Term(at("shutdown")));
  const Term ref(t.ref), mon_term(mon);
  auto match = [&](const Term& m) { return is_reply_for(m, ref) || is_down_for(m, mon_term); };
  std::optional<Term> got = co_await self.receive(match, timeout);
  if (!got) {
    self.exit(t.pid, Term(atoms::kill()));
    got = co_await self.receive(match);
  }
  self.demonitor(mon, true);
  self.demonitor(t.ref, true);
  if (got->tuple_size() == 2) co_return Result<Term, Term>((*got)[1]);  // it finished first
  const Term& reason = (*got)[4];
  if (reason.is_atom(at("shutdown")) || reason.is_atom(atoms::killed())) co_return std::nullopt;
  co_return Result<Term, Term>(unexpected(down_reason(reason, t)));
}

Task<Result<Pid, Term>> start_child(Process& self, ServerRef supervisor, Atom mod, Atom fun, Term args, Restart restart) {
  const Term owner = Term::tuple({Term(self.runtime().node()), Term(self.pid()), Term(self.pid())});
  const char* kind = restart == Restart::Permanent ? "permanent" : restart == Restart::Transient ? "transient" : "temporary";
  const Term req = Term::tuple({Term(at("start_task")),
                                Term::list({owner, Term::list({Term(self.pid())}), Term::tuple({Term(mod), Term(fun), args})}),
                                Term(at(kind)), Term(at("nil"))});
  auto started = co_await gen_server::call(self, supervisor, req, gen_server::infinity);
  if (!started) co_return unexpected(started.error());
  co_return started_pid(*started);
}

Task<Result<std::vector<Pid>, Term>> children(Process& self, ServerRef supervisor) {
  auto which = co_await supervisor::which_children(self, std::move(supervisor));
  if (!which) co_return unexpected(which.error());
  std::vector<Pid> out;
  if (which->is_proper_list())
    for (const Term& c : which->list_elements())
      if (c.is_tuple() && c.tuple_size() == 4 && c[1].is_pid()) out.push_back(c[1].pid());
  co_return out;
}

namespace {
supervisor::StartOptions task_supervisor_options(std::shared_ptr<Exports> exports, Atom name) {
  supervisor::StartOptions opts;
  opts.name = name;
  opts.child_for_call = [exports = std::move(exports)](const Term& req) { return task_child(exports, req); };
  return opts;
}
}  // namespace

Result<Pid, Term> serve_supervisor(Runtime& rt, std::shared_ptr<Exports> exports, Atom name, SupervisorFlags flags) {
  flags.strategy = Strategy::OneForOne;
  return supervisor::start(rt, flags, {}, task_supervisor_options(std::move(exports), name));
}

ChildSpec supervisor_spec(Term id, std::shared_ptr<Exports> exports, Atom name, SupervisorFlags flags) {
  flags.strategy = Strategy::OneForOne;
  ChildSpec spec;
  spec.id = std::move(id);
  spec.is_supervisor = true;
  spec.shutdown = std::chrono::milliseconds::max();  // infinity, as for supervisors in OTP
  spec.start = [exports = std::move(exports), name, flags](Process& sup) -> Task<Result<Pid, Term>> {
    supervisor::StartOptions opts = task_supervisor_options(exports, name);
    opts.link = true;
    co_return co_await supervisor::start(sup, flags, {}, std::move(opts));
  };
  return spec;
}

}  // namespace task
}  // namespace hypha
