// The kernel's children, one file per Erlang name (net_kernel.cpp, rex.cpp, erpc.cpp, user.cpp,
// erlang.cpp for the built-ins), started by kernel.cpp.
#pragma once

#include <memory>

#include "hypha/otp/exports.hpp"
#include "hypha/otp/kernel.hpp"
#include "hypha/otp/supervisor.hpp"

namespace hypha::kernel {

// net_kernel: answers {is_auth, Node} (net_adm:ping).
ChildSpec net_kernel_spec();
// rex: rpc's older protocol and the features handshake of BEAM peers.
ChildSpec rex_spec(std::shared_ptr<Exports> exports);
// user: the group leader of the processes this node spawns for others (prints their output).
ChildSpec user_spec();
ProcessBody user_process();
// erpc: what runs the processes other nodes spawn here (erpc:execute_call/cast, any export).
SpawnHandler erpc_spawn_handler(std::shared_ptr<Exports> exports);

}  // namespace hypha::kernel
