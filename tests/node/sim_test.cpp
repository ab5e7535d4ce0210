// The deterministic harness (node/sim.hpp): nodes on a simulated network and a manual clock,
// links the test cuts, partitions, delays and heals, each step observed after settle().
#include <gtest/gtest.h>

#include <map>

#include "hypha/node.hpp"
#include "hypha/otp/kernel.hpp"
#include "hypha/process/gen.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;
using testing::T;

// Nodes NAME@sim on one simulated network, each with its kernel and a registered mailbox
// `inbox` that the test reads after settling.
class Sim : public ::testing::Test {
 protected:
  std::shared_ptr<SimNetwork> net = std::make_shared<SimNetwork>();
  std::map<std::string, std::unique_ptr<Node>> nodes;
  std::map<std::string, Mailbox> inboxes;

  Node& start(const std::string& alive, NodeOptions o = {}) {
    o.name = alive + "@sim";
    if (o.cookie.empty()) o.cookie = "cookie";
    o.threads = 2;
    o.network = net;
    if (o.net_ticktime == std::chrono::seconds(60)) o.net_ticktime = 10s;
    auto n = start_node(o);
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error());
    Node& node = *(nodes[alive] = std::move(*n));
    Mailbox box = node.runtime().mailbox();
    node.runtime().register_name(Atom("inbox"), box.pid());
    inboxes.insert_or_assign(alive, std::move(box));
    return node;
  }
  static Atom name(const std::string& alive) { return Atom(alive + "@sim"); }
  Node& node(const std::string& alive) { return *nodes.at(alive); }
  // What has arrived in ALIVE's inbox by now (the test settles first).
  std::vector<Term> received(const std::string& alive) {
    std::vector<Term> out;
    while (auto m = inboxes.at(alive).receive(0ms)) out.push_back(*m);
    return out;
  }
  // A message from a plain thread of FROM to TO's inbox.
  void send(const std::string& from, const std::string& to, Term msg) {
    node(from).runtime().send(Atom("inbox"), name(to), std::move(msg));
  }
  // A mailbox that hears ALIVE's nodeup/nodedown.
  Mailbox node_watcher(const std::string& alive) {
    Mailbox box = node(alive).runtime().mailbox();
    node(alive).monitor_nodes(box.pid());
    return box;
  }
  // Connects and settles (the connection's nodeup is out before the test looks on).
  bool connect(const std::string& a, const std::string& b) {
    const bool up = node(a).connect(name(b), 5s).ok();
    return net->settle() && up;
  }
};

TEST_F(Sim, NodesConnectAndTalkThroughTheNetwork) {
  start("a");
  start("b");
  EXPECT_EQ(node("a").port(), 0);  // nothing listens
  ASSERT_TRUE(connect("a", "b"));
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(node("a").nodes(), std::vector<Atom>{name("b")});
  EXPECT_EQ(node("b").nodes(), std::vector<Atom>{name("a")});
  EXPECT_TRUE(net->connected(name("a"), name("b")));
  EXPECT_TRUE(node("a").ping(name("b")));  // net_kernel over the simulated link

  for (int i = 1; i <= 3; ++i) send("a", "b", Term(i));
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(received("b"), (std::vector<Term>{Term(1), Term(2), Term(3)}));
  EXPECT_EQ(net->in_flight(), 0u);
  EXPECT_GE(net->stats().delivered, 3u);
  EXPECT_EQ(net->stats().connects, 1u);
  const auto peers = node("a").peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_GE(peers[0].messages_out, 3u);
}

// send_each: one message to local and remote pids, the remote part encoded once and framed for
// each node, connected (b) or not yet (c, queued until its connection is up); in order per
// receiver, the same bytes on every link.
TEST_F(Sim, SendEachReachesEveryPidInOrderOnEveryNode) {
  start("a");
  start("b");
  start("c");
  ASSERT_TRUE(connect("a", "b"));
  std::vector<Pid> to;
  for (const char* n : {"a", "b", "c"}) to.push_back(*node(n).runtime().whereis(Atom("inbox")));
  const Term big = Term::binary(std::string(3000, 'x'));
  for (int i = 1; i <= 3; ++i) node("a").runtime().send_each(to, Term::tuple({Term(i), big}));
  ASSERT_TRUE(net->settle());
  const std::vector<Term> want{Term::tuple({Term(1), big}), Term::tuple({Term(2), big}), Term::tuple({Term(3), big})};
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(received(n), want) << n;
  const auto peers = node("a").peers();
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_EQ(peers[0].bytes_out, peers[1].bytes_out);
  EXPECT_GT(peers[0].bytes_out, 9000u);
}

