// hypha_formation: wanted nodes from the strategies, connections with a capped backoff, mesh.
#include "hypha/cluster/formation.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "hypha/base/log.hpp"
#include "hypha/base/metrics.hpp"
#include "hypha/net/epmd.hpp"
#include "hypha/net/handshake.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/process/gen.hpp"
#include "hypha/term/match.hpp"
#include "dns.hpp"
#include "gossip_socket.hpp"

namespace hypha::formation {

namespace {

using namespace pattern;
using std::chrono::milliseconds;

const Atom& a_formation() { static const Atom a("hypha_formation"); return a; }

// The names EPMD's NAMES answer lists ("name foo at port 4370" lines), as foo@host.
std::vector<std::string> epmd_listed(const std::string& text, const std::string& host) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kw, name, at, port_kw;
    if (words >> kw >> name >> at >> port_kw && kw == "name" && at == "at") out.push_back(name + "@" + host);
  }
  return out;
}

// Options handed to the formation process by reconfigure(): the call names them by number.
std::mutex pending_mu;
std::map<std::int64_t, Options> pending_options;
std::int64_t pending_next = 0;

std::int64_t put_reconfiguration(Options opts) {
  std::lock_guard lock(pending_mu);
  pending_options[++pending_next] = std::move(opts);
  return pending_next;
}

std::optional<Options> take_reconfiguration(std::int64_t id) {
  std::lock_guard lock(pending_mu);
  std::optional<Options> out;
  if (auto it = pending_options.find(id); it != pending_options.end()) out = std::move(it->second);
  pending_options.erase(pending_options.begin(), pending_options.upper_bound(id));  // older ones: abandoned calls
  return out;
}

class Formation final : public GenServer {
 public:
  Formation(Node& node, Options opts) : node_(node), opts_(std::move(opts)) {}

  Task<> init(Process& self) override {
    clock_ = self.runtime().clock();
    node_.monitor_nodes(self.pid());
    if (uses("static"))
      for (const auto& n : opts_.static_nodes) want(n, "static");
    if (uses("gossip")) {
      auto g = open_gossip(self, opts_.gossip);
      if (!g) throw Exit(Term::tuple({Term(Atom("gossip")), Term::binary(g.error())}));
      gossip_ = *g;
    }
    start_loops(self);
    // Nodes already connected count as up (a restarted formation process).
    for (Atom n : node_.nodes(true)) up(self, n);
    attempt_due(self);
    co_return;
  }

  Task<> terminate(Process& self, const Term&) override {
    node_.monitor_nodes(self.pid(), false);
    if (gossip_) gossip_->close();
    co_return;
  }

  Task<Action> handle_call(Process& self, const Term& request, const From&) override {
    std::int64_t id = 0;
    if (!match(request, tuple("reconfigure", bind(id)))) co_return Action::reply(Term::tuple({Term(Atom("error")), Term(Atom("badarg"))}));
    auto next = take_reconfiguration(id);
    if (!next) co_return Action::reply(Term::tuple({Term(Atom("error")), Term::binary("options expired")}));
    auto r = reconfigure(self, std::move(*next));
    co_return Action::reply(r ? Term(Atom("ok")) : Term::tuple({Term(Atom("error")), Term::binary(r.error())}));
  }

