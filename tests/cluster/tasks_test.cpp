// Unique cluster tasks between hypha nodes on the deterministic harness: one run per name, the
// statuses and results, callbacks, cleanup, the orchestrator moving when its node goes silent,
// a task's node going (failed, or started again with restart), and the double. Runs are counted
// by an export that every node shares (one process, so one counter), not judged by eye.
#include "hypha/cluster/tasks.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "hypha/otp/blocking.hpp"
#include "hypha/base/metrics.hpp"
#include "log_capture.hpp"
#include "sim_cluster.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;
using testing::T;

// What the test exports saw: runs per name, how many of a name ran at once at most, callbacks.
struct Seen {
  std::mutex mu;
  std::map<Term, int> runs, now, most;
  std::vector<std::pair<Term, Term>> callbacks;
  std::set<Atom> nodes_ran_on;
};

std::shared_ptr<Exports> test_exports(std::shared_ptr<Seen> seen) {
  auto ex = std::make_shared<Exports>();
  // work:run(Key, Ms): counts the run, sleeps, returns {ran, Key}.
  ex->add("work", "run", [seen](Process& self, Term key, std::int64_t ms) -> Task<Term> {
    {
      std::lock_guard l(seen->mu);
      ++seen->runs[key];
      seen->most[key] = std::max(seen->most[key], ++seen->now[key]);
      seen->nodes_ran_on.insert(self.pid().node);
    }
    struct Done {
      std::shared_ptr<Seen> s;
      Term k;
      ~Done() {
        std::lock_guard l(s->mu);
        --s->now[k];
      }
    } done{seen, key};
    co_await self.sleep(std::chrono::milliseconds(ms));
    co_return Term::tuple({"ran"_atom, key});
  });
  // work:steps(Key, N, StepMs): N steps of StepMs, reporting progress after each; returns N.
  ex->add("work", "steps", [seen](Process& self, Term key, std::int64_t n, std::int64_t ms) -> Task<Term> {
    {
      std::lock_guard l(seen->mu);
      ++seen->runs[key];
    }
    for (std::int64_t i = 1; i <= n; ++i) {
      co_await self.sleep(std::chrono::milliseconds(ms));
      tasks::progress(self, static_cast<int>(i * 100 / n));
    }
    co_return Term(n);
  });
  ex->add("work", "noted", [seen](Term name, Term result) {
    std::lock_guard l(seen->mu);
    seen->callbacks.emplace_back(name, result);
  });
  return ex;
}

class ClusterTasks : public ::testing::Test {
 protected:
  testing::SimCluster c;
  std::vector<std::string> names;
  std::shared_ptr<Seen> seen = std::make_shared<Seen>();
  std::shared_ptr<tasks::Service> svc = tasks::cluster_service();

  Node& start(const std::string& n, tasks::Options to = {}, dsup::Options so = {}) {
    cluster::Options co;
    co.registry = registry::Options{};
    co.supervisor = so;
    co.tasks = to;
    names.push_back(n);
    return c.start(n, {}, co, test_exports(seen));
  }
  void mesh() {
    for (std::size_t i = 0; i < names.size(); ++i)
      for (std::size_t j = i + 1; j < names.size(); ++j) ASSERT_TRUE(c.connect(names[i], names[j]));
    ASSERT_TRUE(c.settle());
  }
  // The orchestrator is up (registered, answering) as every node sees it.
  bool orchestrator_up() {
    return c.net->run_until([&] {
      return std::all_of(names.begin(), names.end(), [&](const std::string& n) { return svc->list(c.rt(n)).ok(); });
    }, 5s);
  }
  std::optional<Pid> orchestrator(const std::string& n) {
    return registry::whereis(c.rt(n), Term(tasks::orchestrator_name()));
  }
  Term bin(const std::string& s) { return Term::binary(s); }
  Result<std::pair<Term, Pid>, Term> run(const std::string& on, const std::string& name, std::int64_t ms,
                                         tasks::StartOptions o = {}) {
    o.name = bin(name);
    return svc->start_async(c.rt(on), "work"_a, "run"_a, Term::list({bin(name), Term(ms)}), o);
  }
  tasks::Status::Kind status(const std::string& on, const std::string& name) {
    return svc->get_status(c.rt(on), bin(name)).kind;
  }
  int runs(const std::string& name) {
    std::lock_guard l(seen->mu);
    return seen->runs[bin(name)];
  }
  int most_at_once(const std::string& name) {
    std::lock_guard l(seen->mu);
    return seen->most[bin(name)];
  }
};