TEST_F(Sim, ASendToAnUnconnectedNodeConnectsFirst) {
  start("a");
  start("b");
  send("a", "b", "hello"_atom);  // as in Erlang: the send sets the connection up
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(received("b"), std::vector<Term>{Term("hello"_atom)});
  EXPECT_TRUE(net->connected(name("a"), name("b")));
}

TEST_F(Sim, NoSuchNodeAndAWrongCookieAreRefused) {
  start("a");
  start("b", {.cookie = "other"});
  EXPECT_FALSE(connect("a", "nobody"));
  EXPECT_FALSE(connect("a", "b"));
  EXPECT_EQ(net->stats().refused, 2u);
  EXPECT_TRUE(node("a").nodes().empty());
  EXPECT_TRUE(node("b").nodes().empty());
}

TEST_F(Sim, ACutIsNodedownOnBothSidesAtOnceAndRefusesConnectionsUntilHealed) {
  start("a");
  start("b");
  ASSERT_TRUE(connect("a", "b"));
  Mailbox watcher = node("a").runtime().mailbox();
  node("a").monitor_nodes(watcher.pid());
  Mailbox b_watcher = node("b").runtime().mailbox();
  node("b").monitor_nodes(b_watcher.pid());
  // A process on a monitors b's inbox.
  Mailbox monitoring = node("a").runtime().mailbox();
  const Ref mref = monitoring.monitor(*node("b").runtime().whereis(Atom("inbox")));
  ASSERT_TRUE(net->settle());

  net->cut(name("a"), name("b"));
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(watcher.receive(0ms), T("{nodedown, 'b@sim'}"));
  EXPECT_EQ(b_watcher.receive(0ms), T("{nodedown, 'a@sim'}"));
  auto down = monitoring.receive(0ms);
  ASSERT_TRUE(down);
  EXPECT_EQ((*down)[1], Term(mref));
  EXPECT_EQ((*down)[4], Term("noconnection"_atom));
  EXPECT_FALSE(connect("a", "b"));  // refused at once
  EXPECT_FALSE(net->connected(name("a"), name("b")));

  net->heal(name("a"), name("b"));
  ASSERT_TRUE(connect("a", "b"));
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(watcher.receive(0ms), T("{nodeup, 'b@sim'}"));
}

TEST_F(Sim, APartitionHealedWithinTheTickTimeLosesNothing) {
  start("a");
  start("b");
  ASSERT_TRUE(connect("a", "b"));
  net->partition(name("a"), name("b"));
  send("a", "b", "one"_atom);
  send("a", "b", "two"_atom);
  ASSERT_TRUE(net->advance(2900ms));  // the heartbeat's 3 s (NodeOptions::detect): nobody noticed yet
  EXPECT_TRUE(received("b").empty());
  EXPECT_EQ(net->in_flight(), 2u);
  EXPECT_EQ(node("a").nodes(), std::vector<Atom>{name("b")});
  net->heal(name("a"), name("b"));
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(received("b"), (std::vector<Term>{Term("one"_atom), Term("two"_atom)}));
  ASSERT_TRUE(net->advance(60s));  // the old tick timeouts do nothing after the heal
  EXPECT_EQ(node("b").nodes(), std::vector<Atom>{name("a")});
}

TEST_F(Sim, EachSideOfAPartitionGivesUpAtItsOwnTickTime) {
  start("a", {.net_ticktime = 10s, .detect = 0ms});
  start("b", {.net_ticktime = 20s, .detect = 0ms});
  ASSERT_TRUE(connect("a", "b"));
  Mailbox a_watch = node_watcher("a");
  Mailbox b_watch = node_watcher("b");
  net->partition(name("a"), name("b"));
  ASSERT_TRUE(net->advance(10s));
  EXPECT_EQ(a_watch.receive(0ms), T("{nodedown, 'b@sim'}"));
  EXPECT_FALSE(b_watch.receive(0ms));  // b still waits
  EXPECT_EQ(node("b").nodes(), std::vector<Atom>{name("a")});
  send("a", "b", "lost"_atom);  // sets a new connection up, which cannot get through
  ASSERT_TRUE(net->advance(10s));
  EXPECT_EQ(b_watch.receive(0ms), T("{nodedown, 'a@sim'}"));
  EXPECT_EQ(net->stats().refused, 1u);  // timed out at setup_timeout (7 s)
  EXPECT_TRUE(received("b").empty());
  net->heal(name("a"), name("b"));
  ASSERT_TRUE(connect("a", "b"));
}

