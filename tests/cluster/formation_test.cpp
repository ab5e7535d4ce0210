// Formation on the deterministic harness: static lists, a mesh from a chain of lists,
// reconnection with a capped backoff after a restart or a partition, events once per change.
#include "hypha/cluster/formation.hpp"

#include <gtest/gtest.h>

#include "log_capture.hpp"
#include "sim_cluster.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;
using testing::T;

cluster::Options static_list(std::vector<std::string> nodes, bool mesh = true) {
  cluster::Options o;
  o.formation.strategies = {"static"};
  o.formation.static_nodes = std::move(nodes);
  o.formation.mesh = mesh;
  return o;
}

class Formation : public ::testing::Test {
 protected:
  testing::SimCluster c;
  bool connected(const std::string& a, const std::string& b) {
    auto ns = c[a].nodes();
    return std::find(ns.begin(), ns.end(), c.name(b)) != ns.end();
  }
  std::vector<Term> drain(Mailbox& m) {
    std::vector<Term> out;
    while (auto x = m.receive(0ms)) out.push_back(*x);
    return out;
  }
};

TEST_F(Formation, AStaticListConnectsAndAComebackIsReconnectedWithinTheBackoffCap) {
  c.start("b");
  c.start("a", {}, static_list({"b@sim", "c@sim"}));
  Mailbox events = c.rt("a").mailbox();
  formation::subscribe(c.rt("a"), events.pid());
  ASSERT_TRUE(c.net->run_until([&] { return connected("a", "b"); }, 1s));
  drain(events);  // what happened before the subscription took effect, or just after
  // c does not exist yet: a retries with backoff, and connects once it is there.
  ASSERT_TRUE(c.net->advance(30s));
  c.start("c");
  const auto t0 = c.net->clock()->now();
  ASSERT_TRUE(c.net->run_until([&] { return connected("a", "c"); }, 10s));
  EXPECT_LE(c.net->clock()->now() - t0, 5s);  // the backoff cap
  // c dies and comes back under its name: connected again within the cap.
  c.stop("c");
  ASSERT_TRUE(c.settle());
  EXPECT_FALSE(connected("a", "c"));
  ASSERT_TRUE(c.net->advance(20s));
  c.start("c");
  const auto t1 = c.net->clock()->now();
  ASSERT_TRUE(c.net->run_until([&] { return connected("a", "c"); }, 10s));
  EXPECT_LE(c.net->clock()->now() - t1, 5s);
  const auto seen = drain(events);
  // One event per change of state, however many attempts failed meanwhile.
  EXPECT_EQ(std::count(seen.begin(), seen.end(), T("{hypha_formation, failed, 'c@sim', static}")), 1);  // after the stop
  EXPECT_EQ(std::count(seen.begin(), seen.end(), T("{hypha_formation, connected, 'c@sim', static}")), 2);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), T("{hypha_formation, disconnected, 'c@sim', static}")), 1);
}

TEST_F(Formation, AnUnreachableNodeIsLoggedOncePerChangeNotPerAttempt) {
  testing::LogCapture logs;
  c.start("a", {}, static_list({"ghost@sim"}));
  ASSERT_TRUE(c.net->advance(120s));  // dozens of attempts
  EXPECT_EQ(logs.count({"formation_unreachable", "ghost@sim"}), 1u);
  EXPECT_GT(c.net->stats().refused, 20u);
}

TEST_F(Formation, AChainOfStaticListsBecomesAFullMesh) {
  c.start("d");
  c.start("c", {}, static_list({"d@sim"}));
  c.start("b", {}, static_list({"c@sim"}));
  c.start("a", {}, static_list({"b@sim"}));
  auto full = [&] {
    for (const char* x : {"a", "b", "c", "d"})
      if (c[x].nodes().size() != 3) return false;
    return true;
  };
  ASSERT_TRUE(c.net->run_until(full, 30s));
}