using K = tasks::Status::Kind;

TEST_F(ClusterTasks, ANamedTaskRunsOnceItsStatusGoesRunningThenDoneAndADuplicateIsRefused) {
  start("a"), start("b"), start("c");
  mesh();
  ASSERT_TRUE(orchestrator_up());
  auto r = run("b", "job1", 200);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->first, bin("job1"));
  EXPECT_EQ(svc->get_status(c.rt("c"), bin("job1")).to_term(), Term::tuple({"running"_atom, bin("job1")}));
  // The same name from any node while it runs: refused with the running pid.
  auto again = run("c", "job1", 200);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), Term::tuple({"running"_atom, Term(r->second)}));
  ASSERT_TRUE(c.net->run_until([&] { return status("a", "job1") == K::Done; }, 2s));
  EXPECT_EQ(svc->get_status(c.rt("a"), bin("job1")).to_term(), Term::tuple({"done"_atom, bin("job1")}));
  auto res = svc->result(c.rt("c"), bin("job1"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(*res, Term::tuple({"ran"_atom, bin("job1")}));
  EXPECT_EQ(runs("job1"), 1);
  // Unknown names; an unnamed task is called by a UUID (a binary).
  EXPECT_EQ(svc->get_status(c.rt("a"), bin("nope")).to_term(),
            Term::tuple({"error"_atom, Term::tuple({"distributed_task_not_found"_atom, bin("nope")})}));
  auto anon = svc->start_async(c.rt("a"), "timer"_a, "sleep"_a, Term::list({Term(10)}));
  ASSERT_TRUE(anon.ok());
  ASSERT_TRUE(anon->first.is_binary());
  const auto uuid = from_term<std::string>(anon->first);
  ASSERT_TRUE(uuid.ok());
  EXPECT_EQ(uuid->size(), 36u);  // 8-4-4-4-12 hex digits
  EXPECT_EQ((*uuid)[14], '4');   // version 4
  ASSERT_TRUE(c.net->run_until([&] { return svc->get_status(c.rt("b"), anon->first).kind == K::Done; }, 2s));
  auto all = svc->list(c.rt("b"));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
}

TEST_F(ClusterTasks, TasksSpreadOverTheMembersByTheHashOfTheirNames) {
  start("a"), start("b"), start("c");
  mesh();
  ASSERT_TRUE(orchestrator_up());
  std::set<Atom> where;
  for (int i = 0; i < 30; ++i) {
    auto r = run("a", "t" + std::to_string(i), 1000);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    where.insert(r->second.node);
  }
  EXPECT_EQ(where.size(), 3u);
  auto all = svc->list(c.rt("c"));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 30u);
  for (const auto& i : *all) {
    EXPECT_EQ(i.state, K::Running);
    EXPECT_EQ(i.node, i.pid.node);
  }
  ASSERT_TRUE(c.net->run_until([&] { return seen->nodes_ran_on.size() == 3; }, 1s));
}

