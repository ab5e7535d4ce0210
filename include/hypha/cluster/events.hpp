// Cluster events: what the services tell whoever watches the cluster (hyphad's dashboard, or an
// Elixir process subscribed with Phoenix.PubSub.subscribe(Hypha.PubSub, "hypha:events")). Each is
// a map with atom keys, `kind` first among them, broadcast as {hypha_event, Map} on the topic
// "hypha:events" of the pubsub cluster::Options::events names (cluster/pubsub.hpp):
//
//   #{kind => task, name => N, status => running | done | failed | forgotten, node => 'a@h',
//     pid => Pid, progress => 0..100 | undefined, started => UnixMs, ended => UnixMs}
//       from the tasks' orchestrator, on every change of a task (its progress included)
//   #{kind => child, id => Id, status => up | down, node => 'a@h', pid => Pid | undefined}
//       from the distributed supervisor member where a child started or ended
//
// (hyphad's dashboard adds its own: per-node figures and membership; docs/apps.md.) Delivery is
// pub/sub's: at most once, in order per publisher, never blocking the publisher.
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "hypha/process/runtime.hpp"
#include "hypha/term/term.hpp"

namespace hypha::events {

inline constexpr std::string_view kTopic = "hypha:events";
Atom tag();  // hypha_event

// #{K => V, ...} with atom keys.
Term map(std::vector<std::pair<std::string_view, Term>> fields);

// Broadcasts {hypha_event, Event} on kTopic of `pubsub` (to every node running it); nothing
// when `pubsub` is unset or does not run here.
void publish(Runtime& rt, const std::optional<Atom>& pubsub, const Term& event);

}  // namespace hypha::events
