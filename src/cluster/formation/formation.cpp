// hypha_formation: wanted nodes from the strategies, connections with a capped backoff, mesh.
#include "hypha/cluster/formation.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include <algorithm>
#include <map>
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

class Formation final : public GenServer {
 public:
  Formation(Node& node, Options opts) : node_(node), opts_(std::move(opts)) {}

  Task<> init(Process& self) override {
    clock_ = self.runtime().clock();
    node_.monitor_nodes(self.pid());
    if (uses("static"))
      for (const auto& n : opts_.static_nodes) want(n, "static");
    if (uses("epmd")) self.send(self.pid(), Term(Atom("epmd_poll")));
    if (uses("dns")) self.send(self.pid(), Term(Atom("dns_poll")));
    if (uses("gossip")) {
      Runtime* rt = &self.runtime();
      const Pid me = self.pid();
      auto g = GossipSocket::open(node_.io_context(), opts_.gossip, std::string(node_.name().text()),
                                  [rt, me](const std::string& n) {
                                    rt->send(me, Term::tuple({Term(Atom("gossip_heard")), Term::binary(n)}));
                                  });
      if (!g) throw Exit(Term::tuple({Term(Atom("gossip")), Term::binary(g.error())}));
      gossip_ = *g;
      gossip_->send_heartbeat();  // at start, then at random times up to the interval
      self.runtime().send_after(next_heartbeat(), self.pid(), Term(Atom("gossip_send")));
    }
    if (opts_.mesh) self.runtime().send_after(opts_.mesh_interval, self.pid(), Term(Atom("mesh_poll")));
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
      mesh_asks_.clear();  // a peer that did not answer the last round is asked again, not remembered
      for (Atom n : node_.nodes(true)) ask_peers(self, n);
      self.runtime().send_after(opts_.mesh_interval, self.pid(), Term(Atom("mesh_poll")));
    } else if (match(msg, tuple("gossip_heard", bind(host)))) {
      heard(host);
      attempt_due(self);
    } else if (match(msg, "gossip_send")) {
      if (gossip_) gossip_->send_heartbeat();
      self.runtime().send_after(next_heartbeat(), self.pid(), Term(Atom("gossip_send")));
    } else if (match(msg, "epmd_poll")) {
      poll_epmd(self);
      self.runtime().send_after(opts_.epmd_interval, self.pid(), Term(Atom("epmd_poll")));
    } else if (match(msg, tuple("epmd_names", bind(host), bind(body)))) {
      epmd_names(self, host, *body);
    } else if (match(msg, "dns_poll")) {
      poll_dns(self);
      self.runtime().send_after(opts_.dns_interval, self.pid(), Term(Atom("dns_poll")));
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
