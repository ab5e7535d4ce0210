// Process groups: OTP's `pg`, on the wire. A scope is a process registered under the scope's
// name on each node that runs it; the scopes of a cluster find each other (discover), exchange
// their local members (sync) and tell each other of joins and leaves with exactly OTP 25's
// messages, so C++ pids joined here are in `pg:get_members(Scope, Group)` on Erlang nodes and
// Erlang pids joined there are in get_members here.
//
//   pg::start_scope(node, Atom("pg"));                       // or [pg] scopes in the config
//   pg::join(rt, Atom("pg"), Term("workers"_atom), {worker});   // local pids only, as in OTP
//   std::vector<Pid> all = pg::get_members(rt, Atom("pg"), Term("workers"_atom));
//
// As in OTP: a pid may join a group more than once (and is then a member that many times);
// members are listed newest first; a member that exits leaves every group it joined; the members
// of a node whose connection goes leave everywhere (through the peer scope's monitor: nothing is
// sent); groups are any term. get_members, get_local_members and which_groups read the scope's
// table directly (no message, like OTP's ETS reads), from any thread.
//
// Input from peers is untrusted: a message the scope does not expect, or a join/leave/sync that is
// malformed or names pids of another node than its sender's, is logged (rate-limited) and
// dropped; the scope lives on (an Erlang scope crashes on the same input).
#pragma once

#include <utility>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/supervisor.hpp"
#include "hypha/process/process.hpp"
#include "hypha/term/result.hpp"

namespace hypha::pg {

// `pg`, the scope OTP's pg:join/2 and friends use.
Atom default_scope();

// The scope as a supervised child (id: the scope atom), and on its own.
ChildSpec scope_spec(Node& node, Atom scope);
Result<Pid, Term> start_scope(Node& node, Atom scope);

// pg:join/3: every pid must be local, else the error is {nolocal, Bad} (OTP raises it).
Result<bool, Term> join(Runtime& rt, Atom scope, const Term& group, const std::vector<Pid>& pids);
Task<Result<bool, Term>> join(Process& self, Atom scope, Term group, std::vector<Pid> pids);
// pg:leave/3: true (ok), false (not_joined: none of them was a member).
Result<bool, Term> leave(Runtime& rt, Atom scope, const Term& group, const std::vector<Pid>& pids);
Task<Result<bool, Term>> leave(Process& self, Atom scope, Term group, std::vector<Pid> pids);

// Newest first, local and remote; empty for an unknown group or scope.
std::vector<Pid> get_members(const Runtime& rt, Atom scope, const Term& group);
std::vector<Pid> get_local_members(const Runtime& rt, Atom scope, const Term& group);
std::vector<Term> which_groups(const Runtime& rt, Atom scope);  // groups with members

// OTP 25.1's monitors: the calling process gets {Ref, join | leave, Group, [Pid]} for every
// change (of any group, or of one), local or remote, until demonitor. monitor_scope gives the
// current groups as a map Group => [Pid]; monitor the current members of its group.
Task<Result<std::pair<Ref, Term>, Term>> monitor_scope(Process& self, Atom scope);
Task<Result<std::pair<Ref, std::vector<Pid>>, Term>> monitor(Process& self, Atom scope, Term group);
// True when the monitor existed; its pending notifications are flushed from the mailbox.
Task<bool> demonitor(Process& self, Atom scope, Ref ref);

// pg's functions as rpc built-ins, as a BEAM node has them: join/2,3, leave/2,3,
// get_members/1,2, get_local_members/1,2, which_groups/0,1 (join and leave take pids local to
// this node).
void add_exports(Exports& exports, Node& node);

}  // namespace hypha::pg
