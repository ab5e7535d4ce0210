// The cluster cache between hypha nodes on the deterministic harness: every operation, the
// replicated and partitioned modes, read-your-writes, active expiry, LRU, a node joining while
// writes go on, a node dying (every acknowledged write still readable), a partition healing.
// Every invariant is checked by counting keys, not by eye.
#include "hypha/cluster/cache.hpp"

#include <gtest/gtest.h>

#include <set>

#include "hypha/cluster/cluster.hpp"
#include "hypha/otp/blocking.hpp"
#include "log_capture.hpp"
#include "sim_cluster.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;

const Atom kCache("c");

class ClusterCache : public ::testing::Test {
 protected:
  testing::SimCluster c;
  std::vector<std::string> names;
  cache::Cache cache{kCache};

  Node& start(const std::string& n, cache::Options o = {}) {
    o.name = kCache;
    cluster::Options co;
    co.caches.push_back(o);
    names.push_back(n);
    return c.start(n, {}, co);
  }
  void mesh() {
    for (std::size_t i = 0; i < names.size(); ++i)
      for (std::size_t j = i + 1; j < names.size(); ++j)
        if (c.nodes.count(names[i]) && c.nodes.count(names[j])) {
          ASSERT_TRUE(c.connect(names[i], names[j]));
        }
    ASSERT_TRUE(c.settle());
  }
  bool ready(const std::string& n) {
    auto s = cache.stats(c.rt(n));
    return s && s->ready && s->members == live_nodes();
  }
  std::size_t live_nodes() const { return c.nodes.size(); }
  bool all_ready() {
    return c.net->run_until([&] {
      for (const auto& [n, node] : c.nodes)
        if (!ready(n)) return false;
      return true;
    }, 5s);
  }
  std::optional<Term> get(const std::string& on, const Term& k) {
    auto r = cache.get(c.rt(on), k);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? *r : std::nullopt;
  }
  // Keys 0..n-1 whose value `on` reads is k * mul.
  std::size_t readable(const std::string& on, int n, int mul = 1) {
    std::size_t ok = 0;
    for (int k = 0; k < n; ++k)
      if (get(on, Term(k)) == Term(k * mul)) ++ok;
    return ok;
  }
  std::size_t local_sum() {
    std::size_t n = 0;
    for (const auto& [name, node] : c.nodes) n += cache.local_size(c.rt(name));
    return n;
  }
};

