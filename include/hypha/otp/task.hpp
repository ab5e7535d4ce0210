// Tasks, as Elixir's Task and Task.Supervisor: run one computation in its own process, locally or
// on another node, and await its result.
//
//   auto t = hypha::task::async(self, [](hypha::Process&) -> hypha::Task<hypha::Term> { co_return 42; });
//   auto r = co_await hypha::task::await(self, t);                      // Result<Term, Term>
//
//   // on a node that serves one: hypha::task::serve_supervisor(node_rt, exports, "kv_router_tasks"_a)
//   auto rt = co_await hypha::task::async(self, {"kv_router_tasks"_a, "bar@127.0.0.1"_a}, "erlang"_a, "node"_a, {});
//
// The supervisor speaks Elixir's wire protocol, so Elixir's
// `Task.Supervisor.async({:kv_router_tasks, :"bar@127.0.0.1"}, :erlang, :node, []) |> Task.await()`
// is served by a C++ node, and task::async(self, {Sup, Node}, ...) works against an Elixir
// Task.Supervisor as well as a C++ one (../shared/docs/interop-notes.md, section 2).
//
// Failures are results, never hangs: await gives {Reason, {'Elixir.Task', await, [Task, Timeout]}}
// as Elixir's Task.await exits, with Reason timeout, {nodedown, Node} (the task's node was lost),
// or the task's exit reason. With `link` (Elixir's async), a crashing task also sends its exit
// signal to the caller, which dies with it unless it traps exits; async_nolink does not link.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "hypha/otp/exports.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/supervisor.hpp"

namespace hypha {

// %Task{}: the task's process, the reference its result is tagged with, and its owner.
struct TaskRef {
  Pid pid;
  Ref ref;
  Pid owner;
  Term mfa;  // {M, F, Arity}, for error reasons; {erlang, apply, 1} for a C++ function
  Term to_term() const;  // the Elixir struct, as a map
};

namespace task {

inline constexpr std::chrono::milliseconds default_timeout = std::chrono::seconds(5);

using TaskFn = std::function<Task<Term>(Process&)>;

// A local task running `fn` (linked to the caller, or not for async_nolink).
TaskRef async(Process& self, TaskFn fn);
TaskRef async_nolink(Process& self, TaskFn fn);

// A task started by a task supervisor (C++ or Elixir, local or remote) running Mod:Fun(Args):
// the TaskRef, or why the supervisor did not start it (the gen_server call's error, or
// {error, Reason} from the supervisor).
Task<Result<TaskRef, Term>> async(Process& self, ServerRef supervisor, Atom mod, Atom fun, Term args,
                                  bool link = true);

// Waits for the result: the value, or the reason Task.await exits with.
Task<Result<Term, Term>> await(Process& self, TaskRef t, std::chrono::milliseconds timeout = default_timeout);
// Task.await_many: every task's value, in the order given, within `timeout` for all of them; the
// first failure (or the timeout) is the error {Reason, {'Elixir.Task', await_many, [Tasks,
// Timeout]}}, and the results still to come are then dropped (the tasks are not stopped).
Task<Result<std::vector<Term>, Term>> await_many(Process& self, std::vector<TaskRef> tasks,
                                                 std::chrono::milliseconds timeout = default_timeout);
// Task.yield: the outcome if it came within `timeout`, nullopt if the task is still running.
Task<std::optional<Result<Term, Term>>> yield(Process& self, TaskRef t, std::chrono::milliseconds timeout = default_timeout);
// Task.shutdown: stops the task (shutdown, then kill after `timeout`); its result if it finished
// first, nullopt otherwise.
Task<std::optional<Result<Term, Term>>> shutdown(Process& self, TaskRef t, std::chrono::milliseconds timeout = default_timeout);

// Task.Supervisor.start_child: runs Mod:Fun(Args) under `supervisor`, nobody awaits it; with
// Restart::Transient it is run again if it fails. Its pid, or why it was not started.
Task<Result<Pid, Term>> start_child(Process& self, ServerRef supervisor, Atom mod, Atom fun, Term args,
                                    Restart restart = Restart::Temporary);
// Task.Supervisor.children: the tasks running under `supervisor` now. To stop one:
// supervisor::terminate_child(self, supervisor, Term(pid)) (Task.Supervisor.terminate_child).
Task<Result<std::vector<Pid>, Term>> children(Process& self, ServerRef supervisor);

// Starts a task supervisor registered as `name`, running the exports' functions for callers on
// any node (Elixir's Task.Supervisor.async/async_nolink/start_child wire forms). It is a dynamic
// supervisor (one_for_one, `flags` as Task.Supervisor's max_restarts, max_seconds and
// max_children), so Task.Supervisor.children/terminate_child and which_children/count_children
// work on it from any node, and stopping it shuts its tasks down (each task's shutdown time, 5 s
// unless the starter said otherwise). Returns its pid.
Result<Pid, Term> serve_supervisor(Runtime& rt, std::shared_ptr<Exports> exports, Atom name, SupervisorFlags flags = {});
// The same supervisor as a child of another (the node's kernel starts one so).
ChildSpec supervisor_spec(Term id, std::shared_ptr<Exports> exports, Atom name, SupervisorFlags flags = {});

}  // namespace task
}  // namespace hypha
