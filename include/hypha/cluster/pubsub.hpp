// Pub/sub: Phoenix.PubSub 2.x's default adapter, on the wire. A pubsub named like an Elixir
// module ('Elixir.MyApp.PubSub') runs an adapter process registered as 'Elixir.MyApp.PubSub.Adapter'
// and joined to the pg group of that name in the 'Elixir.Phoenix.PubSub' scope (and, for a pool
// of N, to the groups '..._2' .. '..._N' an Elixir node may pick). A broadcast sends
// {forward_to_local, Topic, Msg, 'Elixir.Phoenix.PubSub'} to that group's members on other
// nodes, C++ or Elixir, and delivers Msg to this node's subscribers; what arrives from other
// nodes is delivered to this node's subscribers. So an Elixir process subscribed with
// Phoenix.PubSub.subscribe(MyApp.PubSub, "jobs") gets what C++ broadcasts, and back.
//
//   pubsub::start(node, {.name = Atom("Elixir.MyApp.PubSub")});  // or [[pubsub]] in the config
//   pubsub::subscribe(rt, ps, "jobs", worker);                    // any local pid
//   pubsub::broadcast(rt, ps, "jobs", Term("done"_atom));
//
// Subscriptions are local (nothing about subscribers crosses the wire); a subscriber that exits
// is unsubscribed; subscribing twice delivers twice (Phoenix's duplicate registry). Delivery is
// at most once, in order per publisher; a slow subscriber never holds the publisher or other
// subscribers (sends never block). Messages from other nodes with a dispatcher other than
// 'Elixir.Phoenix.PubSub' (Phoenix Channels' 'Elixir.Phoenix.Channel.Server') are delivered as
// the plain message.
#pragma once

#include <string_view>

#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/supervisor.hpp"
#include "hypha/term/result.hpp"

namespace hypha::pubsub {

struct Options {
  Atom name;               // 'Elixir.MyApp.PubSub'
  unsigned pool_size = 1;  // the Elixir side's pool_size: the groups this node's adapter joins
};

// The pg scope every pubsub's adapter joins: 'Elixir.Phoenix.PubSub'.
Atom scope();
// 'Elixir.MyApp.PubSub.Adapter' for 'Elixir.MyApp.PubSub'.
Atom adapter_name(Atom pubsub);

// The adapter as a supervised child (the scope must run: cluster_sup starts it first).
ChildSpec spec(Node& node, Options opts);
Result<Pid, Term> start(Node& node, Options opts);

// Errors: {unknown_pubsub, Name} when no such pubsub runs on this node.
Result<bool, Term> subscribe(Runtime& rt, Atom pubsub, std::string_view topic, const Pid& subscriber);
// Removes every subscription of `subscriber` to `topic`; false when there was none.
Result<bool, Term> unsubscribe(Runtime& rt, Atom pubsub, std::string_view topic, const Pid& subscriber);
// To every subscriber in the cluster.
Result<bool, Term> broadcast(Runtime& rt, Atom pubsub, std::string_view topic, const Term& msg);
// The same, but not to `from` (a subscriber publishing on its own topic).
Result<bool, Term> broadcast_from(Runtime& rt, Atom pubsub, const Pid& from, std::string_view topic, const Term& msg);
// To this node's subscribers only.
Result<bool, Term> local_broadcast(Runtime& rt, Atom pubsub, std::string_view topic, const Term& msg);
// To the subscribers on `node` only (this one or another).
Result<bool, Term> direct_broadcast(Runtime& rt, Atom node, Atom pubsub, std::string_view topic, const Term& msg);
// Local subscribers of `topic` (a pid once per subscription).
std::vector<Pid> subscribers(const Runtime& rt, Atom pubsub, std::string_view topic);

// 'Elixir.Phoenix.PubSub':broadcast/3,4, local_broadcast/3,4, direct_broadcast/4,5 as rpc
// built-ins (ok, or {error, {unknown_pubsub, Name}}).
void add_exports(Exports& exports, Node& node);

}  // namespace hypha::pubsub