TEST_F(ClusterCache, EveryOperationWorksFromAnyMemberAndWritesAreReadOnTheNodeThatMadeThem) {
  start("a"), start("b"), start("c");
  mesh();
  ASSERT_TRUE(all_ready());
  const Term k = Term::binary("k");
  ASSERT_TRUE(cache.put(c.rt("a"), k, Term(1)).ok());
  EXPECT_EQ(get("a", k), Term(1));  // read your write: at once, locally
  ASSERT_TRUE(c.net->run_until([&] { return get("b", k) == Term(1) && get("c", k) == Term(1); }, 1s));
  EXPECT_EQ(*cache.put_new(c.rt("b"), k, Term(2)), false);
  EXPECT_EQ(*cache.put_new(c.rt("b"), Term::binary("n"), Term(2)), true);
  EXPECT_EQ(get("b", Term::binary("n")), Term(2));
  EXPECT_EQ(*cache.replace(c.rt("c"), k, Term(3)), true);
  EXPECT_EQ(get("c", k), Term(3));
  EXPECT_EQ(*cache.replace(c.rt("c"), Term::binary("absent"), Term(3)), false);
  EXPECT_EQ(*cache.has_key(c.rt("a"), k), true);
  EXPECT_EQ(*cache.has_key(c.rt("a"), Term::binary("absent")), false);
  EXPECT_EQ(*cache.ttl(c.rt("a"), k), std::optional<cache::Ttl>(cache::Ttl{}));  // never expires
  EXPECT_EQ(*cache.ttl(c.rt("a"), Term::binary("absent")), std::nullopt);
  EXPECT_EQ(*cache.expire(c.rt("b"), k, 10s), true);
  auto ttl = cache.ttl(c.rt("b"), k);
  ASSERT_TRUE(ttl.ok() && *ttl && **ttl);
  EXPECT_LE(***ttl, 10s);
  EXPECT_GT(***ttl, 9s);
  auto taken = cache.take(c.rt("a"), k);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, std::optional<Term>(Term(3)));
  EXPECT_EQ(*cache.take(c.rt("a"), k), std::nullopt);
  EXPECT_EQ(get("a", k), std::nullopt);
  ASSERT_TRUE(cache.put(c.rt("a"), k, Term(5)).ok());
  ASSERT_TRUE(cache.del(c.rt("c"), k).ok());
  EXPECT_EQ(get("c", k), std::nullopt);
  ASSERT_TRUE(c.net->run_until([&] { return !get("a", k) && !get("b", k); }, 1s));
  // Counters: the owner orders every incr, from whichever node.
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(cache.incr(c.rt(names[i % 3]), Term::binary("ctr"), 2).ok());
  EXPECT_EQ(*cache.incr(c.rt("b"), Term::binary("ctr"), 0), 60);
  ASSERT_TRUE(cache.put(c.rt("a"), Term::binary("s"), Term::binary("text")).ok());
  EXPECT_EQ(cache.incr(c.rt("b"), Term::binary("s"), 1).error(), Term("not_an_integer"_atom));
  ASSERT_TRUE(cache.del(c.rt("a"), Term::binary("s")).ok());
  // Bulk.
  std::vector<std::pair<Term, Term>> many;
  for (int i = 0; i < 20; ++i) many.emplace_back(Term(i), Term(i * i));
  ASSERT_TRUE(cache.put_all(c.rt("c"), many).ok());
  auto all = cache.get_all(c.rt("a"), {Term(1), Term(2), Term(99)});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  EXPECT_EQ(all->at(Term(2)), Term(4));
  ASSERT_TRUE(c.net->run_until([&] { return cache.size(c.rt("b")).value_or(0) == 22; }, 1s));  // n, ctr, 20
  // Stats: hits and misses of the reads made on a node, writes made there.
  auto st = cache.stats(c.rt("a"));
  ASSERT_TRUE(st);
  EXPECT_GT(st->hits, 0u);
  EXPECT_GT(st->misses, 0u);
  EXPECT_GT(st->writes, 0u);
  EXPECT_EQ(st->members, 3u);
  EXPECT_EQ(st->local_size, 22u);
  // A cache this node does not run.
  EXPECT_EQ(cache::Cache(Atom("nope")).get(c.rt("a"), k).error(),
            Term::tuple({"no_such_cache"_atom, "nope"_atom}));
}

TEST_F(ClusterCache, TtlsExpireOnEveryReplicaWithoutReads) {
  start("a"), start("b"), start("c");
  mesh();
  ASSERT_TRUE(all_ready());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(cache.put(c.rt("a"), Term(i), Term(i), i < 30 ? cache::Ttl(500ms) : cache::Ttl{}).ok());
  ASSERT_TRUE(c.net->run_until([&] { return local_sum() == 150; }, 1s));
  ASSERT_TRUE(c.net->advance(700ms));
  EXPECT_EQ(local_sum(), 60u);  // 20 each: swept, no reads made
  for (const auto& n : names) EXPECT_EQ(cache.stats(c.rt(n))->expirations, 30u) << n;
  EXPECT_EQ(get("b", Term(3)), std::nullopt);
  EXPECT_EQ(get("b", Term(33)), Term(33));
}

TEST_F(ClusterCache, AboveMaxEntriesEachNodeEvictsItsLeastRecentlyUsedAndKeepsTheRest) {
  start("a", {.max_entries = 10}), start("b", {.max_entries = 10});
  mesh();
  ASSERT_TRUE(all_ready());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(cache.put(c.rt("a"), Term(i), Term(i)).ok());
  ASSERT_TRUE(c.net->run_until([&] { return local_sum() == 20; }, 1s));
  EXPECT_EQ(get("a", Term(0)), Term(0));  // used on a: a evicts 1 next, b evicts 0
  ASSERT_TRUE(cache.put(c.rt("a"), Term(10), Term(10)).ok());
  ASSERT_TRUE(c.net->run_until([&] { return cache.stats(c.rt("b"))->evictions == 1; }, 1s));
  EXPECT_EQ(cache.local_size(c.rt("a")), 10u);
  EXPECT_EQ(get("a", Term(1)), std::nullopt);
  EXPECT_EQ(get("a", Term(0)), Term(0));
  EXPECT_EQ(get("b", Term(0)), std::nullopt);
  // Several anti-entropy rounds later nothing evicted has come back (the ghosts match).
  ASSERT_TRUE(c.net->advance(5s));
  EXPECT_EQ(cache.local_size(c.rt("a")), 10u);
  EXPECT_EQ(cache.local_size(c.rt("b")), 10u);
  EXPECT_EQ(cache.stats(c.rt("a"))->evictions, 1u);
}

