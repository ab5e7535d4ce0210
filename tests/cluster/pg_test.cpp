// Process groups (OTP's pg protocol) between hypha nodes on the deterministic harness: joins,
// leaves, exits and nodedowns seen on every node, monitors, hostile peers.
#include "hypha/cluster/pg.hpp"

#include <gtest/gtest.h>

#include "hypha/process/gen.hpp"
#include "sim_cluster.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;
using testing::T;

const Atom kPg("pg");

// A process that waits until it gets `stop` (then ends normal) or {exit, Reason}.
Pid member(Runtime& rt) {
  return rt.spawn([](Process& self) -> Task<> {
    for (;;) {
      Term m = co_await self.receive();
      if (m.is_atom(Atom("stop"))) co_return;
      if (m.is_tuple() && m.tuple_size() == 2 && m[0].is_atom(Atom("exit"))) self.exit(m[1]);
    }
  });
}

// A process that monitors the scope (or one group) and forwards what it gets to `to`:
// first {monitoring, Ref, Current}, then each notification.
Pid watcher(Runtime& rt, const Pid& to, std::optional<Term> group = std::nullopt) {
  return rt.spawn([to, group](Process& self) -> Task<> {
    if (group) {
      auto r = co_await pg::monitor(self, kPg, *group);
      std::vector<Term> pids;
      for (const Pid& p : r->second) pids.emplace_back(p);
      self.send(to, Term::tuple({Term(Atom("monitoring")), Term(r->first), Term::list(std::move(pids))}));
    } else {
      auto r = co_await pg::monitor_scope(self, kPg);
      self.send(to, Term::tuple({Term(Atom("monitoring")), Term(r->first), r->second}));
    }
    for (;;) self.send(to, co_await self.receive());
  });
}

std::vector<Pid> pids(std::initializer_list<Pid> l) { return l; }

class Pg : public ::testing::Test {
 protected:
  testing::SimCluster c;
  std::vector<Pid> members(const std::string& node, const Term& group) { return pg::get_members(c.rt(node), kPg, group); }
};

TEST_F(Pg, JoinsAndLeavesOnOneNodeAsOtpHasThem) {
  c.start("a");
  Runtime& rt = c.rt("a");
  const Term g("workers"_atom);
  const Pid p1 = member(rt), p2 = member(rt);
  EXPECT_TRUE(members("a", g).empty());
  ASSERT_TRUE(pg::join(rt, kPg, g, {p1}).ok());
  ASSERT_TRUE(pg::join(rt, kPg, g, {p2, p1}).ok());  // p1 again: a member twice
  EXPECT_EQ(members("a", g), pids({p2, p1, p1}));     // newest first, a list as given
  EXPECT_EQ(pg::get_local_members(rt, kPg, g), pids({p2, p1, p1}));
  EXPECT_EQ(pg::which_groups(rt, kPg), std::vector<Term>{g});
  EXPECT_EQ(pg::leave(rt, kPg, g, {p1}).value(), true);
  EXPECT_EQ(members("a", g), pids({p2, p1}));
  EXPECT_EQ(pg::leave(rt, kPg, Term("other"_atom), {p1}).value(), false);  // not_joined
  EXPECT_EQ(pg::leave(rt, kPg, g, {p1, p2}).value(), true);
  EXPECT_TRUE(members("a", g).empty());
  EXPECT_TRUE(pg::which_groups(rt, kPg).empty());  // empty groups are gone
  // Only local pids may join, as in OTP.
  const Pid foreign{Atom("x@sim"), 1, 0, 1};
  auto bad = pg::join(rt, kPg, g, {p1, foreign});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), Term::tuple({Term("nolocal"_atom), Term(foreign)}));
  EXPECT_TRUE(members("a", g).empty());
  // A scope that does not run: no members, and joining fails.
  EXPECT_TRUE(pg::get_members(rt, Atom("nosuch"), g).empty());
  EXPECT_FALSE(pg::join(rt, Atom("nosuch"), g, {p1}).ok());
}

TEST_F(Pg, AMemberThatExitsLeavesEveryGroupItJoined) {
  c.start("a");
  Runtime& rt = c.rt("a");
  const Pid p = member(rt), q = member(rt);
  ASSERT_TRUE(pg::join(rt, kPg, Term(1), {p}).ok());
  ASSERT_TRUE(pg::join(rt, kPg, Term(1), {p}).ok());
  ASSERT_TRUE(pg::join(rt, kPg, Term(2), {p, q}).ok());
  rt.send(p, Term::tuple({Term("exit"_atom), Term("boom"_atom)}));
  ASSERT_TRUE(c.settle());
  EXPECT_TRUE(members("a", Term(1)).empty());
  EXPECT_EQ(members("a", Term(2)), pids({q}));
}