TEST_F(ClusterTasks, AFailedTaskIsReportedFailedAndCallbacksGetTheResultOrTheExit) {
  start("a"), start("b");
  mesh();
  ASSERT_TRUE(orchestrator_up());
  tasks::StartOptions o{.name = bin("boom"), .callback = std::pair{"work"_a, "noted"_a}};
  ASSERT_TRUE(svc->start_async(c.rt("a"), "erlang"_a, "exit"_a, Term::list({"kaput"_atom}), o).ok());
  ASSERT_TRUE(run("a", "fine", 10, {.callback = std::pair{"work"_a, "noted"_a}}).ok());
  ASSERT_TRUE(c.net->run_until([&] {
    std::lock_guard l(seen->mu);
    return seen->callbacks.size() == 2;
  }, 2s));
  EXPECT_EQ(svc->get_status(c.rt("b"), bin("boom")).to_term(),
            Term::tuple({"error"_atom, Term::tuple({"distributed_task_failed"_atom, bin("boom")})}));
  auto res = svc->result(c.rt("b"), bin("boom"));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error(), Term::tuple({"distributed_task_failed"_atom, bin("boom"), "kaput"_atom}));
  std::map<Term, Term> got;
  {
    std::lock_guard l(seen->mu);
    for (auto& [n, r] : seen->callbacks) got[n] = r;
  }
  EXPECT_EQ(got[bin("boom")], Term::tuple({"EXIT"_atom, "kaput"_atom}));
  EXPECT_EQ(got[bin("fine")], Term::tuple({"ran"_atom, bin("fine")}));
}