TEST_F(ClusterCache, PartitionedKeysLiveOnTwoNodesAndEveryAcknowledgedWriteSurvivesOneDeath) {
  const cache::Options o{.mode = cache::Mode::Partitioned, .replicas = 2};
  start("a", o), start("b", o), start("c", o), start("d", o);
  mesh();
  ASSERT_TRUE(all_ready());
  const int n = 400;
  for (int k = 0; k < n; ++k) ASSERT_TRUE(cache.put(c.rt(names[k % 4]), Term(k), Term(k)).ok()) << k;
  ASSERT_TRUE(c.net->run_until([&] { return local_sum() == 2 * n; }, 2s));
  for (const auto& name : names) {
    const std::size_t here = cache.local_size(c.rt(name));
    EXPECT_GT(here, n / 4u) << name;  // about 2n/4 each
    EXPECT_LT(here, n) << name;
    EXPECT_EQ(readable(name, n), static_cast<std::size_t>(n)) << name;
  }
  EXPECT_EQ(*cache.size(c.rt("a")), static_cast<std::size_t>(n));
  // The node dies (no handover): every key is still there, from every survivor.
  c.stop("c");
  for (const std::string s : {"a", "b", "d"}) EXPECT_EQ(readable(s, n), static_cast<std::size_t>(n)) << s;
  // And the survivors make two copies of every key again.
  ASSERT_TRUE(c.net->run_until([&] { return local_sum() == 2 * n; }, 5s));
  EXPECT_EQ(*cache.size(c.rt("d")), static_cast<std::size_t>(n));
}

TEST_F(ClusterCache, ANodeThatLeavesCleanlyHandsItsKeysOverFirstEvenWithOneCopyEach) {
  const cache::Options o{.mode = cache::Mode::Partitioned, .replicas = 1};
  start("a", o), start("b", o), start("c", o);
  mesh();
  ASSERT_TRUE(all_ready());
  const int n = 300;
  for (int k = 0; k < n; ++k) ASSERT_TRUE(cache.put(c.rt("a"), Term(k), Term(k)).ok());
  ASSERT_TRUE(c.net->run_until([&] { return local_sum() == n; }, 2s));
  ASSERT_GT(cache.local_size(c.rt("b")), 0u);
  cluster::stop(c["b"]);  // what hypha node does on SIGTERM
  c.stop("b");
  for (const std::string s : {"a", "c"}) EXPECT_EQ(readable(s, n), static_cast<std::size_t>(n)) << s;
  EXPECT_EQ(local_sum(), static_cast<std::size_t>(n));
}

TEST_F(ClusterCache, AJoiningNodeGetsItsShareWhileWritesGoOnAndAboutAQuarterOfTheKeysMove) {
  const cache::Options o{.mode = cache::Mode::Partitioned, .replicas = 1};
  start("a", o), start("b", o), start("c", o);
  mesh();
  ASSERT_TRUE(all_ready());
  const int n = 800;
  for (int k = 0; k < n; ++k) ASSERT_TRUE(cache.put(c.rt("a"), Term(k), Term(k)).ok());
  ASSERT_TRUE(c.net->run_until([&] { return local_sum() == n; }, 2s));
  std::map<std::string, std::size_t> before;
  for (const auto& name : names) before[name] = cache.local_size(c.rt(name));
  start("d", o);
  ASSERT_TRUE(c.connect("d", "a"));
  ASSERT_TRUE(c.connect("d", "b"));
  ASSERT_TRUE(c.connect("d", "c"));
  // Writes while d joins: none waits for it, none is lost.
  for (int k = 0; k < n; ++k) ASSERT_TRUE(cache.put(c.rt(names[k % 3]), Term(k), Term(k * 2)).ok());
  ASSERT_TRUE(all_ready());
  ASSERT_TRUE(c.net->run_until([&] { return local_sum() == n; }, 5s));  // the old holders forgot what moved
  const std::size_t on_d = cache.local_size(c.rt("d"));
  EXPECT_GT(on_d, n / 8u);
  EXPECT_LT(on_d, n / 2u);
  // Only keys that went to d moved: each old node lost some and gained none.
  for (const std::string s : {"a", "b", "c"}) EXPECT_LE(cache.local_size(c.rt(s)), before[s]) << s;
  for (const auto& name : names) EXPECT_EQ(readable(name, n, 2), static_cast<std::size_t>(n)) << name;
}