  Task<Action> handle_cast(Process& self, const Term& msg) override {
    Pid pid;
    if (match(msg, tuple("subscribe", bind(pid)))) {
      subscribers_[self.monitor(pid)] = pid;
    }
    co_return Action::noreply();
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    Atom node;
    Ref ref;
    Pid pid;
    bool ok = false;
    const Term* body = nullptr;
    std::string host;
    if (match(msg, tuple("connect_result", bind(node), bind(ok)))) {
      connect_result(self, node, ok);
    } else if (match(msg, tuple("nodeup", bind(node)))) {
      up(self, node);
    } else if (match(msg, tuple("nodedown", bind(node)))) {
      down(self, node);
    } else if (match(msg, "tick")) {
      tick_armed_ = false;
      attempt_due(self);
    } else if (match(msg, "mesh_poll")) {
      if (loop_goes_on(self, "mesh_poll", opts_.mesh, opts_.mesh_interval)) {
        mesh_asks_.clear();  // a peer that did not answer the last round is asked again, not remembered
        for (Atom n : node_.nodes(true)) ask_peers(self, n);
      }
    } else if (match(msg, tuple("gossip_heard", bind(host)))) {
      if (gossip_) heard(host);  // (not one of a socket a reload closed)
      attempt_due(self);
    } else if (match(msg, "gossip_send")) {
      if (loop_goes_on(self, "gossip_send", gossip_ != nullptr, next_heartbeat())) gossip_->send_heartbeat();
    } else if (match(msg, "epmd_poll")) {
      if (loop_goes_on(self, "epmd_poll", uses("epmd"), opts_.epmd_interval)) poll_epmd(self);
    } else if (match(msg, tuple("epmd_names", bind(host), bind(body)))) {
      if (uses("epmd") && std::count(opts_.epmd_hosts.begin(), opts_.epmd_hosts.end(), host)) epmd_names(self, host, *body);
    } else if (match(msg, "dns_poll")) {
      if (loop_goes_on(self, "dns_poll", uses("dns"), opts_.dns_interval)) poll_dns(self);
    } else if (match(msg, tuple("dns_answer", bind(body)))) {
      dns_answer(self, *body);
    } else if (match(msg, tuple("DOWN", bind(ref), "process", any, any))) {
      subscribers_.erase(ref);
    } else if (match(msg, tuple(bind(ref), bind(body))) && mesh_asks_.count(ref)) {
      mesh_reply(self, *body);
      mesh_asks_.erase(ref);
    }
    co_return Action::noreply();
  }

 private:
  enum class State { Unknown, Up, Failed, Down };
  struct Target {
    std::set<std::string> by;  // the strategies that want it
    State state = State::Unknown;
    bool pending = false;
    milliseconds backoff{0};
    Clock::time_point due{};
    Clock::time_point heard{};  // the last heartbeat (gossip)
    std::string strategy() const { return by.empty() ? "mesh" : *by.begin(); }
  };

  // The polling loops (one message each, re-armed after it is handled): each runs while its
  // strategy is configured, and a reload that turns one on starts it unless it still runs.
  std::set<std::string> loops_;
  void start_loops(Process& self) {
    const auto start = [&](const char* tick, bool on, bool at_once, milliseconds first) {
      if (!on || loops_.count(tick)) return;
      loops_.insert(tick);
      if (at_once) self.send(self.pid(), Term(Atom(tick)));
      else self.runtime().send_after(first, self.pid(), Term(Atom(tick)));
    };
    start("epmd_poll", uses("epmd"), true, {});
    start("dns_poll", uses("dns"), true, {});
    start("mesh_poll", opts_.mesh, false, opts_.mesh_interval);
    if (gossip_ && !loops_.count("gossip_send")) gossip_->send_heartbeat();  // at start, then at random times up to the interval
    start("gossip_send", gossip_ != nullptr, false, next_heartbeat());
  }
  // Whether the loop's tick is to be handled (and then it is armed again), else the loop ends.
  bool loop_goes_on(Process& self, const char* tick, bool on, milliseconds again) {
    if (!on) {
      loops_.erase(tick);
      return false;
    }
    self.runtime().send_after(again, self.pid(), Term(Atom(tick)));
    return true;
  }

  Result<std::shared_ptr<GossipSocket>, std::string> open_gossip(Process& self, const GossipOptions& g) {
    Runtime* rt = &self.runtime();
    const Pid me = self.pid();
    return GossipSocket::open(node_.io_context(), g, std::string(node_.name().text()), [rt, me](const std::string& n) {
      rt->send(me, Term::tuple({Term(Atom("gossip_heard")), Term::binary(n)}));
    });
  }