TEST_F(Sim, AOneSidedTimeoutIsLearnedByTheOtherSideWhenThePartitionHeals) {
  start("a", {.net_ticktime = 10s, .detect = 0ms});
  start("b", {.net_ticktime = 30s, .detect = 0ms});
  ASSERT_TRUE(connect("a", "b"));
  Mailbox b_watch = node_watcher("b");
  net->partition(name("a"), name("b"));
  ASSERT_TRUE(net->advance(15s));  // a gave up, b did not
  EXPECT_FALSE(b_watch.receive(0ms));
  net->heal(name("a"), name("b"));
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(b_watch.receive(0ms), T("{nodedown, 'a@sim'}"));
}

TEST_F(Sim, DelayedFramesArriveInOrderAtTheirTime) {
  start("a");
  start("b");
  ASSERT_TRUE(connect("a", "b"));
  net->delay(name("a"), name("b"), 100ms);
  for (int i = 1; i <= 3; ++i) send("a", "b", Term(i));
  ASSERT_TRUE(net->advance(99ms));
  EXPECT_TRUE(received("b").empty());
  ASSERT_TRUE(net->advance(1ms));
  EXPECT_EQ(received("b"), (std::vector<Term>{Term(1), Term(2), Term(3)}));
  net->delay(name("a"), name("b"), {});
  send("a", "b", Term(4));
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(received("b"), std::vector<Term>{Term(4)});
}

TEST_F(Sim, DroppedFramesAreLostAndTheConnectionStays) {
  start("a");
  start("b");
  ASSERT_TRUE(connect("a", "b"));
  net->drop_next(name("a"), name("b"), 2);
  for (int i = 1; i <= 3; ++i) send("a", "b", Term(i));
  send("b", "a", "back"_atom);  // the other way is untouched
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(received("b"), std::vector<Term>{Term(3)});
  EXPECT_EQ(received("a"), std::vector<Term>{Term("back"_atom)});
  EXPECT_EQ(net->stats().dropped, 2u);
  EXPECT_TRUE(net->connected(name("a"), name("b")));
}

TEST_F(Sim, TimersRunOnTheNetworksClock) {
  start("a");
  start("b");
  ASSERT_TRUE(connect("a", "b"));
  const Pid b_inbox = *node("b").runtime().whereis(Atom("inbox"));
  node("a").runtime().send_after(30s, b_inbox, "late"_atom);
  ASSERT_TRUE(net->advance(29s));
  EXPECT_TRUE(received("b").empty());
  ASSERT_TRUE(net->advance(1s));
  EXPECT_EQ(received("b"), std::vector<Term>{Term("late"_atom)});
}

TEST_F(Sim, RunUntilStopsAtTheFirstStateThatHolds) {
  start("a", {.net_ticktime = 8s, .detect = 0ms});
  start("b", {.net_ticktime = 8s, .detect = 0ms});
  ASSERT_TRUE(connect("a", "b"));
  net->isolate(name("a"));
  const auto t0 = net->clock()->now();
  ASSERT_TRUE(net->run_until([&] { return node("a").nodes().empty(); }, 60s));
  EXPECT_EQ(net->clock()->now() - t0, 8s);  // exactly the tick time: the step was a deadline
  EXPECT_FALSE(net->run_until([] { return false; }, 5s));
  EXPECT_EQ(net->clock()->now() - t0, 13s);
}

TEST_F(Sim, ANodeStartedAgainHasANewCreationAndOldPidsAreGone) {
  start("a");
  start("b");
  const std::uint32_t first = node("b").creation();
  EXPECT_FALSE(start_node({.name = "b@sim", .cookie = "cookie", .network = net}).ok());  // the name is taken
  ASSERT_TRUE(connect("a", "b"));
  Mailbox watcher = node("a").runtime().mailbox();
  node("a").monitor_nodes(watcher.pid());
  nodes.erase("b");  // stops it: a sees nodedown
  inboxes.erase("b");
  ASSERT_TRUE(net->settle());
  EXPECT_EQ(watcher.receive(0ms), T("{nodedown, 'b@sim'}"));
  start("b");
  EXPECT_NE(node("b").creation(), first);
  ASSERT_TRUE(connect("a", "b"));
}

