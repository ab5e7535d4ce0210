#include "router.hpp"

#include "hypha/otp/rpc.hpp"
#include "hypha/otp/task.hpp"

namespace hypha {

namespace {
Atom at(std::string_view s) { return Atom(s); }
}  // namespace

Router::Router(Node& node, std::shared_ptr<Exports> exports, Table table)
    : node_(node), exports_(std::move(exports)), table_(std::make_shared<const Table>(std::move(table))) {}

Result<std::shared_ptr<Router>, Term> Router::start(Node& node, std::shared_ptr<Exports> exports, Table table) {
  auto router = std::make_shared<Router>(node, exports, std::move(table));
  std::weak_ptr<Router> weak = router;
  exports->add("kv_router", "route", [weak](Process& self, Term bucket, Atom mod, Atom fun, Term args) -> Task<Term> {
    auto r = weak.lock();
    if (!r) throw Error(Term(at("noproc")), "the router is gone");
    co_return co_await r->route(self, std::move(bucket), mod, fun, std::move(args));
  });
  exports->add("kv_router", "route",
               [weak](Process& self, Term bucket, Atom mod, Atom fun, Term args, int hops) -> Task<Term> {
                 auto r = weak.lock();
                 if (!r) throw Error(Term(at("noproc")), "the router is gone");
                 co_return co_await r->route(self, std::move(bucket), mod, fun, std::move(args), hops);
               });
  auto sup = task::serve_supervisor(node.runtime(), exports, at("kv_router_tasks"));
  if (!sup) return unexpected(sup.error());
  return router;
}

void Router::set_table(Table table) {
  auto t = std::make_shared<const Table>(std::move(table));
  std::lock_guard lock(mu_);
  table_ = std::move(t);
}

std::shared_ptr<const Router::Table> Router::table() const {
  std::lock_guard lock(mu_);
  return table_;
}

std::string Router::describe() const {
  return std::visit([](const auto& x) { return x.describe(); }, *table());
}

std::optional<Atom> Router::owner(std::string_view bucket) const {
  return std::visit([&](const auto& x) { return x.lookup(bucket); }, *table());
}

Task<Term> Router::route(Process& self, Term bucket, Atom mod, Atom fun, Term args, int hops) const {
  if (!bucket.is_binary()) throw Error(Term(at("badarg")), "argument 1: the bucket must be a binary");
  const std::optional<Atom> owner_node = owner(bucket.binary_view());
  if (!owner_node)
    throw Error(Term::tuple({Term(at("badroute")),
                             Term::binary("could not find entry for " + bucket.to_string() + " in table " + describe())}));
  if (*owner_node == node_.name()) co_return value_or_rethrow(co_await exports_->apply(self, mod, fun, args));

  if (hops >= kMaxHops)
    throw Error(Term::tuple({Term(at("badroute")), Term::binary("routing loop: " + bucket.to_string() + " forwarded " +
                                                                std::to_string(hops) + " times, last to " +
                                                                Term(*owner_node).to_string())}));
  // The owner routes again with its own table, in a task of its kv_router_tasks.
  const Term forwarded = Term::list({bucket, Term(mod), Term(fun), args, Term(hops + 1)});
  auto t = co_await task::async(self, ServerRef(at("kv_router_tasks"), *owner_node), at("kv_router"), at("route"),
                                forwarded, false);
  if (!t) {
    const Term& why = t.error();
    const bool no_supervisor = why.is_tuple() && why.tuple_size() == 2 && why[0].is_atom(atoms::noproc());
    if (!no_supervisor) throw Exit(why);
    // A node without a router (a BEAM node): the request itself runs there, by rpc.
    const Term r = co_await rpc::call(self, *owner_node, mod, fun, args);
    if (r.is_tuple() && r.tuple_size() == 2 && r[0].is_atom(at("badrpc"))) throw Error(r);
    co_return r;
  }
  auto r = co_await task::await(self, *t, std::chrono::seconds(5));
  if (!r) throw Exit(r.error()[0]);  // the owner's failure (its route's exception), or nodedown/timeout
  co_return *r;
}

}  // namespace hypha