  // A reload's options (formation::reconfigure). All or nothing: a gossip socket that cannot be
  // opened refuses the whole change. Nodes no strategy lists any more are no longer wanted (and
  // disconnected with disconnect_dropped); those still listed keep their state and backoff.
  Result<bool, std::string> reconfigure(Process& self, Options next) {
    const auto in = [](const Options& o, std::string_view s) {
      return std::find(o.strategies.begin(), o.strategies.end(), s) != o.strategies.end();
    };
    std::shared_ptr<GossipSocket> gossip = gossip_;
    const bool gossip_now = in(next, "gossip");
    if (gossip_now && (!gossip_ || !(next.gossip == opts_.gossip))) {
      if (gossip_) gossip_->close();  // (its port may be the new one's)
      auto g = open_gossip(self, next.gossip);
      if (!g) {
        if (gossip_) {  // the old socket again, as before
          auto old = open_gossip(self, opts_.gossip);
          gossip_ = old ? *old : nullptr;
        }
        return unexpected("cluster.gossip: " + g.error());
      }
      gossip = *g;
    } else if (!gossip_now && gossip_) {
      gossip_->close();
      gossip = nullptr;
    }
    const auto everything = [](const std::string&) { return true; };
    const std::vector<std::string> none;
    opts_.disconnect_dropped = next.disconnect_dropped;  // for the relists below
    relist("static", in(next, "static") ? next.static_nodes : none, everything);
    if (!in(next, "epmd")) relist("epmd", none, everything);
    else
      relist("epmd", none, [&](const std::string& name) {  // nodes of hosts no longer asked
        const std::string host = name.substr(name.find('@') + 1);
        return std::find(next.epmd_hosts.begin(), next.epmd_hosts.end(), host) == next.epmd_hosts.end();
      });
    if (!in(next, "dns") || next.dns_query != opts_.dns_query || next.dns_basename != opts_.dns_basename ||
        next.dns_server != opts_.dns_server)
      relist("dns", none, everything);  // the new query's answer lists them again
    if (!gossip_now) relist("gossip", none, everything);
    opts_ = std::move(next);
    gossip_ = gossip;
    start_loops(self);
    attempt_due(self);
    return true;
  }

  bool uses(std::string_view s) const {
    return std::find(opts_.strategies.begin(), opts_.strategies.end(), s) != opts_.strategies.end();
  }
  Clock::time_point now() const { return clock_->now(); }

  void want(const std::string& name, const std::string& strategy) {
    if (name == node_.name().text() || !net::valid_node_name(name)) return;
    auto atom = Atom::make(name, Atom::Source::Program);
    if (!atom) return;
    targets_[*atom].by.insert(strategy);
  }

  // A heartbeat named `name`. Heartbeats are input from the network (libcluster's have no MAC):
  // a node only gossip wants is forgotten when not heard for three intervals and not connected,
  // at most kMaxGossiped are wanted at once, and names become atoms within the peers' budget.
  static constexpr std::size_t kMaxGossiped = 256;
  void heard(const std::string& name) {
    if (name == node_.name().text() || !net::valid_node_name(name)) return;
    const auto expiry = now() - 3 * opts_.gossip.interval;
    std::size_t gossiped = 0;
    for (auto it = targets_.begin(); it != targets_.end();) {
      const bool only_gossip = it->second.by.size() == 1 && it->second.by.count("gossip");
      if (only_gossip && it->second.state != State::Up && !it->second.pending && it->second.heard < expiry) {
        it = targets_.erase(it);
        continue;
      }
      gossiped += only_gossip;
      ++it;
    }
    auto existing = Atom::existing(name);
    if (!existing && gossiped >= kMaxGossiped) {
      log::limited(log::Level::Warn, node_.name().text(), "gossip_node_ignored", "too many",
                   {{"peer", name}, {"reason", "too many nodes known only from gossip"}});
      return;
    }
    auto atom = existing ? Result<Atom, std::string>(*existing) : Atom::make(name, Atom::Source::Peer);
    if (!atom) return;
    Target& t = targets_[*atom];
    t.by.insert("gossip");
    t.heard = now();
  }

