// The router of Elixir's KV guide: route(Bucket, Mod, Fun, Args) looks the bucket up in this
// node's table; on the owner it applies Mod:Fun(Args) here, otherwise it forwards the whole
// routing request to the owner's task supervisor ({kv_router_tasks, Owner}), which routes again
// with its own table (tables may differ per node). An owner without one (a BEAM node) is reached
// with rpc: Mod:Fun(Args) runs there. No entry: error {badroute, <<"could not find entry for
// <<\"b\">> in table [...]">>}.
//
// It is an export, kv_router:route/4 (the bucket a binary), so every node and the CLI can use it
// (forwarded requests use kv_router:route/5, which carries a hop count):
//   hypha rpc foo@127.0.0.1 kv_router route '[<<"world">>, erlang, node, []]'
#pragma once

#include <memory>
#include <mutex>
#include <variant>

#include "hypha/cluster/routing.hpp"
#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"

namespace hypha {

class Router : public std::enable_shared_from_this<Router> {
 public:
  using Table = std::variant<RangeTable, HashRing>;

  // Registers kv_router:route/4 in `exports` and starts the task supervisor kv_router_tasks.
  static Result<std::shared_ptr<Router>, Term> start(Node& node, std::shared_ptr<Exports> exports, Table table);

  void set_table(Table table);  // takes effect for the next request
  std::string describe() const;
  std::optional<Atom> owner(std::string_view bucket) const;

  // Routes as the export does; failures are thrown as Erlang exceptions (hypha::Error ...).
  // `hops` counts forwards so far: tables that point at each other end in an error, not a loop.
  Task<Term> route(Process& self, Term bucket, Atom mod, Atom fun, Term args, int hops = 0) const;
  static constexpr int kMaxHops = 8;

  Router(Node& node, std::shared_ptr<Exports> exports, Table table);

 private:
  std::shared_ptr<const Table> table() const;  // the current one (a reload swaps it)
  Node& node_;
  std::shared_ptr<Exports> exports_;
  mutable std::mutex mu_;
  std::shared_ptr<const Table> table_;
};

}  // namespace hypha
