// supervisor: OTP's supervision trees. A supervisor starts its children in order, links to them,
// traps exits, and restarts them by its strategy when they die:
//   one_for_one   only the dead child;
//   one_for_all   every child (the others are shut down first, in reverse order);
//   rest_for_one  the dead child and the ones started after it.
// Restart kinds: permanent (always), transient (unless the exit was normal, shutdown or
// {shutdown, _}), temporary (never; the child is forgotten). More than `intensity` restarts within
// `period` and the supervisor gives up: it shuts down every child and exits with `shutdown`.
// Shutting a child down is exit(Child, shutdown), then kill after its shutdown time.
//
//   auto sup = hypha::supervisor::start(rt, {.strategy = hypha::Strategy::OneForOne}, {
//       hypha::ChildSpec::server("stack"_a, [] { return std::make_unique<Stack>(); }, {.name = "stack"_a}),
//       hypha::ChildSpec::process("ticker"_a, ticker_body),
//   });
//
// A supervisor is also a dynamic supervisor: start_child adds children at run time;
// terminate_child by id stops a child and keeps its place (OTP's supervisor; a temporary child is
// forgotten), by pid stops and forgets it (Elixir's DynamicSupervisor); restart_child and
// delete_child act on children that stopped but kept their place; which_children and count_children report them in
// OTP's shapes. Child specs hold C++ functions, so they are given on the node that runs the
// supervisor; the supervisor itself is a gen_server, reachable from anywhere for the rest.
#pragma once

#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "hypha/otp/gen_server.hpp"

namespace hypha {

enum class Strategy { OneForOne, OneForAll, RestForOne };
enum class Restart { Permanent, Transient, Temporary };

struct SupervisorFlags {
  Strategy strategy = Strategy::OneForOne;
  int intensity = 3;                                   // restarts allowed ...
  std::chrono::milliseconds period = std::chrono::seconds(5);  // ... within this time
  // Children at most (DynamicSupervisor's max_children): a start past it gives {error, max_children}.
  std::size_t max_children = std::numeric_limits<std::size_t>::max();
};

struct ChildSpec {
  Term id;
  // Starts the child linked to the supervisor (`sup` is the supervisor's process).
  std::function<Task<Result<Pid, Term>>(Process& sup)> start;
  Restart restart = Restart::Permanent;
  // exit(Child, shutdown), then kill after this long; zero: kill at once (brutal_kill).
  std::chrono::milliseconds shutdown = std::chrono::seconds(5);
  bool is_supervisor = false;

  // A process running `body`, linked to the supervisor.
  static ChildSpec process(Term id, ProcessBody body, Restart restart = Restart::Permanent);
  // A gen_server made fresh by `make` at every (re)start.
  static ChildSpec server(Term id, std::function<std::unique_ptr<GenServer>()> make, gen_server::StartOptions opts = {},
                          Restart restart = Restart::Permanent);
};

namespace supervisor {

struct StartOptions {
  std::optional<Atom> name;
  std::optional<ViaName> via;  // a name of a name service (otp/via.hpp), as gen_server's
  bool link = false;  // to the starting process (only from a process)
  // Requests of its own for a dynamic supervisor (Task.Supervisor's {start_task, ...}): a call
  // the supervisor does not know is passed here; a spec is started as a child without an id
  // (known by its pid, as DynamicSupervisor's children are) and the caller gets {ok, Pid}; an
  // error E is replied as {error, E}. Runs in the supervisor's process.
  std::function<Result<ChildSpec, Term>(const Term& request)> child_for_call;
};

// Starts the supervisor and its children; a child that fails to start fails the whole start with
// {shutdown, {failed_to_start_child, Id, Reason}}.
Task<Result<Pid, Term>> start(Process& self, SupervisorFlags flags, std::vector<ChildSpec> children,
                              StartOptions opts = {});
Result<Pid, Term> start(Runtime& rt, SupervisorFlags flags, std::vector<ChildSpec> children, StartOptions opts = {});

// The child's pid; {error, {already_started, Pid}} when a running child has that id; the error
// `ignore` when its init said ignore (OTP's {ok, undefined}: the child keeps its place, no process).
Task<Result<Pid, Term>> start_child(Process& self, ServerRef sup, ChildSpec spec);
Result<Pid, Term> start_child(Runtime& rt, const ServerRef& sup, ChildSpec spec);
// By id or by pid: ok, or {error, not_found}.
Task<Result<Term, Term>> terminate_child(Process& self, ServerRef sup, Term id_or_pid);
// For a child that stopped and kept its place (a transient child that ended cleanly, or one whose
// restart failed): restart_child starts it again (its pid), delete_child forgets it (ok).
// Errors as OTP's: {error, running} for a running child, {error, not_found}.
Task<Result<Pid, Term>> restart_child(Process& self, ServerRef sup, Term id);
Task<Result<Term, Term>> delete_child(Process& self, ServerRef sup, Term id);
// [{Id, Pid | undefined, worker | supervisor, []}] and [{specs, N}, {active, N}, {supervisors, N}, {workers, N}].
Task<Result<Term, Term>> which_children(Process& self, ServerRef sup);
Task<Result<Term, Term>> count_children(Process& self, ServerRef sup);

}  // namespace supervisor
}  // namespace hypha