TEST_F(Pg, MembersAreSeenOnEveryNodeAndLeaveWithTheirNode) {
  c.start("a");
  c.start("b");
  c.start("c");
  ASSERT_TRUE(c.connect("a", "b"));
  ASSERT_TRUE(c.connect("a", "c"));
  ASSERT_TRUE(c.connect("b", "c"));
  const Term g("g"_atom);
  const Pid pa = member(c.rt("a")), pb = member(c.rt("b"));
  ASSERT_TRUE(pg::join(c.rt("a"), kPg, g, {pa}).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_TRUE(pg::join(c.rt("b"), kPg, g, {pb}).ok());
  ASSERT_TRUE(c.settle());
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(members(n, g), pids({pb, pa})) << n;
  EXPECT_EQ(pg::get_local_members(c.rt("c"), kPg, g), std::vector<Pid>{});
  EXPECT_EQ(pg::get_local_members(c.rt("b"), kPg, g), pids({pb}));

  // Leaves and exits travel; a node that goes takes its members with it, everywhere.
  ASSERT_TRUE(pg::leave(c.rt("b"), kPg, g, {pb}).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(members("c", g), pids({pa}));
  ASSERT_TRUE(pg::join(c.rt("b"), kPg, g, {pb}).ok());
  ASSERT_TRUE(c.settle());
  c.stop("b");  // b leaves the cluster: its members leave a's and c's views
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(members("a", g), pids({pa}));
  EXPECT_EQ(members("c", g), pids({pa}));
  c.rt("a").send(pa, "stop"_atom);
  ASSERT_TRUE(c.settle());
  EXPECT_TRUE(members("c", g).empty());
}

TEST_F(Pg, APartitionRemovesTheOtherSidesMembersAndAHealBringsThemBack) {
  c.start("a");
  c.start("b");
  ASSERT_TRUE(c.connect("a", "b"));
  const Term g("g"_atom);
  const Pid pa = member(c.rt("a")), pb = member(c.rt("b"));
  ASSERT_TRUE(pg::join(c.rt("a"), kPg, g, {pa}).ok());
  ASSERT_TRUE(pg::join(c.rt("b"), kPg, g, {pb}).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(members("a", g).size(), 2u);
  c.net->partition(c.name("a"), c.name("b"));
  ASSERT_TRUE(c.net->advance(2900ms));
  EXPECT_EQ(members("a", g).size(), 2u);  // nobody noticed yet (the heartbeat's 3 s)
  ASSERT_TRUE(c.net->advance(100ms));
  EXPECT_EQ(members("a", g), pids({pa}));
  EXPECT_EQ(members("b", g), pids({pb}));
  // Meanwhile each side changes its own groups.
  const Pid pb2 = member(c.rt("b"));
  ASSERT_TRUE(pg::join(c.rt("b"), kPg, g, {pb2}).ok());
  c.net->heal(c.name("a"), c.name("b"));
  ASSERT_TRUE(c.connect("a", "b"));  // nodeup: the scopes discover each other and sync
  EXPECT_EQ(members("a", g), pids({pb2, pb, pa}));
  EXPECT_EQ(members("b", g).size(), 3u);
}

TEST_F(Pg, MonitorsHearOfJoinsAndLeavesLocalAndRemote) {
  c.start("a");
  c.start("b");
  ASSERT_TRUE(c.connect("a", "b"));
  const Term g("g"_atom);
  const Pid pa = member(c.rt("a"));
  ASSERT_TRUE(pg::join(c.rt("a"), kPg, g, {pa}).ok());
  ASSERT_TRUE(c.settle());
  Mailbox seen = c.rt("b").mailbox();
  watcher(c.rt("b"), seen.pid());
  Mailbox seen_g = c.rt("b").mailbox();
  watcher(c.rt("b"), seen_g.pid(), Term("other"_atom));
  ASSERT_TRUE(c.settle());
  auto first = seen.receive(0ms);
  ASSERT_TRUE(first);
  const Term ref = (*first)[1];
  EXPECT_EQ((*first)[2], Term::map({{g, Term::list({Term(pa)})}}));
  auto first_g = seen_g.receive(0ms);
  ASSERT_TRUE(first_g);
  EXPECT_EQ((*first_g)[2], T("[]"));

  const Pid pb = member(c.rt("b"));
  ASSERT_TRUE(pg::join(c.rt("b"), kPg, g, {pb}).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(seen.receive(0ms), Term::tuple({ref, Term("join"_atom), g, Term::list({Term(pb)})}));
  c.rt("a").send(pa, "stop"_atom);  // a remote member exits
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(seen.receive(0ms), Term::tuple({ref, Term("leave"_atom), g, Term::list({Term(pa)})}));
  const Pid pa2 = member(c.rt("a"));
  ASSERT_TRUE(pg::join(c.rt("a"), kPg, g, {pa2}).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(seen.receive(0ms), Term::tuple({ref, Term("join"_atom), g, Term::list({Term(pa2)})}));
  c.stop("a");  // a remote node goes
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(seen.receive(0ms), Term::tuple({ref, Term("leave"_atom), g, Term::list({Term(pa2)})}));
  EXPECT_FALSE(seen.receive(0ms));
  EXPECT_FALSE(seen_g.receive(0ms));  // the group it watches did not change
}

TEST_F(Pg, DemonitorStopsTheNotifications) {
  c.start("a");
  Mailbox out = c.rt("a").mailbox();
  const Pid w = c.rt("a").spawn([to = out.pid()](Process& self) -> Task<> {
    auto r = co_await pg::monitor_scope(self, kPg);
    const bool was = co_await pg::demonitor(self, kPg, r->first);
    const bool again = co_await pg::demonitor(self, kPg, r->first);
    self.send(to, Term::tuple({Term(was), Term(again)}));
    for (;;) self.send(to, co_await self.receive());
  });
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(out.receive(0ms), T("{true, false}"));
  ASSERT_TRUE(pg::join(c.rt("a"), kPg, Term(1), {member(c.rt("a"))}).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_FALSE(out.receive(0ms));
  EXPECT_TRUE(c.rt("a").alive(w));
}

// What a hostile or broken peer sends to a scope is dropped; the scope lives on and keeps its
// view (an Erlang scope crashes on each of these).
TEST_F(Pg, AScopeDropsWhatAPeerShouldNotSend) {
  c.start("a");
  c.start("b");
  ASSERT_TRUE(c.connect("a", "b"));
  const Term g("g"_atom);
  const Pid pb = member(c.rt("b"));
  ASSERT_TRUE(pg::join(c.rt("b"), kPg, g, {pb}).ok());
  ASSERT_TRUE(c.settle());
  const Pid a_scope = *c.rt("a").whereis(kPg);
  const Pid b_scope = *c.rt("b").whereis(kPg);
  Runtime& b = c.rt("b");
  const Pid third{Atom("z@sim"), 7, 0, 1};
  const Pid a_member = member(c.rt("a"));
  for (const Term& bad : {
           T("hello_garbage"),
           Term::tuple({Term("leave"_atom), Term(b_scope), Term(pb), T("[never_announced]")}),  // OTP: badkey
           Term::tuple({Term("join"_atom), Term(b_scope), g, Term(third)}),       // pids of another node
           Term::tuple({Term("join"_atom), Term(b_scope), g, T("[not_a_pid]")}),
           Term::tuple({Term("join"_atom), Term(b_scope), g, Term(a_member)}),    // a's own pid, claimed by b
           Term::tuple({Term("$gen_cast"_atom), Term::tuple({Term("sync"_atom), Term(b_scope), T("bad")})}),
           Term::tuple({Term("$gen_cast"_atom), Term::tuple({Term("sync"_atom), Term(b_scope),
                                                              Term::list({Term::tuple({g, Term::list({Term(third)})})})})}),
           Term::tuple({Term("discover"_atom), T("not_a_pid")}),
       })
    b.send(a_scope, bad);
  ASSERT_TRUE(c.settle());
  EXPECT_TRUE(c.rt("a").alive(a_scope));
  EXPECT_EQ(members("a", g), pids({pb}));  // b's real member is still there, nothing else
  // A join from a pid that never discovered the scope is ignored, as in OTP.
  b.send(a_scope, Term::tuple({Term("join"_atom), Term(member(b)), g, Term(member(b))}));
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(members("a", g), pids({pb}));
  // And the scope still works.
  const Pid pb2 = member(b);
  ASSERT_TRUE(pg::join(b, kPg, g, {pb2}).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(members("a", g), pids({pb2, pb}));
}

TEST_F(Pg, ScopesAreSeparateAndStartFromTheClusterOptions) {
  c.start("a", {}, {.pg_scopes = {kPg, Atom("other")}});
  c.start("b", {}, {.pg_scopes = {Atom("other")}});
  ASSERT_TRUE(c.connect("a", "b"));
  EXPECT_FALSE(c.rt("b").whereis(kPg));
  const Pid pb = member(c.rt("b"));
  ASSERT_TRUE(pg::join(c.rt("b"), Atom("other"), Term(1), {pb}).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(pg::get_members(c.rt("a"), Atom("other"), Term(1)), pids({pb}));
  EXPECT_TRUE(members("a", Term(1)).empty());
}

TEST_F(Pg, AScopeThatIsRestartedRejoinsTheOverlay) {
  c.start("a");
  c.start("b");
  ASSERT_TRUE(c.connect("a", "b"));
  const Pid pa = member(c.rt("a"));
  ASSERT_TRUE(pg::join(c.rt("a"), kPg, Term(1), {pa}).ok());
  ASSERT_TRUE(c.settle());
  // b's scope dies: its supervisor starts a new one, which discovers a again; a keeps its members.
  c.rt("b").exit(*c.rt("b").whereis(kPg), Term("kill"_atom));
  ASSERT_TRUE(c.settle());
  ASSERT_TRUE(c.rt("b").whereis(kPg));
  EXPECT_EQ(members("b", Term(1)), pids({pa}));
  const Pid pb = member(c.rt("b"));
  ASSERT_TRUE(pg::join(c.rt("b"), kPg, Term(1), {pb}).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(members("a", Term(1)), pids({pb, pa}));
}

}  // namespace
}  // namespace hypha
