// The OTP layer: behaviours on top of processes (gen_server, supervisors, tasks), rpc both ways,
// the exports table, and the node kernel that serves them (start_node).
#pragma once

#include "hypha/otp/blocking.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/kernel.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/otp/supervisor.hpp"
#include "hypha/otp/task.hpp"
#include "hypha/otp/via.hpp"
