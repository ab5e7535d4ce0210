// The cluster services of a node: a `cluster_sup` supervisor under the kernel's kernel_sup
// starts the services its options enable, each a child: a pg scope per configured scope, then
// the pubsubs, the caches, the registry, the distributed supervisor, the tasks' member, then formation (names as they land).
//
//   auto node = hypha::start_cluster_node({.name = "a@127.0.0.1"}, {}, {.pg_scopes = {Atom("pg")}});
//
// Their rpc built-ins (pg:join/3, ...) are added to the kernel's exports, so BEAM nodes call them
// with rpc:call as on one of theirs.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "hypha/cluster/cache.hpp"
#include "hypha/cluster/formation.hpp"
#include "hypha/cluster/pubsub.hpp"
#include "hypha/cluster/registry.hpp"
#include "hypha/cluster/supervisor.hpp"
#include "hypha/cluster/tasks.hpp"
#include "hypha/otp/kernel.hpp"

namespace hypha {
namespace cluster {

struct Options {
  std::vector<Atom> pg_scopes{Atom("pg")};  // [pg] scopes
  // [[pubsub]] tables; their pg scope ('Elixir.Phoenix.PubSub') is started with them.
  std::vector<pubsub::Options> pubsubs;
  formation::Options formation;  // [cluster]: started when it names strategies
  std::vector<Atom> global_names;  // [node] global_names (cluster/global.hpp)
  std::optional<registry::Options> registry;  // [registry]: the cluster registry
  std::optional<dsup::Options> supervisor;     // [supervisor]: the distributed supervisor (needs the registry)
  std::optional<tasks::Options> tasks;         // [tasks]: unique cluster tasks (need both)
  std::vector<cache::Options> caches;          // [[cache]]: the caches (cluster/cache.hpp)
  // The pubsub the services tell their events on (cluster/events.hpp): started with the others
  // when it is not among `pubsubs`, and given to the supervisor and the tasks. hyphad sets
  // 'Elixir.Hypha.PubSub'; unset: no events.
  std::optional<Atom> events;
};

// Starts cluster_sup under kernel_sup (the node's kernel must run) and adds the services'
// built-ins to `exports`, the kernel's.
Result<Pid, Term> start(Node& node, const std::shared_ptr<Exports>& exports, const Options& opts = {});

// Stops the node's cluster services in order (the distributed supervisor hands its children to
// the other members first) and waits until they have: what a node leaving cleanly does before
// Node::stop (hypha node on SIGTERM).
void stop(Node& node);

}  // namespace cluster

// A node with its kernel and its cluster services.
Result<std::unique_ptr<Node>, std::string> start_cluster_node(NodeOptions node, kernel::Options kernel = {},
                                                              cluster::Options cluster = {});

}  // namespace hypha