TEST_F(ClusterCache, ReplicasThatDivergedInAPartitionConvergeByLastWriterAfterTheHeal) {
  start("a"), start("b"), start("c");
  mesh();
  ASSERT_TRUE(all_ready());
  for (int k = 0; k < 100; ++k) ASSERT_TRUE(cache.put(c.rt("a"), Term(k), Term(k)).ok());
  ASSERT_TRUE(c.net->run_until([&] { return local_sum() == 300; }, 1s));
  c.net->isolate(c.name("c"));
  ASSERT_TRUE(c.net->advance(8s));  // the sides see each other go
  // Both sides write on: a side alone still takes writes.
  for (int k = 0; k < 50; ++k) ASSERT_TRUE(cache.put(c.rt("c"), Term(k), Term(-k)).ok());
  ASSERT_TRUE(c.net->advance(10ms));
  for (int k = 25; k < 75; ++k) ASSERT_TRUE(cache.put(c.rt("a"), Term(k), Term(k * 10)).ok());
  ASSERT_TRUE(cache.del(c.rt("c"), Term(99)).ok());
  ASSERT_TRUE(cache.put(c.rt("c"), Term(500), Term(5)).ok());
  c.net->heal_all();
  ASSERT_TRUE(c.connect("c", "a"));
  ASSERT_TRUE(c.connect("c", "b"));
  auto want = [](int k) -> std::optional<Term> {
    if (k == 99) return std::nullopt;
    if (k == 500) return Term(5);
    if (k < 25) return Term(-k);
    if (k < 75) return Term(k * 10);  // a wrote after c
    return Term(k);
  };
  auto converged = [&] {
    for (const auto& n : names)
      for (int k : {0, 24, 25, 49, 50, 74, 75, 98, 99, 500})
        if (get(n, Term(k)) != want(k)) return false;
    return true;
  };
  ASSERT_TRUE(c.net->run_until(converged, 5s));
  for (const auto& n : names) {
    std::size_t right = 0;
    for (int k = 0; k < 100; ++k) right += get(n, Term(k)) == want(k);
    EXPECT_EQ(right, 100u) << n;
    EXPECT_EQ(cache.local_size(c.rt(n)), 100u) << n;  // 99 deleted, 500 added
  }
}

TEST_F(ClusterCache, AMalformedMessageFromAPeerIsLoggedAndDropped) {
  start("a"), start("b");
  mesh();
  ASSERT_TRUE(all_ready());
  testing::LogCapture logs;
  // From a process of a member node that is not its cache process; then from the cache process
  // itself, with a body that does not parse.
  block_on(c.rt("b"), [&](Process& self) -> Task<> {
    self.send(cache::process_name(kCache), c.name("a"), Term::tuple({"ae_push"_atom, Term(self.pid()), Term::list({})}));
    co_return;
  });
  ASSERT_TRUE(logs.wait_for({"cache_message_dropped", "not_a_member"}, 2s));
  const Pid member = *c.rt("b").whereis(cache::process_name(kCache));
  block_on(c.rt("b"), [&](Process& self) -> Task<> {
    self.send(cache::process_name(kCache), c.name("a"), Term::tuple({"replicate"_atom, Term(member), Term(1), "not_a_list"_atom}));
    self.send(cache::process_name(kCache), c.name("a"), Term::tuple({"what"_atom}));
    co_return;
  });
  ASSERT_TRUE(logs.wait_for({"cache_message_dropped", "malformed_entries"}, 2s));
  // A version an hour ahead of every clock: refused (it would win every later write of its key).
  const auto wall = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(c.rt("a").clock()->now().time_since_epoch()).count());
  const Term future = Term::tuple({Term(7), "live"_atom, "stuck"_atom, Term(wall + 3'600'000), Term(0), Term(c.name("b")), Term(0)});
  block_on(c.rt("b"), [&](Process& self) -> Task<> {
    self.send(cache::process_name(kCache), c.name("a"), Term::tuple({"ae_push"_atom, Term(member), Term::list({future})}));
    co_return;
  });
  ASSERT_TRUE(logs.wait_for({"cache_message_dropped", "version_in_the_future"}, 2s));
  EXPECT_EQ(get("a", Term(7)), std::nullopt);
  ASSERT_TRUE(logs.wait_for({"cache_message_dropped", "unexpected_message"}, 2s));
  ASSERT_TRUE(logs.wait_for({"cache_message_dropped"}, 2s));
  ASSERT_TRUE(cache.put(c.rt("b"), Term(1), Term(1)).ok());
  EXPECT_EQ(get("a", Term(1)), Term(1));
}

}  // namespace
}  // namespace hypha
