// The distributed supervisor between hypha nodes on the deterministic harness: placement by the
// hash ring, ids unique in the cluster, restarts, failover when a member goes silent, a clean
// leave handing children over, and one copy after a partition heals. Every invariant is checked
// by counting live copies, not by eye.
#include "hypha/cluster/supervisor.hpp"

#include <gtest/gtest.h>

#include <set>

#include "hypha/base/metrics.hpp"
#include "log_capture.hpp"
#include "sim_cluster.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;
using testing::T;
using Clock = std::chrono::steady_clock;

dsup::ChildSpec sleeper(const std::string& id, Restart restart = Restart::Permanent, Term ms = Term(Atom("infinity"))) {
  return {.id = Term(Atom(id)), .module = Atom("timer"), .function = Atom("sleep"), .args = Term::list({ms}),
          .restart = restart};
}

class DistSup : public ::testing::Test {
 protected:
  testing::SimCluster c;
  std::vector<std::string> names;

  Node& start(const std::string& n, dsup::Options so = {}) {
    cluster::Options co;
    co.registry = registry::Options{};
    co.supervisor = so;
    names.push_back(n);
    return c.start(n, {}, co);
  }
  void mesh() {
    for (std::size_t i = 0; i < names.size(); ++i)
      for (std::size_t j = i + 1; j < names.size(); ++j) ASSERT_TRUE(c.connect(names[i], names[j]));
    ASSERT_TRUE(c.settle());
  }
  std::vector<dsup::Child> which(const std::string& n) { return dsup::which_children(c.rt(n)); }
  // Live processes holding each id, over every node still running.
  std::map<Term, int> live_copies(const std::vector<std::string>& on) {
    std::map<Term, int> out;
    for (const auto& n : on)
      for (const auto& ch : which(n))
        if (ch.node == c.name(n) && c.rt(n).alive(ch.pid)) ++out[ch.id];
    return out;
  }
  // Every node's view names the same pid for each id.
  bool views_agree(const std::vector<std::string>& on) {
    std::optional<std::vector<std::pair<Term, Pid>>> first;
    for (const auto& n : on) {
      std::vector<std::pair<Term, Pid>> v;
      for (const auto& ch : which(n)) v.emplace_back(ch.id, ch.pid);
      if (!first) first = v;
      else if (*first != v) return false;
    }
    return true;
  }
};

TEST_F(DistSup, ChildrenSpreadByTheHashAndEveryMemberSeesThem) {
  start("a"), start("b"), start("c");
  mesh();
  std::set<Atom> used;
  for (int i = 0; i < 30; ++i) {
    auto pid = dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i)));
    ASSERT_TRUE(pid.ok()) << pid.error().to_string();
    used.insert(pid->node);
  }
  EXPECT_EQ(used.size(), 3u);  // 30 ids over 3 members: each gets some
  ASSERT_TRUE(c.settle());
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(which(n).size(), 30u) << n;
  EXPECT_TRUE(views_agree({"a", "b", "c"}));
  for (const auto& [id, n] : live_copies({"a", "b", "c"})) EXPECT_EQ(n, 1) << id.to_string();
  EXPECT_EQ(live_copies({"a", "b", "c"}).size(), 30u);
  // The same id, through any member: refused with the running pid.
  const auto first = which("c").front();
  auto again = dsup::start_child(c.rt("b"), sleeper(std::string(first.id.atom_value().text())));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), Term::tuple({"already_started"_atom, Term(first.pid)}));
}

// hypha_supervisor_{restarts,failovers}_total of a node (the metrics registry is the test
// process's: compare before and after).
std::int64_t sup_metric(const char* name, Atom node) {
  const auto v = metrics::registry().value(name, {{"node", std::string(node.text())}, {"supervisor", "hypha_sup"}});
  return v < 0 ? 0 : v;
}

