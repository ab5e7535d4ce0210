// pub/sub: Phoenix.PubSub's PG2 adapter protocol (forward_to_local), local subscriptions.
#include "hypha/cluster/pubsub.hpp"

#include <array>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "hypha/base/log.hpp"
#include "hypha/cluster/pg.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/term/match.hpp"
#include "../by_name.hpp"

namespace hypha::pubsub {

namespace {

using namespace pattern;

const Atom& a_forward() { static const Atom a("forward_to_local"); return a; }
const Atom& a_dispatcher() { static const Atom a("Elixir.Phoenix.PubSub"); return a; }
const Atom& a_subscribed() { static const Atom a("$hypha_subscribed"); return a; }
const Atom& a_compact() { static const Atom a("$hypha_compact"); return a; }

// One pubsub on one node: its subscriptions (sharded by topic, read from any thread).
struct State {
  Atom name, adapter;
  std::vector<Atom> groups;  // adapter, adapter_2 .. adapter_N
  Pid adapter_pid;
  static constexpr std::size_t kShards = 16;
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, std::vector<Pid>> topics;
  };
  std::array<Shard, kShards> shards;
  Shard& shard(std::string_view topic) { return shards[std::hash<std::string_view>{}(topic) % kShards]; }
};

cluster::detail::ByName<State>& registry() {
  static cluster::detail::ByName<State> r;
  return r;
}
std::shared_ptr<State> find(const Runtime& rt, Atom name) { return registry().find(rt, name); }
Term unknown(Atom name) { return Term::tuple({Term(Atom("unknown_pubsub")), Term(name)}); }

// Delivers to this node's subscribers of `topic`, except `except`.
void dispatch(Runtime& rt, State& s, std::string_view topic, const Term& msg, const Pid* except) {
  const State::Shard& sh = s.shard(topic);
  std::shared_lock lock(sh.mu);
  auto it = sh.topics.find(std::string(topic));
  if (it == sh.topics.end()) return;
  if (!except) return rt.send_each(it->second, msg);
  for (const Pid& p : it->second)
    if (p != *except) rt.send(p, msg);
}

Term forward(std::string_view topic, const Term& msg, Atom dispatcher) {
  return Term::tuple({Term(a_forward()), Term::binary(topic), msg, Term(dispatcher)});
}

// To the adapters of every other node (the members of the first group; the message encoded once
// for all of them, one frame each), then here.
void broadcast_all(Runtime& rt, State& s, std::string_view topic, const Term& msg, Atom dispatcher, const Pid* except) {
  std::vector<Pid> adapters = pg::get_members(rt, scope(), Term(s.adapter));
  std::erase_if(adapters, [&](const Pid& p) { return rt.is_local(p); });
  if (!adapters.empty()) rt.send_each(adapters, forward(topic, msg, dispatcher));
  dispatch(rt, s, topic, msg, except);
}

class Adapter final : public GenServer {
 public:
  Adapter(Node& node, Options opts) : node_(node), opts_(std::move(opts)) {}

  Task<> init(Process& self) override {
    state_ = std::make_shared<State>();
    state_->name = opts_.name;
    state_->adapter = adapter_name(opts_.name);
    state_->adapter_pid = self.pid();
    state_->groups.push_back(state_->adapter);
    for (unsigned i = 2; i <= opts_.pool_size; ++i)
      state_->groups.push_back(Atom(std::string(state_->adapter.text()) + "_" + std::to_string(i)));
    for (Atom g : state_->groups) {
      std::vector<Pid> me{self.pid()};
      Term group(g);
      auto joined = co_await pg::join(self, scope(), std::move(group), std::move(me));
      if (!joined) throw Exit(Term::tuple({Term(Atom("pg_scope_not_running")), joined.error()}));
    }
    registry().put(self.runtime(), opts_.name, state_);
  }

