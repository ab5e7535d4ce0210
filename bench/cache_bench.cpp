// Cache benchmark, hypha side (bench/cache_bench.escript is the BEAM side: ets, and ets over rpc).
//   serve NAME        a node with the caches `rep` (replicated) and `part` (partitioned, replicas 1)
//   drive NAME PEER   a node with the same caches, connected to PEER; prints:
//     cache_get_local        reads of a replicated key (a local read: no message), one thread
//     cache_get_remote       reads of partitioned keys PEER owns, one caller (a round trip each)
//     cache_get_remote_x8    the same from 8 callers at once
//     cache_put_replicated   writes to the replicated cache, acknowledged once both nodes hold
//                            them, one caller; _x8 from 8 callers at once
//     cache_put_partitioned  writes of partitioned keys PEER owns (replicas 1: a round trip to
//                            the owner), one caller; _x8 from 8 callers at once
#include <atomic>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "hypha/cluster/cache.hpp"
#include "hypha/cluster/cluster.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/otp/gen_server.hpp"

using namespace hypha;
using Steady = std::chrono::steady_clock;

namespace {

const cache::Cache rep(Atom("rep"));
const cache::Cache part(Atom("part"));

std::unique_ptr<Node> start(const std::string& name) {
  NodeOptions o;
  o.name = name;
  o.cookie = "bench";
  cluster::Options c;
  c.pg_scopes = {};
  c.caches.push_back({.name = Atom("rep"), .mode = cache::Mode::Replicated});
  c.caches.push_back({.name = Atom("part"), .mode = cache::Mode::Partitioned, .replicas = 1});
  auto n = start_cluster_node(o, {}, c);
  if (!n) {
    std::cerr << "cache_bench: " << n.error() << "\n";
    std::exit(2);
  }
  return std::move(*n);
}

// `callers` processes each run `per` operations op(self, i); the rate of all of them together.
template <class Op>
double rate(Runtime& rt, int callers, int per, Op op) {
  const auto t0 = Steady::now();
  block_on(rt, [&](Process& self) -> Task<> {
    const Pid me = self.pid();
    for (int c = 0; c < callers; ++c)
      self.runtime().spawn([&, me, c](Process& p) -> Task<> {
        for (int i = 0; i < per; ++i) co_await op(p, c * per + i);
        p.send(me, Term(Atom("done")));
      });
    for (int c = 0; c < callers; ++c) (void)co_await self.receive([](const Term&) { return true; }, std::chrono::minutes(5));
  });
  return callers * per / std::chrono::duration<double>(Steady::now() - t0).count();
}

template <class F>
double best_of_3(F f) {
  double best = 0;
  for (int round = 0; round < 3; ++round) best = std::max(best, f());
  return best;
}

int drive(const std::string& name, const std::string& peer) {
  auto node = start(name);
  Runtime& rt = node->runtime();
  if (!node->connect(Atom(peer), std::chrono::seconds(10)).ok()) {
    std::cerr << "cache_bench: cannot reach " << peer << "\n";
    return 2;
  }
  for (int i = 0; i < 500; ++i) {
    auto a = rep.stats(rt), b = part.stats(rt);
    if (a && b && a->ready && b->ready && a->members == 2 && b->members == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Keys PEER owns in `part`: those this node does not hold once both are ready.
  // (local_size counts what this node holds: a key written and not held here is remote.)
  std::vector<Term> remote;
  {
    std::size_t held = part.local_size(rt);
    for (int k = 0; remote.size() < 1000 && k < 100000; ++k) {
      (void)part.put(rt, Term(100000 + k), Term(k));
      const std::size_t now = part.local_size(rt);
      if (now == held) remote.push_back(Term(100000 + k));
      held = now;
    }
  }
  (void)rep.put(rt, Term::binary("hot"), Term::binary("value"));
  const Term hot = Term::binary("hot");
  auto local = bench::measure([&] {
    for (int i = 0; i < 1000; ++i)
      if (!rep.get(rt, hot)) std::abort();
  });
  bench::print_metric("hypha", "cache_get_local", local.ops_per_s * 1000, "ops/s");
  auto get_remote = [&](Process& p, int i) -> Task<> {
    auto r = co_await part.get(p, remote[static_cast<std::size_t>(i) % remote.size()]);
    if (!r || !*r) std::abort();
  };
  auto put_rep = [&](Process& p, int i) -> Task<> {
    auto r = co_await rep.put(p, Term(i), Term(i));
    if (!r) std::abort();
  };
  auto put_part = [&](Process& p, int i) -> Task<> {
    auto r = co_await part.put(p, remote[static_cast<std::size_t>(i) % remote.size()], Term(i));
    if (!r) std::abort();
  };
  // For comparison: a bare gen_server call to the peer's cache process (no cache work).
  const Atom peer_node(peer);
  auto bare = [&](Process& p, int) -> Task<> {
    auto r = co_await gen_server::call(p, ServerRef(cache::process_name(Atom("part")), peer_node), Term(Atom("owned_size")));
    if (!r) std::abort();
  };
  bench::print_metric("hypha", "bare_gen_server_call_remote", best_of_3([&] { return rate(rt, 1, 20000, bare); }), "ops/s");
  bench::print_metric("hypha", "cache_get_remote", best_of_3([&] { return rate(rt, 1, 20000, get_remote); }), "ops/s");
  bench::print_metric("hypha", "cache_get_remote_x8", best_of_3([&] { return rate(rt, 8, 10000, get_remote); }), "ops/s");
  bench::print_metric("hypha", "cache_put_replicated", best_of_3([&] { return rate(rt, 1, 20000, put_rep); }), "ops/s");
  bench::print_metric("hypha", "cache_put_replicated_x8", best_of_3([&] { return rate(rt, 8, 10000, put_rep); }), "ops/s");
  bench::print_metric("hypha", "cache_put_partitioned", best_of_3([&] { return rate(rt, 1, 20000, put_part); }), "ops/s");
  bench::print_metric("hypha", "cache_put_partitioned_x8", best_of_3([&] { return rate(rt, 8, 10000, put_part); }), "ops/s");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "serve") {
    bench::StopSignals signals;
    auto node = start(args[1]);
    signals.serve_until_signalled();
    return 0;
  }
  if (args.size() == 3 && args[0] == "drive") return drive(args[1], args[2]);
  std::cerr << "usage: cache_bench serve NAME | drive NAME PEER\n";
  return 2;
}