TEST_F(DistSup, RestartsFollowTheRestartKindAndIntensityGivesUpOneChildOnly) {
  start("a");
  const auto restarts0 = sup_metric("hypha_supervisor_restarts_total", c.name("a"));
  auto perm = dsup::start_child(c.rt("a"), sleeper("perm"));
  auto trans = dsup::start_child(c.rt("a"), sleeper("trans", Restart::Transient, Term(100)));
  auto temp = dsup::start_child(c.rt("a"), sleeper("temp", Restart::Temporary));
  ASSERT_TRUE(perm.ok() && trans.ok() && temp.ok());
  c.rt("a").exit(*perm, T("kill"));
  c.rt("a").exit(*temp, T("kill"));
  ASSERT_TRUE(c.net->advance(100ms));  // trans ends normal
  const auto kids = which("a");
  ASSERT_EQ(kids.size(), 1u);
  EXPECT_EQ(kids[0].id, T("perm"));
  EXPECT_NE(kids[0].pid, *perm);  // restarted
  // A child that fails at once: restarted `intensity` (3) times, then given up; perm stays.
  testing::LogCapture logs;
  auto crash = dsup::start_child(c.rt("a"), {.id = T("crash"), .module = Atom("erlang"), .function = Atom("exit"),
                                             .args = T("[boom]")});
  ASSERT_TRUE(crash.ok());
  ASSERT_TRUE(c.net->run_until([&] { return which("a").size() == 1; }, 1s));
  EXPECT_EQ(which("a")[0].id, T("perm"));
  EXPECT_TRUE(logs.wait_for({"event=supervisor_child_given_up", "id=crash", "restarts=4"}, 5s));
  EXPECT_EQ(sup_metric("hypha_supervisor_restarts_total", c.name("a")) - restarts0, 1 + 3);  // perm once, crash 3 times
}

TEST_F(DistSup, TheChildrenOfAMemberThatGoesSilentStartOnTheSurvivorsOnce) {
  start("a"), start("b"), start("c");
  mesh();
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i), i % 10 == 0 ? Restart::Temporary
                                                                                        : Restart::Permanent))
                    .ok());
  ASSERT_TRUE(c.settle());
  std::set<Term> on_b, temporary_on_b;
  for (const auto& ch : which("a"))
    if (ch.node == c.name("b")) (ch.restart == Restart::Temporary ? temporary_on_b : on_b).insert(ch.id);
  ASSERT_FALSE(on_b.empty());
  const auto failovers0 = sup_metric("hypha_supervisor_failovers_total", c.name("a")) +
                          sup_metric("hypha_supervisor_failovers_total", c.name("c"));
  c.net->isolate(c.name("b"));  // as a kill -9 or SIGSTOP looks from outside: silence
  const auto t0 = c.net->clock()->now();
  ASSERT_TRUE(c.net->run_until([&] {
    const auto copies = live_copies({"a", "c"});
    return std::all_of(on_b.begin(), on_b.end(), [&](const Term& id) { return copies.count(id) == 1; });
  }, 10s));
  // Within the detect time (3 s) plus the registry's own notice of the member going.
  EXPECT_LE(c.net->clock()->now() - t0, 3s + 100ms);
  ASSERT_TRUE(c.settle());
  const auto copies = live_copies({"a", "c"});
  for (const auto& [id, n] : copies) EXPECT_EQ(n, 1) << id.to_string();
  for (const Term& id : temporary_on_b) EXPECT_EQ(copies.count(id), 0u) << id.to_string();  // not restarted
  EXPECT_EQ(copies.size(), 30u - temporary_on_b.size());  // temporary ones elsewhere run on
  EXPECT_TRUE(views_agree({"a", "c"}));
  EXPECT_EQ(sup_metric("hypha_supervisor_failovers_total", c.name("a")) +
                sup_metric("hypha_supervisor_failovers_total", c.name("c")) - failovers0,
            static_cast<std::int64_t>(on_b.size()));
}