TEST_F(Formation, WithoutMeshOnlyTheListedNodesAreConnected) {
  c.start("c");
  c.start("b", {}, static_list({"c@sim"}, false));
  c.start("a", {}, static_list({"b@sim"}, false));
  ASSERT_TRUE(c.net->advance(30s));
  EXPECT_TRUE(connected("a", "b"));
  EXPECT_TRUE(connected("b", "c"));
  EXPECT_FALSE(connected("a", "c"));
}

TEST_F(Formation, APartitionIsHealedByReconnecting) {
  c.start("b", {.net_ticktime = 10s});
  c.start("a", {.net_ticktime = 10s}, static_list({"b@sim"}));
  ASSERT_TRUE(c.net->run_until([&] { return connected("a", "b"); }, 1s));
  c.net->partition(c.name("a"), c.name("b"));
  ASSERT_TRUE(c.net->run_until([&] { return !connected("a", "b"); }, 15s));
  ASSERT_TRUE(c.net->advance(30s));  // attempts time out meanwhile
  EXPECT_FALSE(connected("a", "b"));
  c.net->heal(c.name("a"), c.name("b"));
  const auto t0 = c.net->clock()->now();
  ASSERT_TRUE(c.net->run_until([&] { return connected("a", "b") && connected("b", "a"); }, 20s));
  // Within the cap plus the set-up time of an attempt that was under way when it healed.
  EXPECT_LE(c.net->clock()->now() - t0, 5s + 7s);
}

TEST_F(Formation, AReloadChangesTheListInPlaceKeepingConnectionsOfNodesStillListed) {
  c.start("b");
  c.start("c");
  c.start("d");
  c.start("a", {}, static_list({"b@sim", "c@sim"}, false));
  Mailbox events = c.rt("a").mailbox();
  formation::subscribe(c.rt("a"), events.pid());
  ASSERT_TRUE(c.net->run_until([&] { return connected("a", "b") && connected("a", "c"); }, 5s));
  const Pid before = *c.rt("a").whereis(Atom("hypha_formation"));

  // c dropped and d added: d is connected, c stays connected (disconnect_dropped off) but is not
  // wanted any more, so it is not connected again after it comes back.
  formation::Options next = static_list({"b@sim", "d@sim"}, false).formation;
  ASSERT_TRUE(formation::reconfigure(c.rt("a"), next).ok());
  ASSERT_TRUE(c.net->run_until([&] { return connected("a", "d"); }, 5s));
  EXPECT_TRUE(connected("a", "c"));
  EXPECT_EQ(*c.rt("a").whereis(Atom("hypha_formation")), before);  // the same process: subscribers kept
  c.stop("c");
  ASSERT_TRUE(c.settle());
  c.start("c");
  ASSERT_TRUE(c.net->advance(20s));
  EXPECT_FALSE(connected("a", "c"));
  // b restarted is connected again: still listed.
  c.stop("b");
  ASSERT_TRUE(c.settle());
  c.start("b");
  ASSERT_TRUE(c.net->run_until([&] { return connected("a", "b"); }, 10s));

  // With disconnect_dropped, a node dropped from the list is disconnected at once.
  next.static_nodes = {"b@sim"};
  next.disconnect_dropped = true;
  ASSERT_TRUE(formation::reconfigure(c.rt("a"), next).ok());
  ASSERT_TRUE(c.net->run_until([&] { return !connected("a", "d"); }, 5s));
  EXPECT_TRUE(connected("a", "b"));
  std::vector<Term> seen;
  ASSERT_TRUE(c.net->run_until([&] {
    for (auto& e : drain(events)) seen.push_back(e);
    return std::count(seen.begin(), seen.end(), T("{hypha_formation, connected, 'd@sim', static}")) == 1;
  }, 5s));
}

TEST_F(Formation, AReloadIsRefusedWhereNoFormationRuns) {
  c.start("a");
  auto r = formation::reconfigure(c.rt("a"), static_list({"b@sim"}).formation);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "no formation runs on this node");
}

}  // namespace
}  // namespace hypha
