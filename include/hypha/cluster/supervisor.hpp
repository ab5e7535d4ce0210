// The distributed supervisor (Horde.DynamicSupervisor's job): children started anywhere in the
// cluster, each on the member a strategy picks, started again on a survivor when their node dies.
//
//   dsup::start(node, exports);                                    // or [supervisor] in the config
//   dsup::start_child(rt, {.id = Term("mailer"_atom), .module = "mailer"_a, .function = "run"_a,
//                          .args = Term::list({}), .restart = Restart::Permanent});   // {ok, Pid}
//   dsup::which_children(rt);                                      // [{Id, Pid, Node}] cluster-wide
//
// - Members are the nodes that run a supervisor of this name (`hypha_sup`): they find each other
//   when they connect, and each replicates every member's children (id, spec, pid).
// - A child spec names an export (Mod:Fun/N of the exports table, present on every member) and
//   its arguments, so any member can start it again. The export runs as the child's process (as
//   an Elixir Task child does: the child ends when it returns); or it starts a process and
//   returns {ok, Pid}, which then is the child. Restart: permanent, transient (again unless it
//   ended normal, shutdown or {shutdown, _}), temporary (never); a child restarted more than
//   `intensity` times within `period` is given up (logged), without taking its node's other
//   children down (unlike OTP's supervisor, which would stop them all).
// - Ids are unique in the cluster: each child holds the registry name {hypha_sup, Id} (the
//   cluster registry must run); starting an id that runs anywhere gives {error, {already_started, Pid}}.
// - Placement (Options::distribution): uniform, the member a consistent hash of the id picks
//   among the live members (the default); quorum, the same while this member sees a strict
//   majority of the members (Options::members, else those it has known): in a minority it stops
//   its children, starts none ({error, no_quorum}) and adopts none, until a majority is back;
//   local, the member the request reaches.
// - Failover: when a member goes (its node dies, or the connection closes), the survivors start
//   its permanent and transient children again, each on the member the hash now picks; a start
//   is acknowledged only once every live member holds the child's spec, so an acknowledged child
//   survives the death of its node. A member that stops cleanly (SIGTERM) stops its children and
//   hands them to the others before it exits. With active redistribution a member that joins
//   gets the children the ring now gives it.
// - After a partition heals, a child that ran on both sides keeps the registry's winner (the
//   older registration); the other copy is stopped with {name_conflict, Name, Winner} and is not
//   restarted. Every member's view then holds one copy.
//
// Input from peers is untrusted: a malformed message is logged (rate-limited) and dropped.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/supervisor.hpp"
#include "hypha/term/result.hpp"

namespace hypha::dsup {

// hypha_sup: the supervisor [supervisor] starts, and the default everywhere below.
Atom default_name();

enum class Distribution { Uniform, Quorum, Local };

struct Options {
  Atom name = default_name();
  Distribution distribution = Distribution::Uniform;
  // Active: when a member joins, the children the ring now gives it move there (stopped here,
  // started there); passive (false): children stay where they run.
  bool active_redistribution = false;
  int intensity = 3;                                           // restarts of one child ...
  std::chrono::milliseconds period = std::chrono::seconds(5);  // ... allowed within this time
  Atom registry = Atom("hypha_registry");                      // where children hold their ids
  // Quorum: the members the majority is counted from (this node need not be listed). Empty:
  // every member this one has heard of and that did not leave cleanly.
  std::vector<Atom> members;
  // Quorum: a member that heard from no majority within this time stops its children (0: half
  // the node's detect time). Keep it under the others' detect time, so that the children stop
  // before the others declare this member down and start them.
  std::chrono::milliseconds lease{0};
  // A pubsub each member tells its children's starts and ends on (cluster/events.hpp); none: quiet.
  std::optional<Atom> events;
};

struct ChildSpec {
  Term id;
  Atom module, function;
  Term args = Term::list({});  // a proper list
  Restart restart = Restart::Permanent;
  // #{id => Id, start => {M, F, Args}, restart => permanent | transient | temporary}, the shape
  // of OTP's map child specs (what BEAM callers pass to hypha_sup:start_child/1).
  Term to_term() const;
  static std::optional<ChildSpec> from_term(const Term& t);
};

struct Child {
  Term id;
  Pid pid;
  Atom node;  // where it runs
  Restart restart = Restart::Permanent;
};

hypha::ChildSpec spec(Node& node, std::shared_ptr<Exports> exports, const Options& opts = {});
Result<Pid, Term> start(Node& node, std::shared_ptr<Exports> exports, const Options& opts = {});

// The child's pid; errors: {already_started, Pid}, {bad_child_spec, Why}, noproc (no supervisor
// here), or what the start failed with.
Result<Pid, Term> start_child(Runtime& rt, const ChildSpec& spec, Atom sup = default_name());
Task<Result<Pid, Term>> start_child(Process& self, ChildSpec spec, Atom sup = default_name());
// Stops the child wherever it runs (it is not restarted): ok, or {error, not_found}.
Result<bool, Term> terminate_child(Runtime& rt, const Term& id, Atom sup = default_name());
Task<Result<bool, Term>> terminate_child(Process& self, Term id, Atom sup = default_name());
// Every child this member knows of, its own and the other members', sorted by id.
std::vector<Child> which_children(Runtime& rt, Atom sup = default_name());
Task<std::vector<Child>> which_children(Process& self, Atom sup = default_name());
// The registry name a running child holds: {Sup, Id}.
Term registered_as(const Term& id, Atom sup = default_name());

// hypha_sup:start_child/1 ({ok, Pid} | {error, E}), terminate_child/1 (ok | {error, not_found}),
// which_children/0 ([{Id, Pid, Node}]), on the default supervisor: for BEAM callers and the CLI.
void add_exports(Exports& exports, Node& node);

}  // namespace hypha::dsup
