// Names from BEAM's :global, from C++. hypha nodes do not run `global` (interop-notes.md §3:
// its lock and resolver protocol carries Erlang funs); through any BEAM peer, which does, C++
// code looks up, registers and unregisters global names and sends to them. A C++ process
// registered this way is monitored by global on the BEAM side like an Erlang one: when it exits
// (or its node goes), the name is gone everywhere. So Elixir's GenServer.call({:global, :stack},
// :pop) reaches a C++ gen_server registered as stack.
//
//   auto peer = global::beam_peer(node);                        // a connected node running global
//   global::register_name(rt, *peer, Term("stack"_atom), pid);   // true: yes; false: no (taken)
//   auto where = global::whereis_name(rt, *peer, Term("stack"_atom));
//
// Each call is an rpc to `via` (blocking the calling thread, or, with Process&, only the
// process); an rpc failure is the error ({badrpc, Reason}).
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/process/process.hpp"
#include "hypha/term/result.hpp"

#include "hypha/otp/supervisor.hpp"

namespace hypha::global {

inline constexpr std::chrono::milliseconds default_timeout = std::chrono::seconds(10);

// A connected visible node that runs global (a BEAM node), if there is one.
std::optional<Atom> beam_peer(Node& node, std::chrono::milliseconds timeout = default_timeout);

Result<bool, Term> register_name(Runtime& rt, Atom via, const Term& name, const Pid& pid,
                                 std::chrono::milliseconds timeout = default_timeout);
Result<bool, Term> unregister_name(Runtime& rt, Atom via, const Term& name,
                                   std::chrono::milliseconds timeout = default_timeout);
// nullopt: not registered.
Result<std::optional<Pid>, Term> whereis_name(Runtime& rt, Atom via, const Term& name,
                                              std::chrono::milliseconds timeout = default_timeout);
// global:send/2: the pid it went to; {badarg, {Name, Msg}} when the name is not registered.
Result<Pid, Term> send(Runtime& rt, Atom via, const Term& name, const Term& msg,
                       std::chrono::milliseconds timeout = default_timeout);

Task<Result<std::optional<Pid>, Term>> whereis_name(Process& self, Atom via, Term name,
                                                    std::chrono::milliseconds timeout = default_timeout);

// [node] global_names: a process (hypha_global_names) that registers the local processes of
// these names in global through every BEAM peer that connects (so a BEAM side that was replaced
// has them again), and again when a name's local process is replaced (checked every second).
ChildSpec names_spec(Node& node, std::vector<Atom> names);

}  // namespace hypha::global
