#include "hypha/cluster/events.hpp"

#include "hypha/cluster/pubsub.hpp"

namespace hypha::events {

Atom tag() {
  static const Atom a("hypha_event");
  return a;
}

Term map(std::vector<std::pair<std::string_view, Term>> fields) {
  std::vector<MapEntry> kv;
  kv.reserve(fields.size());
  for (auto& [k, v] : fields) kv.emplace_back(Term(Atom(k)), std::move(v));
  return Term::map(std::move(kv));
}

void publish(Runtime& rt, const std::optional<Atom>& pubsub, const Term& event) {
  if (!pubsub) return;
  (void)pubsub::broadcast(rt, *pubsub, kTopic, Term::tuple({Term(tag()), event}));
}

}  // namespace hypha::events