TEST_F(ClusterTasks, FinishedNamesAreForgottenAfterTheCleanupTimeAndCanRunAgain) {
  start("a", {.cleanup = 1000ms}), start("b", {.cleanup = 1000ms});
  mesh();
  ASSERT_TRUE(orchestrator_up());
  ASSERT_TRUE(run("a", "once", 10).ok());
  ASSERT_TRUE(c.net->run_until([&] { return status("b", "once") == K::Done; }, 1s));
  // Started again while kept: a new run (the name is free once its task ended).
  ASSERT_TRUE(run("b", "once", 10).ok());
  ASSERT_TRUE(c.net->run_until([&] { return status("b", "once") == K::Done && runs("once") == 2; }, 1s));
  ASSERT_TRUE(c.net->advance(900ms));
  EXPECT_EQ(status("a", "once"), K::Done);
  ASSERT_TRUE(c.net->advance(200ms));
  EXPECT_EQ(status("a", "once"), K::NotFound);
  auto all = svc->list(c.rt("a"));
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(ClusterTasks, WhenTheOrchestratorsNodeGoesSilentASurvivorTakesOverWithTheResultsAndTheRunningTasks) {
  start("a"), start("b"), start("c");
  mesh();
  ASSERT_TRUE(orchestrator_up());
  const auto orch = orchestrator("a");
  ASSERT_TRUE(orch);
  std::string home;
  for (const char* n : {"a", "b", "c"})
    if (c.name(n) == orch->node) home = n;
  std::vector<std::string> others;
  for (const char* n : {"a", "b", "c"})
    if (n != home) others.push_back(n);
  // Finished tasks, and long ones running on the nodes that stay.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(run(others[0], "quick" + std::to_string(i), 1).ok());
  ASSERT_TRUE(c.net->run_until([&] {
    for (int i = 0; i < 10; ++i)
      if (status(others[0], "quick" + std::to_string(i)) != K::Done) return false;
    return true;
  }, 2s));
  std::vector<std::string> long_ones;
  for (int i = 0; long_ones.size() < 3 && i < 100; ++i) {
    auto r = run(others[0], "long" + std::to_string(i), 6000);
    ASSERT_TRUE(r.ok());
    if (r->second.node != orch->node) long_ones.push_back("long" + std::to_string(i));
  }
  ASSERT_EQ(long_ones.size(), 3u);
  ASSERT_TRUE(c.settle());
  c.net->isolate(c.name(home));
  const auto t0 = c.net->clock()->now();
  // Meanwhile: not available (no answer), then a new orchestrator on a survivor.
  ASSERT_TRUE(c.net->run_until([&] {
    auto o = orchestrator(others[1]);
    return o && o->node != c.name(home) && svc->list(c.rt(others[1])).ok();
  }, 10s));
  EXPECT_LE(c.net->clock()->now() - t0, 3s + 1s);  // detect time + one second
  for (int i = 0; i < 10; ++i) {
    auto res = svc->result(c.rt(others[1]), bin("quick" + std::to_string(i)));
    ASSERT_TRUE(res.ok()) << i;
    EXPECT_EQ(*res, Term::tuple({"ran"_atom, bin("quick" + std::to_string(i))}));
  }
  for (const auto& n : long_ones) EXPECT_EQ(status(others[1], n), K::Running) << n;
  ASSERT_TRUE(c.net->run_until([&] {
    return std::all_of(long_ones.begin(), long_ones.end(), [&](const std::string& n) { return status(others[0], n) == K::Done; });
  }, 10s));
  for (const auto& n : long_ones) EXPECT_EQ(runs(n), 1) << n;
}

TEST_F(ClusterTasks, ATaskWhoseNodeGoesFailsOrWithRestartRunsAgainOnASurvivor) {
  start("a"), start("b"), start("c");
  mesh();
  ASSERT_TRUE(orchestrator_up());
  const Atom orch_node = orchestrator("a")->node;
  // Tasks that land neither on the orchestrator's node nor on a: then that node is cut.
  std::string victim;
  for (const char* n : {"b", "c"})
    if (c.name(n) != orch_node) victim = n;
  ASSERT_FALSE(victim.empty());
  std::vector<std::string> plain, again;
  for (int i = 0; (plain.size() < 3 || again.size() < 3) && i < 200; ++i) {
    const std::string pn = "p" + std::to_string(i), rn = "r" + std::to_string(i);
    if (plain.size() < 3) {
      auto r = run("a", pn, 4000);
      ASSERT_TRUE(r.ok());
      if (r->second.node == c.name(victim)) plain.push_back(pn);
    }
    if (again.size() < 3) {
      auto r = run("a", rn, 4000, {.restart = true});
      ASSERT_TRUE(r.ok());
      if (r->second.node == c.name(victim)) again.push_back(rn);
    }
  }
  ASSERT_EQ(plain.size(), 3u);
  ASSERT_EQ(again.size(), 3u);
  ASSERT_TRUE(c.settle());
  c.net->isolate(c.name(victim));
  std::vector<std::string> alive;
  for (const char* n : {"a", "b", "c"})
    if (n != victim) alive.push_back(n);
  ASSERT_TRUE(c.net->run_until([&] {
    return std::all_of(plain.begin(), plain.end(), [&](const std::string& n) { return status("a", n) == K::Failed; });
  }, 10s));
  for (const auto& n : again) EXPECT_EQ(status("a", n), K::Running) << n;
  ASSERT_TRUE(c.net->run_until([&] {
    return std::all_of(again.begin(), again.end(), [&](const std::string& n) { return status("a", n) == K::Done; });
  }, 15s));
  for (const auto& n : again) {
    EXPECT_EQ(runs(n), 2) << n;  // the cut copy (uniform: it runs on, cut off), and one on a survivor
    auto all = svc->list(c.rt("a"));
    ASSERT_TRUE(all.ok());
    for (const auto& i : *all) {
      if (i.name == bin(n)) {
        EXPECT_NE(i.node, c.name(victim)) << n;
      }
    }
  }
  for (const auto& n : plain) {
    auto res = svc->result(c.rt("a"), bin(n));
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.error(), Term::tuple({"distributed_task_failed"_atom, bin(n), "noconnection"_atom}));
  }
}