TEST_F(DistSup, AMemberThatLeavesCleanlyHandsItsChildrenOverFirst) {
  start("a"), start("b"), start("c");
  mesh();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i))).ok());
  ASSERT_TRUE(c.settle());
  std::size_t on_b = 0;
  for (const auto& ch : which("a")) on_b += ch.node == c.name("b");
  ASSERT_GT(on_b, 0u);
  cluster::stop(c["b"]);  // what hypha node does on SIGTERM, before the node stops
  // At once, not after the detect time: the handover came before b's supervisor went.
  ASSERT_TRUE(c.net->run_until([&] { return live_copies({"a", "c"}).size() == 20; }, 100ms));
  for (const auto& [id, n] : live_copies({"a", "c"})) EXPECT_EQ(n, 1) << id.to_string();
  c.stop("b");
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(live_copies({"a", "c"}).size(), 20u);
  EXPECT_TRUE(views_agree({"a", "c"}));
}

TEST_F(DistSup, AfterAPartitionHealsOneCopyOfEachChildRemains) {
  start("a"), start("b");
  mesh();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i))).ok());
  ASSERT_TRUE(c.settle());
  c.net->partition(c.name("a"), c.name("b"));
  ASSERT_TRUE(c.net->run_until([&] {
    return live_copies({"a"}).size() == 10 && live_copies({"b"}).size() == 10;
  }, 10s));  // each side runs every child
  c.net->heal(c.name("a"), c.name("b"));
  ASSERT_TRUE(c.net->advance(8s));  // connection attempts made during the partition time out
  ASSERT_TRUE(c.connect("a", "b"));
  ASSERT_TRUE(c.net->run_until([&] {
    const auto copies = live_copies({"a", "b"});
    return copies.size() == 10 && std::all_of(copies.begin(), copies.end(), [](const auto& e) { return e.second == 1; });
  }, 2s));
  ASSERT_TRUE(c.net->advance(100ms));
  for (const auto& [id, n] : live_copies({"a", "b"})) EXPECT_EQ(n, 1) << id.to_string();
  EXPECT_TRUE(views_agree({"a", "b"}));
  EXPECT_EQ(which("a").size(), 10u);
}

TEST_F(DistSup, TerminateChildStopsItWhereverItRuns) {
  start("a"), start("b");
  mesh();
  std::optional<Pid> on_b;
  for (int i = 0; i < 10 && !on_b; ++i) {
    auto p = dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i)));
    ASSERT_TRUE(p.ok());
    if (p->node == c.name("b")) on_b = *p;
  }
  ASSERT_TRUE(on_b);
  const Term id = [&] {
    for (const auto& ch : which("a"))
      if (ch.pid == *on_b) return ch.id;
    return Term();
  }();
  EXPECT_TRUE(dsup::terminate_child(c.rt("a"), id).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_FALSE(c.rt("b").alive(*on_b));
  for (const char* n : {"a", "b"})
    for (const auto& ch : which(n)) EXPECT_NE(ch.id, id) << n;
  auto none = dsup::terminate_child(c.rt("b"), id);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error(), T("not_found"));
}

