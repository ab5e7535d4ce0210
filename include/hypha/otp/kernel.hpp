// The kernel of a node: the services every node runs, started and watched by one supervisor,
// as OTP's kernel_sup. Its children, in start order:
//   net_kernel  answers {is_auth, Node} (net_adm:ping, Node.ping)
//   rex         rpc's server (rpc:call from OTP before 23, the features handshake of every peer)
//   user        the group leader of processes spawned here for other nodes (prints their output)
//   hypha_tasks a task supervisor (Task.Supervisor's protocol) for work sent to this node
// and, not a process, erpc's spawn handler: spawn_request from other nodes (erpc:call, rpc:call
// from OTP 23+, spawn/4) runs the node's exports, with the `erlang` built-ins added.
//
//   auto node = hypha::start_node({.name = "a@127.0.0.1", .cookie = "c"});   // node and kernel
//   auto node = hypha::start_node(opts, {.exports = my_exports});             // serving my exports
//
// The cluster services (issue 13 on) join as children of a `cluster` supervisor under it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/supervisor.hpp"

namespace hypha {
namespace kernel {

struct Options {
  std::shared_ptr<Exports> exports;  // what rpc and spawn requests may run (null: the built-ins only)
  std::optional<Atom> task_supervisor = Atom("hypha_tasks");  // none: no task supervisor
  SupervisorFlags flags{.strategy = Strategy::OneForOne, .intensity = 10, .period = std::chrono::seconds(10)};
};

// Starts the kernel on a node that has none (kernel_sup, registered): its pid, or why not.
Result<Pid, Term> start(Node& node, Options opts = {});
// Adds the `erlang` built-ins to `exports` (the kernel does; for exports served by other means).
void add_builtins(Exports& exports, Node& node);

// The processes of this runtime that hold the most: what `hypha top`, the HTTP API and the
// dashboard show. Also the export hypha_node:processes(queue | memory, N), which answers
// {Total, [{Pid, Name | undefined, QueueLen, Memory, Status}]} (largest first).
enum class TopBy { Queue, Memory };
struct ProcessRow {
  Pid pid;
  std::optional<Atom> name;
  std::size_t queue = 0, memory = 0;
  ProcessStatus status = ProcessStatus::Waiting;
};
struct Top {
  std::size_t total = 0;  // processes alive
  std::vector<ProcessRow> rows;
};
Top top_processes(const Runtime& rt, TopBy by, std::size_t n);

}  // namespace kernel

// A node with its kernel: what programs start. An error names what failed.
Result<std::unique_ptr<Node>, std::string> start_node(NodeOptions opts, kernel::Options kernel = {});

}  // namespace hypha
