// Cluster benchmark, hypha side: process groups and pub/sub across nodes; the same roles as
// bench/cluster_bench.exs (the BEAM side: OTP's pg, and Phoenix.PubSub's PG2 adapter with a
// duplicate Registry for local subscribers, as Phoenix runs it).
//   serve NAME                       a node with the pg scope `pg`, the pubsub 'Elixir.Bench.PubSub'
//                                    and the control process bench_ctl
//   pg NODE LABEL                    10,000 joins here until all are visible on NODE; join/leave churn
//   pubsub NODE1 NODE2 LABEL         one broadcast to 100,000 and 1,000,000 subscribers over this node
//                                    and the two others; broadcasts/s to 1,000 subscribers on the two
//   registry LABEL NODE...           10,000 names registered here (one process each) until every NODE
//                                    has them all, and registrations/s here; the cluster registry
//                                    (hypha_registry, sync interval 50 ms); BEAM: OTP's global
//   form NAME STRATEGY NODE...       a node forming a cluster with the strategy (static: the NODEs,
//                                    epmd: 127.0.0.1, polled every 500 ms; gossip: format hypha,
//                                    port 45892, heartbeats up to 5 s apart); prints `up MS` once it
//                                    runs and `mesh MS` once it is connected to every NODE (wall
//                                    clock, ms), then runs until killed
// bench_ctl takes {subscribe, From, Topic, N, Every}: N subscribers of Topic, which count what they
// receive together and send {done, Node} to From each time the count reaches a multiple of Every
// ({subscribed, Node} once all N are subscribed); and {pg_watch, From, Group, Target}: a process
// that monitors Group in `pg` and sends {seen, Node} once it has Target members ({watching, Node}
// once it watches); and {reg_watch, From, Name}: a process that sends {seen, Node} once the
// registry here has Name, the last of a round ({watching, Node} at once; names go out in order).
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "hypha/cluster/cluster.hpp"
#include "hypha/cluster/pg.hpp"
#include "hypha/cluster/registry.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/process/mailbox.hpp"
#include "hypha/term/match.hpp"

using namespace hypha;
using namespace hypha::pattern;
using Steady = std::chrono::steady_clock;