// A restart that finds the id held by another process (a copy that lost a conflict and whose
// unregistration has not arrived, say) defers to it, and starts the child once that one ends;
// a transient child whose holder stopped cleanly is not started again.
TEST_F(DistSup, ARestartThatFindsItsIdHeldStartsTheChildOnceTheHolderEnds) {
  start("a"), start("b");
  mesh();
  for (auto [id, kind] : {std::pair{"perm", Restart::Permanent}, std::pair{"trans", Restart::Transient}}) {
    auto first = dsup::start_child(c.rt("a"), sleeper(id, kind));
    ASSERT_TRUE(first.ok()) << first.error().to_string();
    const std::string home = first->node == c.name("a") ? "a" : "b";
    // Another process takes the id's registry name, then the child crashes.
    const Term name = dsup::registered_as(Term(Atom(id)));
    const Pid holder = c.rt(home).spawn([](Process& self) -> Task<> {
      co_await self.receive([](const Term& m) { return m.is_atom(Atom("go")); });
    });
    ASSERT_TRUE(registry::unregister_name(c.rt(home), name).ok());
    ASSERT_TRUE(registry::register_name(c.rt(home), name, holder).ok());
    c.rt(home).exit(*first, Term(Atom("kill")));
    ASSERT_TRUE(c.settle());
    for (const auto& n : {"a", "b"})
      for (const auto& ch : which(n)) EXPECT_NE(ch.id, Term(Atom(id))) << n;  // deferred: not running
    // The holder ends: killed (the permanent one), or cleanly (the transient one, which stays ended).
    if (kind == Restart::Permanent) c.rt(home).exit(holder, Term(Atom("kill")));
    else c.rt(home).send(holder, Term(Atom("go")));
    ASSERT_TRUE(c.settle());
    c.net->advance(100ms);
    ASSERT_TRUE(c.settle());
    const auto copies = live_copies({"a", "b"});
    EXPECT_EQ(copies.count(Term(Atom(id))) ? copies.at(Term(Atom(id))) : 0, kind == Restart::Permanent ? 1 : 0) << id;
  }
}

// Quorum: a member cut off alone (1 of 3) stops its children and starts none; the majority runs
// them; when it is back, one copy of each, and it serves again.
TEST_F(DistSup, UnderQuorumAMinorityStopsItsChildrenAndTheMajorityRunsThem) {
  const dsup::Options q{.distribution = dsup::Distribution::Quorum};
  start("a", q), start("b", q), start("c", q);
  mesh();
  std::vector<Term> ids;
  for (int i = 0; i < 15; ++i) {
    ids.push_back(Term(Atom("job" + std::to_string(i))));
    ASSERT_TRUE(dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i))).ok());
  }
  ASSERT_TRUE(c.settle());
  std::size_t on_c = 0;
  for (const auto& ch : which("a")) on_c += ch.node == c.name("c");
  ASSERT_GT(on_c, 0u);
  c.net->isolate(c.name("c"));
  ASSERT_TRUE(c.net->run_until([&] { return live_copies({"a", "b"}).size() == 15 && live_copies({"c"}).empty(); }, 10s));
  for (const auto& [id, n] : live_copies({"a", "b"})) EXPECT_EQ(n, 1) << id.to_string();
  auto refused = dsup::start_child(c.rt("c"), sleeper("late"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), T("no_quorum"));
  c.net->heal_all();
  ASSERT_TRUE(c.net->advance(8s));  // connection attempts made during the partition time out
  ASSERT_TRUE(c.connect("c", "a"));
  ASSERT_TRUE(c.connect("c", "b"));
  ASSERT_TRUE(c.net->advance(100ms));
  for (const auto& [id, n] : live_copies({"a", "b", "c"})) EXPECT_EQ(n, 1) << id.to_string();
  EXPECT_EQ(live_copies({"a", "b", "c"}).size(), 15u);
  EXPECT_TRUE(views_agree({"a", "b", "c"}));
  EXPECT_TRUE(dsup::start_child(c.rt("c"), sleeper("late")).ok());
}

