// The cluster registry (Horde.Registry's job): names, any term, held by one pid each (with a
// metadata term), the same on every member node.
//
//   registry::start(node);                                   // or [registry] in the config
//   registry::register_name(rt, Term("job"_atom), worker);   // ok, or {already_registered, Pid}
//   std::optional<Pid> p = registry::whereis(rt, Term("job"_atom));   // on any member node
//   registry::send(rt, Term("job"_atom), msg);
//
// - Members are the nodes that run a registry of the same name (or a static list of nodes);
//   each replicates every name.
//   A registration is visible on the node that made it at once (read your writes) and on the
//   other members within one sync interval (default 50 ms).
// - A registered process that exits loses its names everywhere; so do the processes registered
//   by a member that goes down (its entries leave with it), and a BEAM process whose node goes.
// - Two registrations of one name (at once on two nodes, or on both sides of a partition that
//   heals) resolve to the same holder on every node: the older registration (hybrid logical
//   clock time, ties by node name). The other gets the exit signal {name_conflict, Name, Winner}.
// - Registering a name held by a live process returns {error, {already_registered, Pid}}.
// - Reads (whereis, lookup, select, count, names_of) read this node's replica directly, from any
//   thread, without a message. Writes go to the registry process of the node that registered the
//   name (so unregister and update_meta work from any member).
// - BEAM nodes are not members: they reach the registry of any hypha node by rpc, through the
//   exports `hypha_registry:register_name/2,3, whereis_name/1, unregister_name/1, send/2, ...`
//   (the shapes of Erlang's {via, Module, Name} callbacks; erlang/hypha_registry.erl forwards them).
//
// Input from peers is untrusted: a malformed message is logged (rate-limited) and dropped.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/supervisor.hpp"
#include "hypha/otp/via.hpp"
#include "hypha/process/process.hpp"
#include "hypha/term/result.hpp"

namespace hypha::registry {

// hypha_registry: the registry [registry] starts, and the default everywhere below.
Atom default_name();

struct Options {
  Atom name = default_name();
  // How often changes go out to the other members (a change made when none went out for that
  // long goes at once; the ones right after wait, in one message, for the interval to end).
  std::chrono::milliseconds sync_interval{50};
  // How often each member tells the others how far it is, so one that missed a change (a lost
  // frame) asks for the whole state again.
  std::chrono::milliseconds anti_entropy{1000};
  // Empty: every node that runs a registry of this name is a member. Else only these nodes
  // (this one need not be listed): the registries of other nodes are neither asked nor heard.
  std::vector<Atom> members;
};

ChildSpec spec(Node& node, const Options& opts = {});
Result<Pid, Term> start(Node& node, const Options& opts = {});

struct Holder {
  Pid pid;
  Term meta;
};
struct Registration {
  Term name;
  Pid pid;
  Term meta;
};

// ok, or the error term: {already_registered, Pid}, noproc (no registry of that name here).
Result<bool, Term> register_name(Runtime& rt, const Term& name, const Pid& pid, const Term& meta = Term::list({}),
                                 Atom registry = default_name());
Task<Result<bool, Term>> register_name(Process& self, Term name, Pid pid, Term meta = Term::list({}),
                                       Atom registry = default_name());
// True when the name was registered (by anyone: as global:unregister_name, any process may).
Result<bool, Term> unregister_name(Runtime& rt, const Term& name, Atom registry = default_name());
Task<Result<bool, Term>> unregister_name(Process& self, Term name, Atom registry = default_name());
// ok, or not_registered.
Result<bool, Term> update_meta(Runtime& rt, const Term& name, const Term& meta, Atom registry = default_name());

std::optional<Pid> whereis(const Runtime& rt, const Term& name, Atom registry = default_name());
std::optional<Holder> lookup(const Runtime& rt, const Term& name, Atom registry = default_name());
// Names matching `pattern`: a term where the atom '_' matches anything, tuples and lists match
// element by element, anything else by equality. Sorted by name.
std::vector<Registration> select(const Runtime& rt, const Term& pattern, Atom registry = default_name());
std::size_t count(const Runtime& rt, Atom registry = default_name());
std::vector<Term> names_of(const Runtime& rt, const Pid& pid, Atom registry = default_name());
// Sends to the name's holder; false when nobody holds it.
bool send(Runtime& rt, const Term& name, const Term& msg, Atom registry = default_name());

// How much the replica here holds (for tests and the dashboard): names with a holder, members it
// syncs with, logged changes not yet sent to every member.
struct Stats {
  std::size_t names = 0, members = 0, log = 0;
};
Stats stats(const Runtime& rt, Atom registry = default_name());

// The registry as a name service for {via, ...} names (otp/via.hpp): gen_server::start with
// .via = ViaName{registry::via(), Name} registers the server cluster-wide before its init, and
// calls to that ViaName find it from any member node. module() is hypha_registry for the default
// registry (what BEAM code passes as {via, hypha_registry, Name}), else the registry's name.
std::shared_ptr<const NameService> via(Atom registry = default_name());
ViaName via_name(Term name, Atom registry = default_name());

// hypha_registry:register_name/2,3 (yes | no), whereis_name/1 (Pid | undefined),
// unregister_name/1 (ok), send/2 (Pid, or exit {badarg, {Name, Msg}}), lookup/1
// ({Pid, Meta} | undefined), count/0, list/0 ([{Name, Pid}]), on the default registry.
void add_exports(Exports& exports, Node& node);

}  // namespace hypha::registry
