// Pub/sub (Phoenix.PubSub's wire) between hypha nodes on the deterministic harness.
#include "hypha/cluster/pubsub.hpp"

#include <gtest/gtest.h>

#include "hypha/cluster/pg.hpp"
#include "sim_cluster.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;
using testing::T;

const Atom kPs("Elixir.MyApp.PubSub");

std::vector<Term> drain(Mailbox& m) {
  std::vector<Term> out;
  while (auto x = m.receive(0ms)) out.push_back(*x);
  return out;
}

class PubSub : public ::testing::Test {
 protected:
  testing::SimCluster c;
  Node& start(const std::string& n, unsigned pool = 1) {
    return c.start(n, {}, {.pubsubs = {{.name = kPs, .pool_size = pool}}});
  }
};

TEST_F(PubSub, TheAdapterIsRegisteredAndJoinedAsPhoenixHasIt) {
  start("a", 2);
  const auto adapter = c.rt("a").whereis(Atom("Elixir.MyApp.PubSub.Adapter"));
  ASSERT_TRUE(adapter);
  EXPECT_EQ(pubsub::adapter_name(kPs), Atom("Elixir.MyApp.PubSub.Adapter"));
  const Atom scope("Elixir.Phoenix.PubSub");
  EXPECT_EQ(pg::get_members(c.rt("a"), scope, Term(Atom("Elixir.MyApp.PubSub.Adapter"))), std::vector<Pid>{*adapter});
  EXPECT_EQ(pg::get_members(c.rt("a"), scope, Term(Atom("Elixir.MyApp.PubSub.Adapter_2"))), std::vector<Pid>{*adapter});
}