  void event(Process& self, std::string_view what, Atom node, const Target& t) {
    const std::string strategy = t.strategy();
    metrics::counter("hypha_formation_events_total", "Formation events by strategy",
                     {{"node", std::string(node_.name().text())}, {"strategy", strategy}, {"event", std::string(what)}})
        .add();
    const Term msg = Term::tuple({Term(a_formation()), Term(Atom(what)), Term(node), Term(Atom(strategy))});
    for (const auto& [ref, pid] : subscribers_) self.send(pid, msg);
  }

  void set_state(Process& self, Atom node, Target& t, State s) {
    if (t.state == s) return;
    const State before = t.state;
    t.state = s;
    if (s == State::Up) {
      log::event(log::Level::Info, node_.name().text(), "formation_connected", {{"peer", node.text()}, {"strategy", t.strategy()}});
      event(self, "connected", node, t);
    } else if (s == State::Down && before == State::Up) {
      log::event(log::Level::Info, node_.name().text(), "formation_disconnected", {{"peer", node.text()}});
      event(self, "disconnected", node, t);
    } else if (s == State::Failed) {
      log::event(log::Level::Warn, node_.name().text(), "formation_unreachable",
                 {{"peer", node.text()}, {"strategy", t.strategy()}, {"retry", "with backoff up to " + std::to_string(opts_.backoff_max.count()) + " ms"}});
      event(self, "failed", node, t);
    }
  }

  // Connects to every wanted node that is due; arms one timer for the next.
  void attempt_due(Process& self) {
    const auto t_now = now();
    auto next = Clock::time_point::max();
    for (auto& [name, t] : targets_) {
      if (t.state == State::Up || t.pending) continue;
      if (t.due <= t_now) {
        t.pending = true;
        const Pid me = self.pid();
        Runtime* rt = &self.runtime();
        const Atom n = name;
        node_.connect_async(n, [rt, me, n](bool ok) {
          rt->send(me, Term::tuple({Term(Atom("connect_result")), Term(n), Term(ok)}));
        });
      } else {
        next = std::min(next, t.due);
      }
    }
    if (next != Clock::time_point::max() && !tick_armed_) {
      tick_armed_ = true;
      self.runtime().send_after(std::chrono::ceil<milliseconds>(next - t_now), self.pid(), Term(Atom("tick")));
    }
  }

  void connect_result(Process& self, Atom node, bool ok) {
    auto it = targets_.find(node);
    if (it == targets_.end()) return;
    Target& t = it->second;
    t.pending = false;
    if (ok) {
      up(self, node);
      return;
    }
    t.backoff = t.backoff.count() == 0 ? opts_.backoff_min : std::min(opts_.backoff_max, t.backoff * 2);
    t.due = now() + t.backoff;
    set_state(self, node, t, State::Failed);
    attempt_due(self);
  }

  void up(Process& self, Atom node) {
    if (opts_.mesh) ask_peers(self, node);
    auto it = targets_.find(node);
    if (it == targets_.end()) return;
    it->second.backoff = milliseconds(0);
    set_state(self, node, it->second, State::Up);
  }

  void down(Process& self, Atom node) {
    auto it = targets_.find(node);
    if (it == targets_.end()) return;
    Target& t = it->second;
    if (t.by.empty() && t.state == State::Up) {  // a mesh peer: wanted again only if a peer lists it
      set_state(self, node, t, State::Down);
      targets_.erase(it);
      return;
    }
    set_state(self, node, t, State::Down);
    t.due = now() + opts_.backoff_min;
    attempt_due(self);
  }

