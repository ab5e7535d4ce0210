// rpc: calling functions on other nodes by module, function and arguments, both ways.
//
// Served (by the node's kernel, otp/kernel.hpp): hypha::start_node(opts, {.exports = e}) makes `:rpc.call(:"cpp@host", Mod, :fun, args)`,
// `:erpc.call/4,5`, `rpc:cast`, `rpc:multicall` and `spawn(Node, M, F, A)` from Erlang/Elixir run
// the node's exports. OTP 23+ callers use spawn_request(Node, erpc, execute_call, [Ref, M, F, A]),
// and read the result from the spawned process's exit reason; the node also answers the
// {Pid, features_request} every BEAM peer sends to `rex` (so their rpc:multicall/cast use erpc)
// and the older {call, M, F, A, GL} requests to rex. Built-ins callers expect are added:
// erlang:node/0, nodes/0,1, is_alive/0, whereis/1, registered/0, apply/3, and io output of
// functions this node calls elsewhere is printed on its stdout (it is their group leader).
//
// Called: rpc::call returns what OTP's rpc:call returns: the value, or {badrpc, Reason} with
// Reason nodedown, timeout, notsup, {'EXIT', {Error, Stack}} for an error, {'EXIT', Reason}
// for an exit; a thrown value is returned as is. It works against C++ and BEAM nodes alike.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"

namespace hypha::rpc {

inline constexpr std::chrono::milliseconds infinity = std::chrono::milliseconds::max();

Task<Term> call(Process& self, Atom node, Atom mod, Atom fun, Term args, std::chrono::milliseconds timeout = infinity);
Term call(Runtime& rt, Atom node, Atom mod, Atom fun, Term args, std::chrono::milliseconds timeout = infinity);

// Fire and forget (erpc:cast): errors are logged on the node that runs the function.
void cast(Process& self, Atom node, Atom mod, Atom fun, Term args);

// rpc:multicall: {Results, BadNodes}. Results holds, in the order of `nodes`, each answer from a
// node that answered ({badrpc, ...} for calls that failed there); BadNodes the nodes that were
// down or did not answer in time.
Task<Term> multicall(Process& self, std::vector<Atom> nodes, Atom mod, Atom fun, Term args,
                     std::chrono::milliseconds timeout = infinity);
Term multicall(Runtime& rt, const std::vector<Atom>& nodes, Atom mod, Atom fun, Term args,
               std::chrono::milliseconds timeout = infinity);

// What erpc's DOWN reason or spawn error means as an rpc:call result (exposed for tests).
Term result_of_down(const Term& res, const Term& reason);

}  // namespace hypha::rpc