  Task<> terminate(Process& self, const Term&) override {
    registry().remove(self.runtime(), opts_.name, state_);
    co_return;
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    const Term* topic = nullptr;
    const Term* payload = nullptr;
    Atom dispatcher;
    Pid pid;
    Ref ref;
    if (match(msg, tuple(a_forward(), bind(topic), bind(payload), bind(dispatcher))) && topic->is_binary()) {
      dispatch(self.runtime(), *state_, topic->binary_view(), *payload, nullptr);
    } else if (match(msg, tuple(a_subscribed(), bind(pid), bind(topic))) && topic->is_binary()) {
      auto [it, fresh] = watched_.try_emplace(pid);
      if (fresh) it->second.ref = self.monitor(pid);
      it->second.topics.insert(std::string(topic->binary_view()));
    } else if (match(msg, tuple("DOWN", bind(ref), "process", bind(pid), any))) {
      auto it = watched_.find(pid);
      if (it != watched_.end() && it->second.ref == ref) {
        // Removed in batches: the DOWNs of many subscribers (a node's clients going at once)
        // cost one pass over each of their topics, not one each.
        if (exited_.empty()) self.send(self.pid(), Term(a_compact()));
        exited_.insert(pid);
        for (auto& t : it->second.topics) exited_topics_.insert(std::move(t));
        watched_.erase(it);
      }
    } else if (match(msg, a_compact())) {
      compact();
    } else {
      log::limited(log::Level::Warn, node_.name().text(), "pubsub_message_dropped", std::string(opts_.name.text()),
                   {{"pubsub", opts_.name.text()}, {"message", pattern::detail::shorten(msg)}});
    }
    co_return Action::noreply();
  }

 private:
  // The subscribers that exited since the last pass leave the topics they had.
  void compact() {
    for (const std::string& topic : exited_topics_) {
      auto& sh = state_->shard(topic);
      std::unique_lock lock(sh.mu);
      auto it = sh.topics.find(topic);
      if (it == sh.topics.end()) continue;
      auto& v = it->second;
      v.erase(std::remove_if(v.begin(), v.end(), [&](const Pid& p) { return exited_.count(p) > 0; }), v.end());
      if (v.empty()) sh.topics.erase(it);
    }
    exited_.clear();
    exited_topics_.clear();
  }

  struct Watched {
    Ref ref;
    std::set<std::string> topics;  // every topic it subscribed to here (some maybe unsubscribed since)
  };

  Node& node_;
  Options opts_;
  std::shared_ptr<State> state_;
  std::map<Pid, Watched> watched_;  // subscribers, monitored once each
  std::set<Pid> exited_;  // DOWN, not yet removed
  std::set<std::string> exited_topics_;
};

Term ok_term(const Result<bool, Term>& r) {
  return r ? Term(Atom("ok")) : Term::tuple({Term(Atom("error")), r.error()});
}

// A topic from an rpc caller: a binary, else the call fails with badarg.
std::string_view topic_of(const Term& topic) {
  if (!topic.is_binary()) throw Error(Term(Atom("badarg")), "the topic must be a binary");
  return topic.binary_view();
}

Result<bool, Term> broadcast_with(Runtime& rt, Atom ps, std::string_view topic, const Term& msg, Atom dispatcher,
                                  bool local_only) {
  auto s = find(rt, ps);
  if (!s) return unexpected(unknown(ps));
  if (local_only) dispatch(rt, *s, topic, msg, nullptr);
  else broadcast_all(rt, *s, topic, msg, dispatcher, nullptr);
  return true;
}

Result<bool, Term> direct_with(Runtime& rt, Atom node, Atom ps, std::string_view topic, const Term& msg, Atom dispatcher) {
  if (node == rt.node()) return broadcast_with(rt, ps, topic, msg, dispatcher, true);
  rt.send(adapter_name(ps), node, forward(topic, msg, dispatcher));
  return true;
}

}  // namespace

Atom scope() {
  static const Atom a("Elixir.Phoenix.PubSub");
  return a;
}

Atom adapter_name(Atom pubsub) { return Atom(std::string(pubsub.text()) + ".Adapter"); }

ChildSpec spec(Node& node, Options opts) {
  const Atom name = adapter_name(opts.name);
  return ChildSpec::server(Term(opts.name), [&node, opts] { return std::make_unique<Adapter>(node, opts); },
                           gen_server::StartOptions{.name = name});
}