  // rpc erlang:nodes() on `peer`, through its rex (rpc's call protocol, which BEAM nodes serve).
  void ask_peers(Process& self, Atom peer) {
    const Ref tag = self.make_ref();
    mesh_asks_.insert(tag);
    const Term req = Term::tuple({Term(Atom("call")), Term(Atom("erlang")), Term(Atom("nodes")), Term::list({}),
                                  Term(self.pid())});
    self.send(Atom("rex"), peer, gen::call_message(self.pid(), Term(tag), req));
  }

  // A peer's erlang:nodes(): each node it lists is wanted (by mesh) from now on.
  void mesh_reply(Process& self, const Term& nodes) {
    if (!opts_.mesh || !nodes.is_proper_list()) return;
    bool added = false;
    for (const Term& n : nodes.list_elements()) {
      if (!n.is_atom() || n.atom_value() == node_.name()) continue;
      auto [it, fresh] = targets_.try_emplace(n.atom_value());
      added = added || fresh;
    }
    if (added) attempt_due(self);
  }

  void poll_epmd(Process& self) {
    const std::uint16_t port = net::epmd_port();
    for (const std::string& host : opts_.epmd_hosts) {
      Runtime* rt = &self.runtime();
      const Pid me = self.pid();
      asio::co_spawn(node_.io_context(), net::epmd_names(host, port),
                     [rt, me, host](std::exception_ptr e, Result<std::string, std::string> r) {
                       Term body = (!e && r) ? Term::binary(*r) : Term(Atom("error"));
                       rt->send(me, Term::tuple({Term(Atom("epmd_names")), Term::binary(host), std::move(body)}));
                     });
    }
  }

  void epmd_names(Process& self, const std::string& host, const Term& body) {
    if (!body.is_binary()) return;  // that EPMD cannot be reached now: keep what it listed before
    const std::string suffix = "@" + host;
    relist("epmd", epmd_listed(std::string(body.binary_view()), host), [&](const std::string& name) {
      return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    });
    attempt_due(self);
  }

  // What a polling strategy lists now: every node wanted by it, and those it listed before (of
  // the part it answers for: `covers`) and no longer does are no longer wanted by it; when no
  // other strategy wants them they are forgotten (and disconnected if disconnect_dropped).
  template <class Covers>
  void relist(const std::string& strategy, const std::vector<std::string>& names, Covers covers) {
    std::set<Atom> listed;
    for (const std::string& n : names) {
      want(n, strategy);
      if (auto a = Atom::existing(n)) listed.insert(*a);
    }
    for (auto it = targets_.begin(); it != targets_.end();) {
      if (it->second.by.count(strategy) && !listed.count(it->first) && covers(std::string(it->first.text()))) {
        it->second.by.erase(strategy);
        if (it->second.by.empty()) {
          if (opts_.disconnect_dropped && it->second.state == State::Up) node_.disconnect(it->first);
          it = targets_.erase(it);
          continue;
        }
      }
      ++it;
    }
  }

  // One look-up at a time, with until the next poll (2 s at most) to answer: a server slower than
  // the interval is not asked again before it answered or timed out.
  void poll_dns(Process& self) {
    if (dns_pending_) return;
    dns_pending_ = true;
    Runtime* rt = &self.runtime();
    const Pid me = self.pid();
    asio::co_spawn(node_.io_context(), dns::lookup(node_.io_context(), opts_.dns_query, opts_.dns_server,
                                               std::min<milliseconds>(opts_.dns_interval, std::chrono::seconds(2))),
                   [rt, me](std::exception_ptr e, Result<std::vector<std::string>, std::string> r) {
                     Term body;
                     if (e) {
                       body = Term::tuple({Term(Atom("error")), Term::binary("the look-up failed")});
                     } else if (!r) {
                       body = Term::tuple({Term(Atom("error")), Term::binary(r.error())});
                     } else {
                       std::vector<Term> addrs;
                       for (const auto& a : *r) addrs.push_back(Term::binary(a));
                       body = Term::list(std::move(addrs));
                     }
                     rt->send(me, Term::tuple({Term(Atom("dns_answer")), std::move(body)}));
                   });
  }