// Fencing: the minority stops its children (its lease of half the detect time ran out) before the
// majority declares it down and starts them, so at no moment do two copies of a child run.
TEST_F(DistSup, UnderQuorumTheMinorityStopsBeforeTheMajorityStartsNeverTwoCopiesAtOnce) {
  const dsup::Options q{.distribution = dsup::Distribution::Quorum};
  start("a", q), start("b", q), start("c", q);
  mesh();
  for (int i = 0; i < 15; ++i) ASSERT_TRUE(dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i))).ok());
  ASSERT_TRUE(c.settle());
  std::set<Term> on_c;
  for (const auto& ch : which("a"))
    if (ch.node == c.name("c")) on_c.insert(ch.id);
  ASSERT_FALSE(on_c.empty());
  testing::LogCapture logs;
  c.net->isolate(c.name("c"));
  const auto t0 = c.net->clock()->now();
  std::optional<Clock::duration> c_empty, all_back;
  int most = 0;
  for (int step = 0; step < 100 && !all_back; ++step) {  // 50 ms steps, 5 s
    ASSERT_TRUE(c.net->advance(50ms));
    const auto ab = live_copies({"a", "b"}), cc = live_copies({"c"});
    for (const Term& id : on_c) most = std::max(most, (ab.count(id) ? ab.at(id) : 0) + (cc.count(id) ? cc.at(id) : 0));
    if (!c_empty && cc.empty()) c_empty = c.net->clock()->now() - t0;
    if (std::all_of(on_c.begin(), on_c.end(), [&](const Term& id) { return ab.count(id) == 1; }))
      all_back = c.net->clock()->now() - t0;
  }
  ASSERT_TRUE(c_empty && all_back);
  EXPECT_EQ(most, 1);                    // never two at a time
  EXPECT_LE(*c_empty, 2s + 50ms);        // the lease (1.5 s) plus one check (0.5 s)
  EXPECT_LT(*c_empty, *all_back);
  EXPECT_LE(*all_back, 3s + 100ms);      // the majority: the detect time
  EXPECT_TRUE(logs.wait_for({"event=supervisor_lease_expired"}, 1s));
}

// A whole cluster that loses its majority (2 of 3 nodes gone) stops; when one comes back, the
// children stopped meanwhile start again, once.
TEST_F(DistSup, UnderQuorumChildrenStoppedInAMinorityStartAgainWhenAMajorityIsBack) {
  const dsup::Options q{.distribution = dsup::Distribution::Quorum};
  start("a", q), start("b", q), start("c", q);
  mesh();
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i))).ok());
  ASSERT_TRUE(c.settle());
  c.net->isolate(c.name("a"));
  c.net->isolate(c.name("b"));
  c.net->isolate(c.name("c"));
  ASSERT_TRUE(c.net->run_until([&] { return live_copies({"a", "b", "c"}).empty(); }, 10s));  // nobody has a majority
  c.net->heal(c.name("a"), c.name("b"));
  ASSERT_TRUE(c.net->advance(8s));
  ASSERT_TRUE(c.connect("a", "b"));
  ASSERT_TRUE(c.net->run_until([&] { return live_copies({"a", "b"}).size() == 9; }, 1s));
  for (const auto& [id, n] : live_copies({"a", "b"})) EXPECT_EQ(n, 1) << id.to_string();
}

// Quorum: children a minority parked that ended on the majority side meanwhile (transient
// children that finished) do not start again when the minority comes back; a later start of
// the same id is a new child and runs.
TEST_F(DistSup, UnderQuorumAParkedChildThatEndedOnTheMajoritySideIsNotStartedAgain) {
  const dsup::Options q{.distribution = dsup::Distribution::Quorum};
  start("a", q), start("b", q), start("c", q);
  mesh();
  for (int i = 0; i < 15; ++i)
    ASSERT_TRUE(dsup::start_child(c.rt("a"), sleeper("job" + std::to_string(i), Restart::Transient, Term(4000))).ok());
  ASSERT_TRUE(c.settle());
  std::size_t on_c = 0;
  for (const auto& ch : which("a")) on_c += ch.node == c.name("c");
  ASSERT_GT(on_c, 0u);
  c.net->isolate(c.name("c"));
  // The majority runs c's children again (after the detect time) and every child finishes there.
  bool all_back = false;
  ASSERT_TRUE(c.net->run_until([&] {
    const auto ab = live_copies({"a", "b"});
    all_back = all_back || ab.size() == 15;
    return all_back && ab.empty() && live_copies({"c"}).empty();
  }, 15s));
  c.net->heal_all();
  ASSERT_TRUE(c.net->advance(8s));
  ASSERT_TRUE(c.connect("c", "a"));
  ASSERT_TRUE(c.connect("c", "b"));
  for (int step = 0; step < 60; ++step) {  // 3 s in 50 ms steps: past the query's timeout
    ASSERT_TRUE(c.net->advance(50ms));
    ASSERT_TRUE(live_copies({"a", "b", "c"}).empty()) << "a finished child ran again, step " << step;
  }
  EXPECT_TRUE(views_agree({"a", "b", "c"}));
  // The id is free: starting it again is a new child.
  ASSERT_TRUE(dsup::start_child(c.rt("c"), sleeper("job0", Restart::Transient, Term(4000))).ok());
  ASSERT_TRUE(c.net->run_until([&] { return live_copies({"a", "b", "c"}).size() == 1; }, 1s));
}

