// The terms rpc and erpc answer with, shared by the calling side (rpc.cpp) and the serving side
// (the kernel's rex and erpc).
#pragma once

#include <string_view>
#include <vector>

#include "hypha/otp/exports.hpp"

namespace hypha::rpc::detail {

Atom at(std::string_view s);
Term badrpc(Term reason);       // {badrpc, Reason}
Term exit_tuple(Term reason);   // {'EXIT', Reason}
// erpc:execute_call/4's exit reason for an outcome: {Ref, return | throw | exit, V} or {Ref, error, V, Stack}.
Term erpc_reason(const Term& res, const Outcome& o);
// rpc:call's value for an outcome (rpc.erl's rpcify_exception).
Term rpc_value(const Outcome& o);
void log_failure(Runtime& rt, const char* what, Atom mod, Atom fun, const Outcome& o);
Term atom_list(const std::vector<Atom>& v);

}  // namespace hypha::rpc::detail