// Quorum: the cut-off node stops its copy (its lease ran out) before the majority starts one:
// every task ran at most once at a time. Uniform: both sides run one, and the heal keeps one,
// which the orchestrator follows to its end.
TEST_F(ClusterTasks, AcrossAPartitionQuorumRunsOneCopyAtATimeAndUniformKeepsOneAfterTheHeal) {
  for (const auto dist : {dsup::Distribution::Quorum, dsup::Distribution::Uniform}) {
    SCOPED_TRACE(dist == dsup::Distribution::Quorum ? "quorum" : "uniform");
    testing::SimCluster cl;
    auto seen_here = std::make_shared<Seen>();
    std::vector<std::string> ns{"a", "b", "c"};
    for (const auto& n : ns) {
      cluster::Options co;
      co.registry = registry::Options{};
      co.supervisor = dsup::Options{.distribution = dist};
      co.tasks = tasks::Options{};
      cl.start(n, {}, co, test_exports(seen_here));
    }
    ASSERT_TRUE(cl.connect("a", "b") && cl.connect("a", "c") && cl.connect("b", "c"));
    ASSERT_TRUE(cl.net->run_until([&] {
      return std::all_of(ns.begin(), ns.end(), [&](const std::string& n) { return svc->list(cl.rt(n)).ok(); });
    }, 5s));
    const Atom orch_node = registry::whereis(cl.rt("a"), Term(tasks::orchestrator_name()))->node;
    std::string victim = cl.name("c") != orch_node ? "c" : "b";
    std::vector<Term> on_victim;
    for (int i = 0; on_victim.size() < 3 && i < 100; ++i) {
      const Term name = bin("q" + std::to_string(i));
      auto r = svc->start_async(cl.rt("a"), "work"_a, "run"_a, Term::list({name, Term(10000)}), {.name = name, .restart = true});
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      if (r->second.node == cl.name(victim)) on_victim.push_back(name);
    }
    ASSERT_EQ(on_victim.size(), 3u);
    ASSERT_TRUE(cl.settle());
    cl.net->isolate(cl.name(victim));
    ASSERT_TRUE(cl.net->advance(6s));  // detected, restarted on the majority
    cl.net->heal_all();
    ASSERT_TRUE(cl.net->advance(8s));  // attempts made during the partition time out
    ASSERT_TRUE(cl.connect(victim, "a"));
    ASSERT_TRUE(cl.connect(victim, victim == "b" ? "c" : "b"));
    ASSERT_TRUE(cl.net->run_until([&] {
      return std::all_of(on_victim.begin(), on_victim.end(),
                         [&](const Term& n) { return svc->get_status(cl.rt("a"), n).kind == K::Done; });
    }, 20s));
    std::lock_guard l(seen_here->mu);
    for (const Term& n : on_victim) {
      EXPECT_EQ(seen_here->runs[n], 2) << n.to_string();  // the first copy, and the majority's
      if (dist == dsup::Distribution::Quorum) {
        EXPECT_EQ(seen_here->most[n], 1) << n.to_string();
      } else {
        EXPECT_EQ(seen_here->most[n], 2) << n.to_string();  // uniform: both sides ran one
      }
    }
  }
}