TEST_F(PubSub, LocalSubscribersGetBroadcastsUntilTheyUnsubscribeOrExit) {
  start("a");
  Runtime& rt = c.rt("a");
  Mailbox s1 = rt.mailbox(), s2 = rt.mailbox();
  ASSERT_TRUE(pubsub::subscribe(rt, kPs, "jobs", s1.pid()).ok());
  ASSERT_TRUE(pubsub::subscribe(rt, kPs, "jobs", s2.pid()).ok());
  ASSERT_TRUE(pubsub::subscribe(rt, kPs, "jobs", s2.pid()).ok());  // twice: delivered twice
  ASSERT_TRUE(pubsub::subscribe(rt, kPs, "other", s1.pid()).ok());
  ASSERT_TRUE(pubsub::broadcast(rt, kPs, "jobs", Term(1)).ok());
  ASSERT_TRUE(pubsub::broadcast_from(rt, kPs, s1.pid(), "jobs", Term(2)).ok());  // not back to s1
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(drain(s1), std::vector<Term>{Term(1)});
  EXPECT_EQ(drain(s2), (std::vector<Term>{Term(1), Term(1), Term(2), Term(2)}));
  EXPECT_EQ(pubsub::unsubscribe(rt, kPs, "jobs", s2.pid()).value(), true);
  EXPECT_EQ(pubsub::unsubscribe(rt, kPs, "jobs", s2.pid()).value(), false);
  ASSERT_TRUE(pubsub::broadcast(rt, kPs, "jobs", Term(3)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(drain(s1), std::vector<Term>{Term(3)});
  EXPECT_TRUE(drain(s2).empty());

  // A subscriber that exits is unsubscribed from every topic.
  const Pid gone = rt.spawn([](Process& self) -> Task<> { co_await self.receive(); });
  ASSERT_TRUE(pubsub::subscribe(rt, kPs, "jobs", gone).ok());
  ASSERT_TRUE(pubsub::subscribe(rt, kPs, "other", gone).ok());
  ASSERT_TRUE(c.settle());
  rt.send(gone, "stop"_atom);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(pubsub::subscribers(rt, kPs, "jobs"), std::vector<Pid>{s1.pid()});
  EXPECT_EQ(pubsub::subscribers(rt, kPs, "other"), std::vector<Pid>{s1.pid()});

  auto none = pubsub::broadcast(rt, Atom("Elixir.Nope"), "jobs", Term(1));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error(), T("{unknown_pubsub, 'Elixir.Nope'}"));
}

// Many subscribers exiting at once (a node's clients going together) leave every topic they had,
// the ones that stay keep their subscriptions, in order, and one that exits and one that
// unsubscribed before it are both handled.
TEST_F(PubSub, ManySubscribersThatExitTogetherLeaveAndTheOthersStay) {
  start("a");
  Runtime& rt = c.rt("a");
  Mailbox stays = rt.mailbox();
  std::vector<Pid> going;
  ASSERT_TRUE(pubsub::subscribe(rt, kPs, "mass", stays.pid()).ok());
  for (int i = 0; i < 5000; ++i) {
    going.push_back(rt.spawn([](Process& self) -> Task<> { co_await self.receive(); }));
    ASSERT_TRUE(pubsub::subscribe(rt, kPs, "mass", going.back()).ok());
    if (i % 10 == 0) ASSERT_TRUE(pubsub::subscribe(rt, kPs, "side", going.back()).ok());
  }
  ASSERT_TRUE(pubsub::subscribe(rt, kPs, "mass", stays.pid()).ok());  // twice, after them
  ASSERT_TRUE(pubsub::unsubscribe(rt, kPs, "side", going[0]).value());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(pubsub::subscribers(rt, kPs, "mass").size(), 5002u);
  for (const Pid& p : going) rt.send(p, "stop"_atom);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(pubsub::subscribers(rt, kPs, "mass"), (std::vector<Pid>{stays.pid(), stays.pid()}));
  EXPECT_TRUE(pubsub::subscribers(rt, kPs, "side").empty());
  ASSERT_TRUE(pubsub::broadcast(rt, kPs, "mass", Term(1)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(drain(stays), (std::vector<Term>{Term(1), Term(1)}));
}

TEST_F(PubSub, BroadcastsReachEveryNodesSubscribersInOrder) {
  start("a");
  start("b");
  start("c");
  ASSERT_TRUE(c.connect("a", "b"));
  ASSERT_TRUE(c.connect("a", "c"));
  ASSERT_TRUE(c.connect("b", "c"));
  Mailbox sa = c.rt("a").mailbox(), sb = c.rt("b").mailbox(), sc = c.rt("c").mailbox();
  ASSERT_TRUE(pubsub::subscribe(c.rt("a"), kPs, "t", sa.pid()).ok());
  ASSERT_TRUE(pubsub::subscribe(c.rt("b"), kPs, "t", sb.pid()).ok());
  ASSERT_TRUE(pubsub::subscribe(c.rt("c"), kPs, "t", sc.pid()).ok());
  ASSERT_TRUE(c.settle());
  std::vector<Term> sent;
  for (int i = 0; i < 100; ++i) {
    sent.emplace_back(i);
    ASSERT_TRUE(pubsub::broadcast(c.rt("a"), kPs, "t", Term(i)).ok());
  }
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(drain(sa), sent);
  EXPECT_EQ(drain(sb), sent);
  EXPECT_EQ(drain(sc), sent);

  ASSERT_TRUE(pubsub::local_broadcast(c.rt("b"), kPs, "t", "local"_atom).ok());
  ASSERT_TRUE(pubsub::direct_broadcast(c.rt("a"), c.name("c"), kPs, "t", "direct"_atom).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_TRUE(drain(sa).empty());
  EXPECT_EQ(drain(sb), std::vector<Term>{Term("local"_atom)});
  EXPECT_EQ(drain(sc), std::vector<Term>{Term("direct"_atom)});

  // A node that goes is no longer sent to; the others still are.
  c.stop("c");
  ASSERT_TRUE(c.settle());
  ASSERT_TRUE(pubsub::broadcast(c.rt("a"), kPs, "t", "after"_atom).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(drain(sb), std::vector<Term>{Term("after"_atom)});
}

TEST_F(PubSub, WhatArrivesFromOtherNodesIsDeliveredPlainAndJunkIsDropped) {
  start("a");
  start("b");
  ASSERT_TRUE(c.connect("a", "b"));
  Mailbox sb = c.rt("b").mailbox();
  ASSERT_TRUE(pubsub::subscribe(c.rt("b"), kPs, "t", sb.pid()).ok());
  ASSERT_TRUE(c.settle());
  Runtime& a = c.rt("a");
  const Atom adapter("Elixir.MyApp.PubSub.Adapter");
  // Phoenix Channels' dispatcher: the message itself is delivered.
  a.send(adapter, c.name("b"), T("{forward_to_local, <<\"t\">>, #{event => <<\"e\">>}, 'Elixir.Phoenix.Channel.Server'}"));
  a.send(adapter, c.name("b"), T("{forward_to_local, t_not_a_binary, x, 'Elixir.Phoenix.PubSub'}"));
  a.send(adapter, c.name("b"), T("hello_garbage"));
  a.send(adapter, c.name("b"), T("{forward_to_local, <<\"t\">>, last, 'Elixir.Phoenix.PubSub'}"));
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(drain(sb), (std::vector<Term>{T("#{event => <<\"e\">>}"), T("last")}));
  EXPECT_TRUE(c.rt("b").whereis(adapter));
}

}  // namespace
}  // namespace hypha