// Failure detection between hypha nodes (NodeOptions::detect): each says hello on a new
// connection, then ticks fast enough for the other, so a silent peer is down after `detect`, not
// after the tick time.
TEST_F(Sim, ASilentHyphaPeerIsDownAfterTheDetectTimeNotTheTickTime) {
  start("a", {.net_ticktime = 60s});
  start("b", {.net_ticktime = 60s});
  ASSERT_TRUE(connect("a", "b"));
  for (const char* n : {"a", "b"}) {
    const auto peers = node(n).peers();
    ASSERT_EQ(peers.size(), 1u);
    EXPECT_TRUE(peers[0].hypha);
    EXPECT_EQ(peers[0].detect, 3s);  // the default
  }
  Mailbox watch = node_watcher("a");
  net->partition(name("a"), name("b"));
  ASSERT_TRUE(net->advance(2999ms));
  EXPECT_FALSE(watch.receive(0ms));
  ASSERT_TRUE(net->advance(1ms));
  EXPECT_EQ(watch.receive(0ms), T("{nodedown, 'b@sim'}"));
  EXPECT_TRUE(node("b").nodes().empty());
  net->heal(name("a"), name("b"));
  ASSERT_TRUE(connect("a", "b"));
  EXPECT_EQ(node("b").peers().at(0).detect, 3s);  // the new connection says hello again
}

TEST_F(Sim, EachSideDeclaresTheOtherDownAfterItsOwnDetectTime) {
  start("a", {.detect = 1s});
  start("b", {.detect = 5s});
  ASSERT_TRUE(connect("a", "b"));
  Mailbox a_watch = node_watcher("a");
  Mailbox b_watch = node_watcher("b");
  net->partition(name("a"), name("b"));
  ASSERT_TRUE(net->advance(1s));
  EXPECT_EQ(a_watch.receive(0ms), T("{nodedown, 'b@sim'}"));
  EXPECT_FALSE(b_watch.receive(0ms));
  ASSERT_TRUE(net->advance(4s));
  EXPECT_EQ(b_watch.receive(0ms), T("{nodedown, 'a@sim'}"));
}

// A node with the heartbeat off still ticks as fast as its peer asks (so the peer detects fast)
// and itself waits for its tick time.
TEST_F(Sim, ANodeWithTheHeartbeatOffIsDetectedFastAndWaitsForItsTickTime) {
  start("a", {.detect = 2s});
  start("b", {.net_ticktime = 10s, .detect = 0ms});
  ASSERT_TRUE(connect("a", "b"));
  EXPECT_EQ(node("a").peers().at(0).detect, 2s);
  EXPECT_EQ(node("b").peers().at(0).detect, 10s);
  EXPECT_TRUE(node("b").peers().at(0).hypha);
  net->partition(name("a"), name("b"));
  ASSERT_TRUE(net->advance(2s));
  EXPECT_TRUE(node("a").nodes().empty());
  EXPECT_EQ(node("b").nodes(), std::vector<Atom>{name("a")});
  ASSERT_TRUE(net->advance(8s));
  EXPECT_TRUE(node("b").nodes().empty());
}

// The same script twice gives the same observations, step for step.
TEST_F(Sim, AScriptRunsTheSameEveryTime) {
  auto script = [](SimNetwork& net, std::map<std::string, std::unique_ptr<Node>>& ns) {
    std::vector<std::string> seen;
    Mailbox w = ns["a"]->runtime().mailbox();
    ns["a"]->monitor_nodes(w.pid());
    auto note = [&](const std::string& step) {
      net.settle();
      std::string line = step + ":";
      while (auto m = w.receive(0ms)) line += " " + m->to_string();
      seen.push_back(line);
    };
    (void)ns["a"]->connect(Atom("b@sim"));
    (void)ns["a"]->connect(Atom("c@sim"));
    note("connected");
    net.partition(Atom("a@sim"), Atom("b@sim"));
    net.delay(Atom("a@sim"), Atom("c@sim"), 3s);
    net.advance(5s);
    note("5s");
    net.cut(Atom("a@sim"), Atom("c@sim"));
    note("cut");
    net.advance(5s);
    note("10s");
    net.heal_all();
    (void)ns["a"]->connect(Atom("b@sim"));
    note("healed");
    return seen;
  };
  std::vector<std::vector<std::string>> runs;
  for (int run = 0; run < 2; ++run) {
    auto sim = std::make_shared<SimNetwork>();
    std::map<std::string, std::unique_ptr<Node>> ns;
    for (const char* n : {"a", "b", "c"})
      ns[n] = std::move(*start_node({.name = std::string(n) + "@sim", .cookie = "c", .net_ticktime = 8s, .threads = 2,
                                     .network = sim}));
    runs.push_back(script(*sim, ns));
  }
  EXPECT_EQ(runs[0], runs[1]);
  // b is declared down 3 s into the partition (the heartbeat), c when the link is cut.
  EXPECT_EQ(runs[0], (std::vector<std::string>{"connected: {nodeup,b@sim} {nodeup,c@sim}", "5s: {nodedown,b@sim}",
                                               "cut: {nodedown,c@sim}", "10s:", "healed: {nodeup,b@sim}"}));
}

}  // namespace
}  // namespace hypha
