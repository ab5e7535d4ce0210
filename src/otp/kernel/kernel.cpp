// kernel_sup: starts the node's services in order, one_for_one.
#include "kernel_impl.hpp"

#include "hypha/otp/task.hpp"

namespace hypha {
namespace kernel {

Result<Pid, Term> start(Node& node, Options opts) {
  if (!opts.exports) opts.exports = std::make_shared<Exports>();
  add_builtins(*opts.exports, node);
  Runtime& rt = node.runtime();
  rt.set_spawn_handler(erpc_spawn_handler(opts.exports));
  std::vector<ChildSpec> children;
  children.push_back(net_kernel_spec());
  children.push_back(rex_spec(opts.exports));
  children.push_back(user_spec());
  if (opts.task_supervisor)
    children.push_back(task::supervisor_spec(Term(*opts.task_supervisor), opts.exports, *opts.task_supervisor));
  supervisor::StartOptions so;
  so.name = Atom("kernel_sup");
  return supervisor::start(rt, opts.flags, std::move(children), std::move(so));
}

}  // namespace kernel

Result<std::unique_ptr<Node>, std::string> start_node(NodeOptions opts, kernel::Options k) {
  auto node = Node::start(std::move(opts));
  if (!node.ok()) return unexpected(node.error());
  auto sup = kernel::start(**node, std::move(k));
  if (!sup.ok()) return unexpected("the kernel did not start: " + sup.error().to_string());
  return std::move(*node);
}

}  // namespace hypha