TEST_F(ClusterTasks, AStoppedTaskIsTerminatedWhereverItRunsIsNotRestartedAndFailsWithReasonStopped) {
  start("a"), start("b"), start("c");
  mesh();
  ASSERT_TRUE(orchestrator_up());
  auto r = run("a", "long", 600000, {.restart = true});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_TRUE(c.net->run_until([&] { return runs("long") == 1; }, 2s));
  // Stopped from a node that is neither the task's nor (necessarily) the orchestrator's.
  std::string other;
  for (const auto& n : names)
    if (c.name(n) != r->second.node) other = n;
  auto st = svc->stop(c.rt(other), bin("long"));
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(*st, tasks::Stopped::Stopped);
  EXPECT_EQ(status("a", "long"), K::Failed);
  EXPECT_EQ(svc->result(c.rt("b"), bin("long")).error(),
            Term::tuple({"distributed_task_failed"_atom, bin("long"), "stopped"_atom}));
  ASSERT_TRUE(c.net->run_until([&] { return !c.rt(other).alive(r->second); }, 2s));
  {
    std::lock_guard l(seen->mu);
    EXPECT_EQ(seen->now[bin("long")], 0);  // its process ended
  }
  // restart = true does not bring a stopped task back.
  c.net->advance(3s);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(runs("long"), 1);
  for (const auto& ch : dsup::which_children(c.rt("b"))) EXPECT_NE(ch.id, Term::tuple({"hypha_task"_atom, bin("long")}));
  // An ended task: stop forgets it, and then it is not found; its name is free.
  auto again = svc->stop(c.rt("c"), bin("long"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, tasks::Stopped::Forgotten);
  EXPECT_EQ(status("b", "long"), K::NotFound);
  EXPECT_EQ(svc->stop(c.rt("a"), bin("long")).error(), Term::tuple({"distributed_task_not_found"_atom, bin("long")}));
  ASSERT_TRUE(run("b", "long", 10).ok());
  ASSERT_TRUE(c.net->run_until([&] { return status("c", "long") == K::Done; }, 2s));
  EXPECT_EQ(runs("long"), 2);
}

TEST_F(ClusterTasks, ProgressATaskReportsShowsInListAndInfoWithItsTimesAndResult) {
  start("a"), start("b");
  mesh();
  ASSERT_TRUE(orchestrator_up());
  auto r = svc->start_async(c.rt("a"), "work"_a, "steps"_a, Term::list({bin("p"), Term(4), Term(100)}),
                            {.name = bin("p")});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto progress_of = [&](const std::string& on) -> std::optional<int> {
    auto all = svc->list(c.rt(on));
    if (!all) return std::nullopt;
    for (const auto& i : *all)
      if (i.name == bin("p")) return i.progress;
    return std::nullopt;
  };
  auto i0 = svc->info(c.rt("b"), bin("p"));
  ASSERT_TRUE(i0.ok());
  EXPECT_EQ(i0->state, K::Running);
  EXPECT_FALSE(i0->progress.has_value());  // nothing reported yet
  EXPECT_GT(i0->started_ms, 0);
  EXPECT_EQ(i0->ended_ms, 0);
  EXPECT_EQ(i0->result, "undefined"_atom);
  ASSERT_TRUE(c.net->run_until([&] { return progress_of("b") == 50; }, 2s));
  ASSERT_TRUE(c.net->run_until([&] { return status("a", "p") == K::Done; }, 2s));
  auto i1 = svc->info(c.rt("a"), bin("p"));
  ASSERT_TRUE(i1.ok());
  EXPECT_EQ(i1->progress, 100);
  EXPECT_EQ(i1->result, Term(4));
  EXPECT_GE(i1->ended_ms - i1->started_ms, 400);
  EXPECT_EQ(svc->info(c.rt("a"), bin("q")).error(), Term::tuple({"distributed_task_not_found"_atom, bin("q")}));
  // Counted where it ran, its duration (400 ms of simulated time) in the histogram.
  const std::string where(i1->node.text());
  EXPECT_GE(metrics::registry().value("hypha_tasks_finished_total", {{"node", where}, {"outcome", "done"}}), 1);
  const std::string text = metrics::registry().prometheus();
  EXPECT_NE(text.find("hypha_task_duration_seconds_bucket{node=\"" + where + "\",le=\"0.5\"}"), std::string::npos);
}

TEST_F(ClusterTasks, WithoutAnOrchestratorCallsSayNotAvailable) {
  cluster::Options co;
  co.registry = registry::Options{};
  c.start("solo", {}, co);  // a registry, no supervisor and no tasks
  EXPECT_EQ(svc->get_status(c.rt("solo"), bin("x")).to_term(),
            Term::tuple({"error"_atom, Term::tuple({"distributed_tasks_not_available"_atom, "orchestrator_not_running"_atom})}));
  auto r = svc->start_async(c.rt("solo"), "timer"_a, "sleep"_a, Term::list({Term(1)}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), tasks::unavailable());
}

TEST_F(ClusterTasks, MalformedMessagesToTheOrchestratorAndMembersAreDroppedAndTheyServeOn) {
  start("a"), start("b");
  mesh();
  ASSERT_TRUE(orchestrator_up());
  testing::LogCapture logs;
  const Pid orch = *orchestrator("a");
  block_on(c.rt("b"), [&](Process& self) -> Task<> {
    self.send(orch, T("{task_done, x, y, z, w, v}"));
    self.send(orch, Term::tuple({"task_done"_atom, Term(self.pid()), Term(self.make_ref()), bin("n"), T("weird"), T("none")}));
    self.send(orch, T("{tasks_merge, [{a, b}]}"));
    self.send(Atom("hypha_tasks_member"), c.name("a"), T("{tasks_update, [{put, {1,2,3}}]}"));
    self.send(Atom("hypha_tasks_member"), c.name("a"), T("{tasks_table, [garbage]}"));
    self.send(Atom("hypha_tasks_member"), c.name("a"), T("hello"));
    co_return;
  });
  ASSERT_TRUE(c.settle());
  EXPECT_TRUE(logs.wait_for({"event=tasks_message_dropped"}, 2s));
  ASSERT_TRUE(run("b", "after", 10).ok());
  ASSERT_TRUE(c.net->run_until([&] { return status("a", "after") == K::Done; }, 1s));
  EXPECT_TRUE(c.rt("a").alive(orch));
}

// The double an application tests against, with the cluster's shapes.
TEST(TasksFake, AnswersWithTheShapesAndRulesOfTheClusterService) {
  Runtime rt{RuntimeOptions{.threads = 1}};
  tasks::Fake fake;
  tasks::Service& svc = fake;
  auto r = svc.start_async(rt, "m"_a, "f"_a, T("[1]"), {.name = Term::binary("n")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, Term::binary("n"));
  EXPECT_EQ(svc.get_status(rt, Term::binary("n")).to_term(), Term::tuple({"running"_atom, Term::binary("n")}));
  auto dup = svc.start_async(rt, "m"_a, "f"_a, T("[2]"), {.name = Term::binary("n")});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error(), Term::tuple({"running"_atom, Term(r->second)}));
  fake.finish(Term::binary("n"), T("{ok, 42}"));
  EXPECT_EQ(svc.get_status(rt, Term::binary("n")).kind, K::Done);
  EXPECT_EQ(*svc.result(rt, Term::binary("n")), T("{ok, 42}"));
  auto anon = svc.start_async(rt, "m"_a, "g"_a, T("[]"));
  ASSERT_TRUE(anon.ok());
  fake.fail(anon->first, T("boom"));
  EXPECT_EQ(svc.get_status(rt, anon->first).to_term(),
            Term::tuple({"error"_atom, Term::tuple({"distributed_task_failed"_atom, anon->first})}));
  ASSERT_EQ(fake.started().size(), 2u);
  EXPECT_EQ(fake.started()[1].fun, "g"_a);
  fake.set_progress(anon->first, 140);
  EXPECT_EQ(svc.info(rt, anon->first)->progress, 100);
  EXPECT_EQ(svc.info(rt, anon->first)->result, T("boom"));
  auto third = svc.start_async(rt, "m"_a, "h"_a, T("[]"), {.name = Term::binary("t")});
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*svc.stop(rt, Term::binary("t")), tasks::Stopped::Stopped);
  EXPECT_EQ(svc.result(rt, Term::binary("t")).error(),
            Term::tuple({"distributed_task_failed"_atom, Term::binary("t"), "stopped"_atom}));
  EXPECT_EQ(*svc.stop(rt, Term::binary("t")), tasks::Stopped::Forgotten);
  EXPECT_EQ(svc.get_status(rt, Term::binary("t")).kind, K::NotFound);
  fake.set_unavailable(true);
  EXPECT_EQ(svc.get_status(rt, Term::binary("n")).kind, K::Unavailable);
  EXPECT_EQ(svc.start_async(rt, "m"_a, "f"_a, T("[]")).error(), tasks::unavailable());
}

}  // namespace
}  // namespace hypha
