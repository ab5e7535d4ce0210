// Unique cluster tasks (the `distributed_tasks` library's job, with its promises kept): a task
// is a function (an export) run once per name in the whole cluster, on the member the hash ring
// picks, with a status anyone can ask for and a callback when it ends.
//
//   tasks::start(node, exports);                              // or [tasks] in the config
//   auto svc = tasks::cluster_service();                      // a tasks::Service
//   svc->start_async(rt, "timer"_a, "sleep"_a, Term::list({Term(100)}), {.name = Term::binary("n")});
//       // {ok, {<<"n">>, Pid}}, or {error, {running, Pid}} when a task of that name runs anywhere
//   svc->get_status(rt, Term::binary("n"));                   // {running, N} | {done, N} | ...
//
// - Each task is a child of the distributed supervisor (cluster/supervisor.hpp) under the id
//   {hypha_task, Name}, so it runs where the consistent hash of that id over the live members
//   says, its name is unique in the cluster (the registry), and with restart = true it is
//   started again on a survivor when its node dies (transient); else it is reported failed.
// - The orchestrator is a cluster singleton: a child of that supervisor too, and registered in
//   the cluster registry as hypha_tasks_orchestrator. It holds every task's status and result,
//   replicated to the `hypha_tasks_member` process of every member, so when its node dies the one
//   started on a survivor (within the detection time) rebuilds them: finished tasks from its
//   replica, running ones from the registry. Meanwhile calls give
//   {error, {distributed_tasks_not_available, orchestrator_not_running}}.
// - Statuses: {running, Name}, {done, Name}, {error, {distributed_task_failed, Name}},
//   {error, {distributed_task_not_found, Name}}. A finished task (done or failed) is kept with its
//   result for Options::cleanup (60 s), then forgotten; its name can be used again at once.
// - The callback (an export Mod:Fun/2) runs on the orchestrator's node once the task is done or
//   failed, with the name and the result, or {'EXIT', Reason} when it failed. At most once: a
//   callback due when the orchestrator's node dies is lost.
// - A task ends in one of: done (the function returned), failed (it raised, exited or threw; it
//   was terminated; it was stopped by stop(), reason `stopped`; its node died and restart is false).
// - Under the supervisor's quorum distribution at most one copy of a task runs at a time, even
//   across a partition (see dsup::Options::distribution); under uniform, the two sides of a
//   partition can each run one, and the heal keeps one (the registry's older registration).
//
// Service is an abstract interface so that an application can test against a double
// (tasks::Fake below) instead of a cluster.
//
// Input from peers is untrusted: a malformed message is logged (rate-limited) and dropped.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "hypha/cluster/supervisor.hpp"
#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/term/result.hpp"

namespace hypha::tasks {

// hypha_tasks_orchestrator: the registry name of the orchestrator.
Atom orchestrator_name();

struct Options {
  std::chrono::milliseconds cleanup{60000};  // a finished task is forgotten after this
  Atom supervisor = dsup::default_name();    // whose children tasks are
  Atom registry = Atom("hypha_registry");   // where the orchestrator is registered
  // A pubsub the orchestrator tells every change of a task on (cluster/events.hpp); none: quiet.
  std::optional<Atom> events;
};

// hypha_tasks_member, the member process of every node that runs tasks (it holds the replica of the
// orchestrator's table and starts the orchestrator when none runs).
hypha::ChildSpec spec(Node& node, std::shared_ptr<Exports> exports, const Options& opts = {});
Result<Pid, Term> start(Node& node, std::shared_ptr<Exports> exports, const Options& opts = {});

struct StartOptions {
  std::optional<Term> name;  // none: a random UUID, as a binary
  std::optional<std::pair<Atom, Atom>> callback;  // Mod:Fun/2, called with (Name, Result)
  bool restart = false;  // started again on a survivor when its node dies
};

struct Status {
  enum class Kind { Running, Done, Failed, NotFound, Unavailable } kind = Kind::NotFound;
  Term name;
  // {running, Name}, {done, Name}, {error, {distributed_task_failed, Name}}, ...
  Term to_term() const;
  static std::optional<Status> from_term(const Term& t);
};

struct Info {
  Term name;
  Status::Kind state = Status::Kind::Running;  // Running, Done or Failed
  Atom node;                                    // where it runs or ran
  Pid pid;
  std::optional<int> progress;  // 0..100 as the task last reported (progress()); none: never
  std::int64_t started_ms = 0;  // Unix time (ms) of its start; 0: unknown (found in the registry)
  std::int64_t ended_ms = 0;    // when it ended; 0: running
  Term result;                  // info() only: the value (done) or the reason (failed); else undefined
};

// What stop() did.
enum class Stopped {
  Stopped,    // it was running (or being restarted): it is terminated, and failed with reason `stopped`
  Forgotten,  // it had ended: its record is dropped (the name is free, as after the cleanup time)
};

// {error, {distributed_tasks_not_available, orchestrator_not_running}}'s inner term.
Term unavailable();

class Service {
 public:
  virtual ~Service() = default;
  // {Name, Pid}, or the error: {running, Pid}, {distributed_tasks_not_available, ...}, no_quorum,
  // {bad_callback, ...}, or what the supervisor answered.
  virtual Task<Result<std::pair<Term, Pid>, Term>> start_async(Process& self, Atom mod, Atom fun, Term args,
                                                                StartOptions opts = {}) = 0;
  virtual Task<Status> get_status(Process& self, Term name) = 0;
  // The value a done task returned; errors: {distributed_task_failed, Name, Reason},
  // {not_finished, Name}, {distributed_task_not_found, Name}, unavailable().
  virtual Task<Result<Term, Term>> result(Process& self, Term name) = 0;
  // Every task the orchestrator knows (running and kept finished ones), sorted by name.
  virtual Task<Result<std::vector<Info>, Term>> list(Process& self) = 0;
  // One task, with its result; errors: {distributed_task_not_found, Name}, unavailable().
  virtual Task<Result<Info, Term>> info(Process& self, Term name) = 0;
  // Stops a running task wherever it runs (the supervisor terminates it and does not restart
  // it; it is then failed, reason `stopped`), or forgets an ended one. Errors:
  // {distributed_task_not_found, Name}, {starting, Name} (its start is not answered yet: try
  // again), unavailable(), or what the supervisor answered (no_quorum).
  virtual Task<Result<Stopped, Term>> stop(Process& self, Term name) = 0;

