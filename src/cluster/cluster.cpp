// cluster_sup: the node's cluster services, under kernel_sup.
#include "hypha/cluster/cluster.hpp"

#include <algorithm>

#include "hypha/cluster/global.hpp"
#include "hypha/cluster/pg.hpp"
#include "hypha/otp/blocking.hpp"

namespace hypha {
namespace cluster {

Result<Pid, Term> start(Node& node, const std::shared_ptr<Exports>& exports, const Options& opts) {
  // The supervisor and the tasks tell their events on opts.events unless their own say otherwise.
  tasks::Options task_opts = opts.tasks.value_or(tasks::Options{});
  if (!task_opts.events) task_opts.events = opts.events;
  if (exports) {
    pg::add_exports(*exports, node);
    pubsub::add_exports(*exports, node);
    registry::add_exports(*exports, node);
    cache::add_exports(*exports, node);
    if (opts.supervisor) {
      dsup::add_exports(*exports, node);
      // Every supervisor member may be asked to run a task or the orchestrator.
      tasks::add_exports(*exports, node, task_opts);
    }
  }
  std::vector<pubsub::Options> pubsubs = opts.pubsubs;
  if (opts.events && std::none_of(pubsubs.begin(), pubsubs.end(), [&](const pubsub::Options& p) { return p.name == *opts.events; }))
    pubsubs.push_back(pubsub::Options{.name = *opts.events});
  std::vector<Atom> scopes = opts.pg_scopes;
  if (!pubsubs.empty() && std::find(scopes.begin(), scopes.end(), pubsub::scope()) == scopes.end())
    scopes.push_back(pubsub::scope());
  std::vector<ChildSpec> children;
  for (Atom scope : scopes) children.push_back(pg::scope_spec(node, scope));
  for (const auto& ps : pubsubs) children.push_back(pubsub::spec(node, ps));
  for (const auto& c : opts.caches) children.push_back(cache::spec(node, c));
  if (opts.registry) children.push_back(registry::spec(node, *opts.registry));
  if (opts.supervisor) {
    dsup::Options so = *opts.supervisor;
    if (!so.events) so.events = opts.events;
    children.push_back(dsup::spec(node, exports, so));
  }
  if (opts.supervisor && opts.tasks) children.push_back(tasks::spec(node, exports, task_opts));
  if (!opts.formation.strategies.empty()) children.push_back(formation::spec(node, opts.formation));
  if (!opts.global_names.empty()) children.push_back(global::names_spec(node, opts.global_names));
  ChildSpec sup;
  sup.id = Term(Atom("cluster_sup"));
  sup.is_supervisor = true;
  sup.shutdown = std::chrono::milliseconds::max();
  sup.start = [children](Process& parent) -> Task<Result<Pid, Term>> {
    supervisor::StartOptions so;
    so.name = Atom("cluster_sup");
    so.link = true;
    co_return co_await supervisor::start(parent,
                                         SupervisorFlags{.strategy = Strategy::OneForOne, .intensity = 10,
                                                         .period = std::chrono::seconds(10)},
                                         children, std::move(so));
  };
  return supervisor::start_child(node.runtime(), ServerRef(Atom("kernel_sup")), std::move(sup));
}

void stop(Node& node) {
  (void)block_on(node.runtime(), [](Process& self) {
    return supervisor::terminate_child(self, ServerRef(Atom("kernel_sup")), Term(Atom("cluster_sup")));
  });
}

}  // namespace cluster

Result<std::unique_ptr<Node>, std::string> start_cluster_node(NodeOptions node, kernel::Options kernel,
                                                              cluster::Options cluster) {
  if (!kernel.exports) kernel.exports = std::make_shared<Exports>();
  auto exports = kernel.exports;
  auto n = start_node(std::move(node), std::move(kernel));
  if (!n) return unexpected(n.error());
  auto sup = cluster::start(**n, exports, cluster);
  if (!sup) return unexpected("the cluster services did not start: " + sup.error().to_string());
  return std::move(*n);
}

}  // namespace hypha