  // A failed look-up keeps what was listed before (as an EPMD that cannot be reached); it is
  // logged when the look-ups start failing and when they work again, not at every poll.
  void dns_answer(Process& self, const Term& body) {
    dns_pending_ = false;
    const Term* why = nullptr;
    const bool failed = match(body, tuple("error", bind(why)));
    metrics::counter("hypha_formation_dns_lookups_total", "dns strategy look-ups, by result",
                     {{"node", std::string(node_.name().text())}, {"result", failed ? "failed" : "ok"}})
        .add();
    if (failed) {
      if (!dns_failing_)
        log::event(log::Level::Warn, node_.name().text(), "dns_lookup_failed",
                   {{"query", opts_.dns_query}, {"server", opts_.dns_server.empty() ? "system" : opts_.dns_server},
                    {"reason", why->is_binary() ? why->binary_view() : "?"}, {"retry", "at every poll, logged once"}});
      dns_failing_ = true;
      return;
    }
    if (dns_failing_) log::event(log::Level::Info, node_.name().text(), "dns_lookup_recovered", {{"query", opts_.dns_query}});
    dns_failing_ = false;
    std::vector<std::string> names;
    for (const Term& a : body.is_proper_list() ? body.list_elements() : std::span<const Term>{})
      if (a.is_binary()) {
        const std::string name = opts_.dns_basename + "@" + std::string(a.binary_view());
        if (name != node_.name().text()) names.push_back(name);
      }
    relist("dns", names, [](const std::string&) { return true; });
    attempt_due(self);
  }

  milliseconds next_heartbeat() {
    std::uniform_int_distribution<std::int64_t> d(1, std::max<std::int64_t>(1, opts_.gossip.interval.count()));
    return milliseconds(d(rng_));
  }

  Node& node_;
  Options opts_;
  std::shared_ptr<GossipSocket> gossip_;
  std::shared_ptr<Clock> clock_;  // the runtime's (simulated in deterministic tests)
  std::mt19937_64 rng_{std::random_device{}()};
  std::map<Atom, Target> targets_;
  std::set<Ref> mesh_asks_;  // erlang:nodes() asked and not answered yet
  std::map<Ref, Pid> subscribers_;
  bool tick_armed_ = false;
  bool dns_failing_ = false;  // since the last look-up that worked
  bool dns_pending_ = false;
};

}  // namespace

ChildSpec spec(Node& node, Options opts) {
  return ChildSpec::server(Term(a_formation()), [&node, opts] { return std::make_unique<Formation>(node, opts); },
                           gen_server::StartOptions{.name = a_formation()});
}

Result<bool, std::string> reconfigure(Runtime& rt, Options opts) {
  if (!rt.whereis(a_formation())) return unexpected(std::string("no formation runs on this node"));
  const std::int64_t id = put_reconfiguration(std::move(opts));
  auto r = gen_server::call(rt, ServerRef(a_formation()), Term::tuple({Term(Atom("reconfigure")), Term(id)}),
                            std::chrono::seconds(5));
  if (!r) {
    take_reconfiguration(id);
    return unexpected("formation: " + r.error().to_string());
  }
  if (r->is_atom(Atom("ok"))) return true;
  if (r->is_tuple() && r->tuple_size() == 2 && (*r)[1].is_binary()) return unexpected(std::string((*r)[1].binary_view()));
  return unexpected(r->to_string());
}

void subscribe(Runtime& rt, const Pid& subscriber) {
  gen_server::cast(rt, ServerRef(a_formation()), Term::tuple({Term(Atom("subscribe")), Term(subscriber)}));
}

bool dns_name_ok(std::string_view name) { return dns::query(0, name, dns::kA).ok(); }

Result<bool, std::string> dns_server_ok(std::string_view server) {
  auto s = dns::parse_server(server);
  if (!s) return unexpected(s.error());
  return true;
}

}  // namespace hypha::formation