Result<Pid, Term> start(Node& node, Options opts) {
  const Atom name = adapter_name(opts.name);
  return gen_server::start(node.runtime(), std::make_unique<Adapter>(node, std::move(opts)), {.name = name});
}

Result<bool, Term> subscribe(Runtime& rt, Atom ps, std::string_view topic, const Pid& subscriber) {
  auto s = find(rt, ps);
  if (!s) return unexpected(unknown(ps));
  if (!rt.is_local(subscriber)) return unexpected(Term::tuple({Term(Atom("nolocal")), Term(subscriber)}));
  {
    auto& sh = s->shard(topic);
    std::unique_lock lock(sh.mu);
    sh.topics[std::string(topic)].push_back(subscriber);
  }
  rt.send(s->adapter_pid, Term::tuple({Term(a_subscribed()), Term(subscriber), Term::binary(topic)}));  // it monitors the subscriber
  return true;
}

Result<bool, Term> unsubscribe(Runtime& rt, Atom ps, std::string_view topic, const Pid& subscriber) {
  auto s = find(rt, ps);
  if (!s) return unexpected(unknown(ps));
  auto& sh = s->shard(topic);
  std::unique_lock lock(sh.mu);
  auto it = sh.topics.find(std::string(topic));
  if (it == sh.topics.end()) return false;
  auto& v = it->second;
  const auto before = v.size();
  v.erase(std::remove(v.begin(), v.end(), subscriber), v.end());
  const bool removed = v.size() != before;
  if (v.empty()) sh.topics.erase(it);
  return removed;
}

Result<bool, Term> broadcast(Runtime& rt, Atom ps, std::string_view topic, const Term& msg) {
  return broadcast_with(rt, ps, topic, msg, a_dispatcher(), false);
}

Result<bool, Term> broadcast_from(Runtime& rt, Atom ps, const Pid& from, std::string_view topic, const Term& msg) {
  auto s = find(rt, ps);
  if (!s) return unexpected(unknown(ps));
  broadcast_all(rt, *s, topic, msg, a_dispatcher(), &from);
  return true;
}

Result<bool, Term> local_broadcast(Runtime& rt, Atom ps, std::string_view topic, const Term& msg) {
  return broadcast_with(rt, ps, topic, msg, a_dispatcher(), true);
}

Result<bool, Term> direct_broadcast(Runtime& rt, Atom node, Atom ps, std::string_view topic, const Term& msg) {
  return direct_with(rt, node, ps, topic, msg, a_dispatcher());
}

std::vector<Pid> subscribers(const Runtime& rt, Atom ps, std::string_view topic) {
  auto s = find(rt, ps);
  if (!s) return {};
  const auto& sh = s->shard(topic);
  std::shared_lock lock(sh.mu);
  auto it = sh.topics.find(std::string(topic));
  return it == sh.topics.end() ? std::vector<Pid>{} : it->second;
}

void add_exports(Exports& exports, Node& node) {
  Node* n = &node;
  const char* mod = "Elixir.Phoenix.PubSub";
  // broadcast/3,4 and local_broadcast/3,4: the dispatcher defaults to Phoenix.PubSub's.
  for (const bool local : {false, true}) {
    const char* fun = local ? "local_broadcast" : "broadcast";
    exports.add(mod, fun, [n, local](Atom ps, Term topic, Term msg) {
      return ok_term(broadcast_with(n->runtime(), ps, topic_of(topic), msg, a_dispatcher(), local));
    });
    exports.add(mod, fun, [n, local](Atom ps, Term topic, Term msg, Atom dispatcher) {
      return ok_term(broadcast_with(n->runtime(), ps, topic_of(topic), msg, dispatcher, local));
    });
  }
  exports.add(mod, "direct_broadcast", [n](Atom node_name, Atom ps, Term topic, Term msg) {
    return ok_term(direct_with(n->runtime(), node_name, ps, topic_of(topic), msg, a_dispatcher()));
  });
  exports.add(mod, "direct_broadcast", [n](Atom node_name, Atom ps, Term topic, Term msg, Atom dispatcher) {
    return ok_term(direct_with(n->runtime(), node_name, ps, topic_of(topic), msg, dispatcher));
  });
}

}  // namespace hypha::pubsub