namespace {

const Atom kPubSub("Elixir.Bench.PubSub");
const Atom kScope("pg");

std::unique_ptr<Node> start(const std::string& name, cluster::Options c = {}) {
  NodeOptions o;
  o.name = name;
  o.cookie = "bench";
  c.pubsubs.push_back({.name = kPubSub});
  if (!c.registry) c.registry = registry::Options{};
  auto n = start_cluster_node(o, {}, c);
  if (!n) {
    std::cerr << "cluster_bench: " << n.error() << "\n";
    std::exit(2);
  }
  return std::move(*n);
}

struct Count {
  std::atomic<long> n{0};
  long every = 1;
  Pid report;
};

void subscribers(Runtime& rt, const std::string& topic, long n, long every, const Pid& report) {
  auto count = std::make_shared<Count>();
  count->every = every;
  count->report = report;
  for (long i = 0; i < n; ++i) {
    const Pid p = rt.spawn([count](Process& self) -> Task<> {
      for (;;) {
        co_await self.receive();
        if ((count->n.fetch_add(1, std::memory_order_relaxed) + 1) % count->every == 0)
          self.send(count->report, Term::tuple({Term(Atom("done")), Term(self.runtime().node())}));
      }
    });
    if (!pubsub::subscribe(rt, kPubSub, topic, p)) std::exit(3);
  }
  rt.send(report, Term::tuple({Term(Atom("subscribed")), Term(rt.node())}));
}

Task<> watch(Process& self, Term group, long target, Pid report) {
  auto m = co_await pg::monitor(self, kScope, group);
  if (!m) throw Exit(m.error());
  const Ref ref = m->first;
  long have = static_cast<long>(m->second.size());
  self.send(report, Term::tuple({Term(Atom("watching")), Term(self.runtime().node())}));
  while (have < target) {
    const Term msg = co_await self.receive();
    Ref r;
    Atom what;
    const Term* pids = nullptr;
    if (!match(msg, tuple(bind(r), bind(what), any, bind(pids))) || r != ref || !pids->is_proper_list()) continue;
    const long k = static_cast<long>(pids->list_elements().size());
    have += what == Atom("join") ? k : -k;
  }
  self.send(report, Term::tuple({Term(Atom("seen")), Term(self.runtime().node())}));
}

void start_ctl(Runtime& rt) {
  const Pid ctl = rt.spawn([](Process& self) -> Task<> {
    for (;;) {
      const Term msg = co_await self.receive();
      Pid from;
      const Term* topic = nullptr;
      const Term* group = nullptr;
      long n = 0, every = 0, target = 0;
      if (match(msg, tuple("subscribe", bind(from), bind(topic), bind(n), bind(every))) && topic->is_binary()) {
        subscribers(self.runtime(), std::string(topic->binary_view()), n, every, from);
      } else if (match(msg, tuple("reg_watch", bind(from), bind(group)))) {
        const Term last = *group;
        self.spawn([last, from](Process& w) -> Task<> {
          w.send(from, Term::tuple({Term(Atom("watching")), Term(w.runtime().node())}));
          while (!registry::whereis(w.runtime(), last)) co_await w.sleep(std::chrono::milliseconds(1));
          w.send(from, Term::tuple({Term(Atom("seen")), Term(w.runtime().node())}));
        });
      } else if (match(msg, tuple("pg_watch", bind(from), bind(group), bind(target)))) {
        const Term g = *group;
        self.spawn([g, target, from](Process& w) -> Task<> { co_await watch(w, g, target, from); });
      }
    }
  });
  rt.register_name(Atom("bench_ctl"), ctl);
}

// Waits for one {Tag, _} per node (a benchmark that hangs is stopped).
void await_all(Mailbox& mb, const char* tag, std::size_t nodes) {
  const Atom t(tag);
  for (std::size_t i = 0; i < nodes; ++i)
    if (!mb.receive([&](const Term& m) { return m.is_tuple() && m.tuple_size() == 2 && m[0] == Term(t); },
                    std::chrono::minutes(2))) {
      std::cerr << "cluster_bench: no " << tag << " within 2 minutes\n";
      std::exit(4);
    }
}

double ms_since(Steady::time_point t0) { return std::chrono::duration<double, std::milli>(Steady::now() - t0).count(); }

int run_pg(const std::string& node, const std::string& label) {
  auto me = start("bench_pg_" + std::to_string(::getpid()) + "@127.0.0.1");
  Runtime& rt = me->runtime();
  const Atom to(node);
  if (!me->ping(to)) return 1;
  Mailbox mb = rt.mailbox();
  const long n = 10000;
  std::vector<Pid> members;
  for (long i = 0; i < n; ++i)
    members.push_back(rt.spawn([](Process& self) -> Task<> { co_await self.receive(); }));
  for (int round = 0; round < 3; ++round) {
    const Term group = Term::tuple({Term(Atom("joins")), Term(static_cast<long>(round))});
    rt.send(Atom("bench_ctl"), to, Term::tuple({Term(Atom("pg_watch")), Term(mb.pid()), group, Term(n)}));
    await_all(mb, "watching", 1);
    const auto t0 = Steady::now();
    block_on(rt, [&](Process& self) -> Task<> {  // from a process, as the BEAM side joins
      for (const Pid& p : members) {
        const std::vector<Pid> one{p};
        if (!co_await pg::join(self, kScope, group, one)) std::exit(3);
      }
    });
    const double local = ms_since(t0);
    await_all(mb, "seen", 1);
    bench::print_metric(label, "pg_10k_joins_visible", ms_since(t0), "ms");
    bench::print_metric(label, "pg_10k_joins_local", local, "ms");
  }
  // Churn: one pid joins and leaves, again and again; the time counts until the peer has seen all.
  const long pairs = 20000;
  for (int round = 0; round < 2; ++round) {
    const Term group = Term::tuple({Term(Atom("churn")), Term(static_cast<long>(round))});
    const Term marker = Term::tuple({Term(Atom("churn_done")), Term(static_cast<long>(round))});
    rt.send(Atom("bench_ctl"), to, Term::tuple({Term(Atom("pg_watch")), Term(mb.pid()), marker, Term(1L)}));
    await_all(mb, "watching", 1);
    const auto t0 = Steady::now();
    const Pid m = members[0];
    block_on(rt, [&](Process& self) -> Task<> {
      const std::vector<Pid> one{m};
      for (long i = 0; i < pairs; ++i) {
        if (!co_await pg::join(self, kScope, group, one)) std::exit(3);
        if (!co_await pg::leave(self, kScope, group, one)) std::exit(3);
      }
      if (!co_await pg::join(self, kScope, marker, one)) std::exit(3);
    });
    await_all(mb, "seen", 1);
    bench::print_metric(label, "pg_churn_per_s", 2.0 * static_cast<double>(pairs) / (ms_since(t0) / 1000), "ops/s");
  }
  return 0;
}

int run_pubsub(const std::string& b, const std::string& c, const std::string& label) {
  auto me = start("bench_ps_" + std::to_string(::getpid()) + "@127.0.0.1");
  Runtime& rt = me->runtime();
  start_ctl(rt);
  const std::vector<Atom> nodes{rt.node(), Atom(b), Atom(c)};
  for (std::size_t i = 1; i < nodes.size(); ++i)
    if (!me->ping(nodes[i])) return 1;
  // Until the other nodes' adapters are in the group (pg's discover and sync have run).
  while (pg::get_members(rt, pubsub::scope(), Term(pubsub::adapter_name(kPubSub))).size() < nodes.size())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Mailbox mb = rt.mailbox();
  auto subscribe = [&](const std::vector<Atom>& where, const char* topic, long n, long every) {
    for (Atom nd : where)
      rt.send(Atom("bench_ctl"), nd,
              Term::tuple({Term(Atom("subscribe")), Term(mb.pid()), Term::binary(topic), Term(n), Term(every)}));
    await_all(mb, "subscribed", where.size());
  };
  for (const long total : {100000L, 1000000L}) {
    const char* topic = total == 100000 ? "fanout_100k" : "fanout_1m";
    const long per_node = total / 3;
    subscribe(nodes, topic, per_node, per_node);
    for (long round = 0; round < 3; ++round) {
      const auto t0 = Steady::now();
      if (!pubsub::broadcast(rt, kPubSub, topic, Term::tuple({Term(Atom("tick")), Term(round)}))) return 3;
      await_all(mb, "done", nodes.size());
      bench::print_metric(label, std::string("pubsub_fanout_") + (total == 100000 ? "100k" : "1m"), ms_since(t0), "ms");
    }
  }
  // Broadcasts per second to 1,000 subscribers on the two other nodes.
  const long msgs = 20000;
  const std::vector<Atom> others(nodes.begin() + 1, nodes.end());
  subscribe(others, "rate", 500, 500 * msgs);
  for (long round = 0; round < 2; ++round) {
    const auto t0 = Steady::now();
    for (long i = 0; i < msgs; ++i)
      if (!pubsub::broadcast(rt, kPubSub, "rate", Term::tuple({Term(Atom("tick")), Term(i)}))) return 3;
    await_all(mb, "done", others.size());
    bench::print_metric(label, "pubsub_broadcasts_per_s_1k", static_cast<double>(msgs) / (ms_since(t0) / 1000), "msgs/s");
  }
  return 0;
}

int run_registry(const std::string& label, const std::vector<std::string>& others) {
  auto me = start("bench_reg_" + std::to_string(::getpid()) + "@127.0.0.1");
  Runtime& rt = me->runtime();
  for (const auto& o : others)
    if (!me->ping(Atom(o))) return 1;
  // Until every other node's registry is a member here (hello and snapshots done).
  while (registry::stats(rt).members < others.size()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Mailbox mb = rt.mailbox();
  const long n = 10000;
  for (int round = 0; round < 2; ++round) {
    std::vector<Pid> holders;
    for (long i = 0; i < n; ++i) holders.push_back(rt.spawn([](Process& self) -> Task<> { co_await self.receive(); }));
    const Term last = Term::tuple({Term(Atom("bench")), Term(static_cast<long>(round)), Term(n - 1)});
    for (const auto& o : others)
      rt.send(Atom("bench_ctl"), Atom(o), Term::tuple({Term(Atom("reg_watch")), Term(mb.pid()), last}));
    await_all(mb, "watching", others.size());
    const auto t0 = Steady::now();
    block_on(rt, [&](Process& self) -> Task<> {  // from a process, as the BEAM side registers
      for (long i = 0; i < n; ++i) {
        const Term name = Term::tuple({Term(Atom("bench")), Term(static_cast<long>(round)), Term(i)});
        if (!co_await registry::register_name(self, name, holders[static_cast<std::size_t>(i)])) std::exit(3);
      }
    });
    const double local = ms_since(t0);
    await_all(mb, "seen", others.size());
    bench::print_metric(label, "registry_10k_visible_on_4", ms_since(t0), "ms");
    bench::print_metric(label, "registry_registrations_per_s", static_cast<double>(n) / (local / 1000), "ops/s");
  }
  return 0;
}

long wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int run_form(const std::string& name, const std::string& strategy, const std::vector<std::string>& all) {
  cluster::Options c;
  c.formation.strategies = {strategy};
  c.formation.static_nodes = all;
  c.formation.epmd_interval = std::chrono::milliseconds(500);
  c.formation.gossip.secret = "bench";
  auto me = start(name, c);
  std::cout << "up " << wall_ms() << std::endl;
  std::size_t want = 0;
  for (const auto& n : all) want += n != name;
  while (me->nodes().size() < want) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::cout << "mesh " << wall_ms() << std::endl;
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 2 && a[0] == "serve") {
    bench::StopSignals stop;
    auto node = start(a[1]);
    start_ctl(node->runtime());
    stop.serve_until_signalled();
    return 0;
  }
  if (a.size() == 3 && a[0] == "pg") return run_pg(a[1], a[2]);
  if (a.size() == 4 && a[0] == "pubsub") return run_pubsub(a[1], a[2], a[3]);
  if (a.size() >= 3 && a[0] == "registry") return run_registry(a[1], std::vector<std::string>(a.begin() + 2, a.end()));
  if (a.size() >= 4 && a[0] == "form") return run_form(a[1], a[2], std::vector<std::string>(a.begin() + 3, a.end()));
  std::cerr << "usage: cluster_bench serve NAME | pg NODE LABEL | pubsub NODE1 NODE2 LABEL | registry LABEL NODE... | form NAME STRATEGY NODE...\n";
  return 2;
}