  // The same for code outside processes (main, tests): each runs in a process and waits.
  Result<std::pair<Term, Pid>, Term> start_async(Runtime& rt, Atom mod, Atom fun, Term args, StartOptions opts = {});
  Status get_status(Runtime& rt, Term name);
  Result<Term, Term> result(Runtime& rt, Term name);
  Result<std::vector<Info>, Term> list(Runtime& rt);
  Result<Info, Term> info(Runtime& rt, Term name);
  Result<Stopped, Term> stop(Runtime& rt, Term name);
};

// Called by a task's function, in the task's process: how far it is (clamped to 0..100), shown
// by list() and info() (and the HTTP API, the dashboard, `hypha task watch`). A message to the
// orchestrator; not replicated: after the orchestrator moved, a task shows no progress until
// its next report. Outside a task it does nothing.
void progress(Process& self, int percent, const Options& opts = {});

// The cluster's tasks, through the orchestrator, from any node that runs hypha_tasks.
std::shared_ptr<Service> cluster_service(const Options& opts = {});

// A double for applications' tests: runs nothing; records each start and answers as the test
// says (running until finish() or fail() is called), with the cluster's shapes and rules (one
// running task per name, names kept after they end, a UUID when unnamed).
class Fake final : public Service {
 public:
  struct Started {
    Term name;
    Atom mod, fun;
    Term args;
    StartOptions opts;
  };
  Task<Result<std::pair<Term, Pid>, Term>> start_async(Process& self, Atom mod, Atom fun, Term args,
                                                        StartOptions opts = {}) override;
  Task<Status> get_status(Process& self, Term name) override;
  Task<Result<Term, Term>> result(Process& self, Term name) override;
  Task<Result<std::vector<Info>, Term>> list(Process& self) override;
  Task<Result<Info, Term>> info(Process& self, Term name) override;
  Task<Result<Stopped, Term>> stop(Process& self, Term name) override;

  void finish(const Term& name, Term result);  // done, with this result
  void fail(const Term& name, Term reason);
  void set_progress(const Term& name, int percent);
  void set_unavailable(bool on);  // every call answers unavailable(), as while the orchestrator moves
  std::vector<Started> started() const;

 private:
  struct Entry {
    Started start;
    Status::Kind state = Status::Kind::Running;
    Term result;
    Pid pid;
    std::optional<int> progress;
  };
  mutable std::mutex mu_;
  std::map<Term, Entry> tasks_;
  std::vector<Started> log_;
  bool unavailable_ = false;
  std::uint64_t next_pid_ = 1;
};

// A random (version 4) UUID as text: what an unnamed task is called (as a binary).
std::string uuid4();

// hypha_tasks:start_async/3,4,5 ((M, F, A[, Opts]) or (M, F, A, Name, Opts); Opts a proplist or
// map of name, callback ({Mod, Fun}), restart), get_status/1, result/1, list/0, info/1 ({ok,
// {Name, State, Node, Pid, Progress | undefined, StartedMs, EndedMs, Result}}), stop/1
// ({ok, stopped | forgotten} or {error, E}), steps/2 (N, StepMs: a sample task that sleeps N
// steps and reports its progress after each), and the internal
// run_task/5 and orchestrator/0 the supervisor starts, on the default orchestrator.
void add_exports(Exports& exports, Node& node, const Options& opts = {});

}  // namespace hypha::tasks