// A node that joins: with active redistribution it gets the children the ring gives it (each
// still runs once); passive, children stay where they are.
TEST_F(DistSup, ANodeThatJoinsGetsItsShareOnlyWithActiveRedistribution) {
  for (const bool active : {false, true}) {
    testing::SimCluster cl;
    cluster::Options co;
    co.registry = registry::Options{};
    co.supervisor = dsup::Options{.active_redistribution = active};
    cl.start("a", {}, co), cl.start("b", {}, co);
    ASSERT_TRUE(cl.connect("a", "b"));
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(dsup::start_child(cl.rt("a"), sleeper("job" + std::to_string(i))).ok());
    ASSERT_TRUE(cl.settle());
    cl.start("c", {}, co);
    ASSERT_TRUE(cl.connect("c", "a"));
    ASSERT_TRUE(cl.connect("c", "b"));
    ASSERT_TRUE(cl.net->advance(100ms));  // registry retries of the moved ids
    std::map<Term, int> copies;
    std::size_t on_c = 0;
    for (const char* n : {"a", "b", "c"})
      for (const auto& ch : dsup::which_children(cl.rt(n)))
        if (ch.node == cl.name(n) && cl.rt(n).alive(ch.pid)) {
          ++copies[ch.id];
          on_c += std::string(n) == "c";
        }
    EXPECT_EQ(copies.size(), 30u) << active;
    for (const auto& [id, k] : copies) EXPECT_EQ(k, 1) << id.to_string();
    if (active) EXPECT_GT(on_c, 4u);  // about a third of 30
    else EXPECT_EQ(on_c, 0u);
  }
}

// What a broken or hostile member could send: logged and dropped; the supervisor serves on.
TEST_F(DistSup, MalformedMessagesFromPeersAreDroppedAndTheSupervisorServesOn) {
  start("a"), start("b");
  mesh();
  testing::LogCapture logs;
  const Pid sup = *c.rt("a").whereis(Atom("hypha_sup"));
  for (const char* bad : {"{hello, not_a_pid, []}", "{child_up, 1, 2, 3, 4, 5}", "{start_here, none, #{id => x}}",
                          "{start_here, none, #{id => x, start => {timer, sleep, not_a_list}}}", "{handover, 1, 2}",
                          "{move, 1, 2, 3}", "garbage", "{'$gen_call', {1, 2}, {start_child, 3}}"})
    c.rt("b").send(Atom("hypha_sup"), c.name("a"), T(bad));
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(*c.rt("a").whereis(Atom("hypha_sup")), sup);  // not restarted: it never crashed
  EXPECT_TRUE(logs.wait_for({"event=supervisor_message_dropped"}, 5s));
  auto bad_spec = dsup::start_child(c.rt("b"), {.id = T("x"), .module = Atom("timer"), .function = Atom("sleep"),
                                                .args = T("not_a_list")});
  ASSERT_FALSE(bad_spec.ok());
  EXPECT_EQ(bad_spec.error()[0], "bad_child_spec"_atom);
  EXPECT_TRUE(dsup::start_child(c.rt("b"), sleeper("after")).ok());
  EXPECT_EQ(which("a").size(), 1u);
}

}  // namespace
}  // namespace hypha
