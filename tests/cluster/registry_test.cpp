// The cluster registry between hypha nodes on the deterministic harness: read your writes, one
// sync interval to the others, exits and nodedowns, conflicts after a partition heals, a member
// that was away, lost frames, memory that does not grow with history.
#include "hypha/cluster/registry.hpp"

#include <gtest/gtest.h>

#include "hypha/process/mailbox.hpp"
#include "sim_cluster.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;
using testing::T;

// A process that waits until it gets `stop` (then ends normal).
Pid holder(Runtime& rt) {
  return rt.spawn([](Process& self) -> Task<> {
    for (;;) {
      Term m = co_await self.receive();
      if (m.is_atom(Atom("stop"))) co_return;
    }
  });
}

bool is(const Result<bool, Term>& r, bool v) { return r.ok() && *r == v; }

class Registry : public ::testing::Test {
 protected:
  testing::SimCluster c;
  Node& start(const std::string& n, registry::Options ro = {}) {
    cluster::Options co;
    co.registry = ro;
    return c.start(n, {}, co);
  }
  // Every pair connected and settled.
  void mesh(std::initializer_list<const char*> names) {
    std::vector<std::string> v(names.begin(), names.end());
    for (std::size_t i = 0; i < v.size(); ++i)
      for (std::size_t j = i + 1; j < v.size(); ++j) ASSERT_TRUE(c.connect(v[i], v[j]));
    ASSERT_TRUE(c.settle());
  }
  std::optional<Pid> where(const std::string& n, const Term& name) { return registry::whereis(c.rt(n), name); }
  // Moves simulated time past one sync interval (and settles).
  void sync() { ASSERT_TRUE(c.net->advance(60ms)); }
};

TEST_F(Registry, ARegistrationIsReadHereAtOnceAndOnTheOthersWithinASyncInterval) {
  start("a"), start("b"), start("c");
  mesh({"a", "b", "c"});
  const Pid p = holder(c.rt("a"));
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("{job,1}"), p, T("#{kind => worker}")).ok());
  EXPECT_EQ(where("a", T("{job,1}")), p);  // read your writes: no sync needed
  ASSERT_TRUE(c.settle());  // the first change goes out at once
  EXPECT_EQ(where("b", T("{job,1}")), p);
  EXPECT_EQ(where("c", T("{job,1}")), p);
  // The next ones, within the interval, go together when it ends.
  const Pid q = holder(c.rt("b"));
  ASSERT_TRUE(registry::register_name(c.rt("b"), T("{job,2}"), q).ok());
  ASSERT_TRUE(registry::register_name(c.rt("b"), T("{job,3}"), q).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(where("a", T("{job,2}")), q);
  EXPECT_FALSE(where("a", T("{job,3}")));  // waits for the interval
  sync();
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_EQ(where(n, T("{job,3}")), q) << n;
    EXPECT_EQ(registry::count(c.rt(n)), 3u) << n;
    EXPECT_EQ(registry::lookup(c.rt(n), T("{job,1}"))->meta, T("#{kind => worker}")) << n;
    EXPECT_EQ(registry::names_of(c.rt(n), q), (std::vector<Term>{T("{job,2}"), T("{job,3}")})) << n;
    auto sel = registry::select(c.rt(n), T("{job,'_'}"));
    ASSERT_EQ(sel.size(), 3u) << n;
    EXPECT_EQ(sel[0].pid, p);
    EXPECT_EQ(registry::select(c.rt(n), T("{job,2}")).size(), 1u);
    EXPECT_TRUE(registry::select(c.rt(n), T("{other,'_'}")).empty());
    EXPECT_EQ(registry::stats(c.rt(n)).members, 2u) << n;
  }
}

TEST_F(Registry, ANameHeldAnywhereIsRefusedWithItsHolder) {
  start("a"), start("b");
  mesh({"a", "b"});
  const Pid p = holder(c.rt("a")), q = holder(c.rt("b"));
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("x"), p).ok());
  ASSERT_TRUE(c.settle());
  auto r = registry::register_name(c.rt("b"), T("x"), q);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Term::tuple({"already_registered"_atom, Term(p)}));
  auto again = registry::register_name(c.rt("a"), T("x"), q);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), Term::tuple({"already_registered"_atom, Term(p)}));
}

TEST_F(Registry, UnregisterAndUpdateMetaWorkFromAnyMember) {
  start("a"), start("b");
  mesh({"a", "b"});
  const Pid p = holder(c.rt("a"));
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("x"), p, T("1")).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_TRUE(is(registry::update_meta(c.rt("b"), T("x"), T("2")), true));  // goes to a's registry
  sync();
  EXPECT_EQ(registry::lookup(c.rt("a"), T("x"))->meta, T("2"));
  EXPECT_EQ(registry::lookup(c.rt("b"), T("x"))->meta, T("2"));
  EXPECT_TRUE(is(registry::update_meta(c.rt("b"), T("nobody"), T("2")), false));
  EXPECT_TRUE(is(registry::unregister_name(c.rt("b"), T("x")), true));
  sync();
  EXPECT_FALSE(where("a", T("x")));
  EXPECT_FALSE(where("b", T("x")));
  EXPECT_TRUE(is(registry::unregister_name(c.rt("b"), T("x")), false));
}

TEST_F(Registry, AProcessThatExitsLosesItsNamesEverywhere) {
  start("a"), start("b");
  mesh({"a", "b"});
  const Pid p = holder(c.rt("a"));
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("x"), p).ok());
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("y"), p).ok());
  sync();
  ASSERT_EQ(registry::count(c.rt("b")), 2u);
  c.rt("a").send(p, T("stop"));
  ASSERT_TRUE(c.settle());
  sync();
  for (const char* n : {"a", "b"}) EXPECT_EQ(registry::count(c.rt(n)), 0u) << n;
  // A process of another node, registered here, too.
  const Pid q = holder(c.rt("b"));
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("z"), q).ok());
  sync();
  EXPECT_EQ(where("b", T("z")), q);
  c.rt("b").send(q, T("stop"));
  ASSERT_TRUE(c.settle());
  sync();
  for (const char* n : {"a", "b"}) EXPECT_FALSE(where(n, T("z"))) << n;
}

TEST_F(Registry, TheNamesOfAMemberThatGoesDownLeaveEverywhere) {
  start("a"), start("b"), start("c");
  mesh({"a", "b", "c"});
  ASSERT_TRUE(registry::register_name(c.rt("c"), T("x"), holder(c.rt("c"))).ok());
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("y"), holder(c.rt("a"))).ok());
  sync();
  ASSERT_EQ(registry::count(c.rt("b")), 2u);
  c.net->cut(c.name("c"), c.name("a"));
  c.net->cut(c.name("c"), c.name("b"));
  ASSERT_TRUE(c.settle());
  for (const char* n : {"a", "b"}) {
    EXPECT_FALSE(where(n, T("x"))) << n;
    EXPECT_TRUE(where(n, T("y"))) << n;
    EXPECT_EQ(registry::stats(c.rt(n)).members, 1u) << n;
  }
  // c keeps its own (it still runs them) and forgets a's.
  EXPECT_TRUE(where("c", T("x")));
  EXPECT_FALSE(where("c", T("y")));
}

// Both sides of a partition register one name; when it heals the older registration holds it on
// every node, and the other process gets {name_conflict, Name, Winner}.
TEST_F(Registry, AfterAPartitionHealsTheOlderRegistrationWinsEverywhere) {
  start("a"), start("b"), start("c");
  mesh({"a", "b", "c"});
  c.net->cut(c.name("a"), c.name("b"));
  c.net->cut(c.name("a"), c.name("c"));
  ASSERT_TRUE(c.settle());
  Mailbox watch = c.rt("a").mailbox();
  Mailbox watch_b = c.rt("b").mailbox();
  const Pid older = holder(c.rt("b"));
  ASSERT_TRUE(registry::register_name(c.rt("b"), T("leader"), older).ok());
  ASSERT_TRUE(c.net->advance(5ms));
  const Pid younger = holder(c.rt("a"));  // a does not know: it takes the name too
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("leader"), younger).ok());
  watch.monitor(younger);
  watch_b.monitor(older);
  sync();
  EXPECT_EQ(where("a", T("leader")), younger);
  EXPECT_EQ(where("c", T("leader")), older);
  c.net->heal_all();
  ASSERT_TRUE(c.connect("a", "b"));
  ASSERT_TRUE(c.connect("a", "c"));
  sync();
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(where(n, T("leader")), older) << n;
  auto down = watch.receive(1s);
  ASSERT_TRUE(down);
  EXPECT_EQ((*down)[4], Term::tuple({"name_conflict"_atom, T("leader"), Term(older)}));
  EXPECT_FALSE(watch_b.receive(0ms));  // the winner lives on
  // Every node agrees there is one entry for it.
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(registry::count(c.rt(n)), 1u) << n;
}

TEST_F(Registry, AMemberThatWasAwayConvergesAndTombstonesDoNotStay) {
  start("a"), start("b"), start("c");
  mesh({"a", "b", "c"});
  std::vector<Pid> ps;
  for (int i = 0; i < 20; ++i) {
    ps.push_back(holder(c.rt("a")));
    ASSERT_TRUE(registry::register_name(c.rt("a"), Term(i), ps.back()).ok());
  }
  sync();
  ASSERT_EQ(registry::count(c.rt("c")), 20u);
  c.net->cut(c.name("c"), c.name("a"));
  c.net->cut(c.name("c"), c.name("b"));
  ASSERT_TRUE(c.settle());
  // While c is away: half go, others come, a name changes hands.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(is(registry::unregister_name(c.rt("a"), Term(i)), true));
  for (int i = 20; i < 25; ++i) ASSERT_TRUE(registry::register_name(c.rt("b"), Term(i), holder(c.rt("b"))).ok());
  sync();
  c.net->heal_all();
  ASSERT_TRUE(c.connect("c", "a"));
  ASSERT_TRUE(c.connect("c", "b"));
  sync();
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_EQ(registry::count(c.rt(n)), 15u) << n;
    EXPECT_FALSE(where(n, Term(3))) << n;
    EXPECT_EQ(where(n, Term(12)), ps[12]) << n;
    EXPECT_TRUE(where(n, Term(22))) << n;
    EXPECT_EQ(registry::stats(c.rt(n)).log, 0u) << n;  // every member was sent everything
  }
}

TEST_F(Registry, MemoryIsBoundedByLiveNamesNotByHistory) {
  start("a"), start("b");
  mesh({"a", "b"});
  const Pid p = holder(c.rt("a"));
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(registry::register_name(c.rt("a"), T("churn"), p).ok());
    ASSERT_TRUE(is(registry::unregister_name(c.rt("a"), T("churn")), true));
  }
  sync();
  for (const char* n : {"a", "b"}) {
    EXPECT_EQ(registry::stats(c.rt(n)).names, 0u) << n;
    EXPECT_EQ(registry::stats(c.rt(n)).log, 0u) << n;
  }
}

TEST_F(Registry, ManyHoldersThatExitTogetherLeaveEverywhere) {
  start("a"), start("b");
  mesh({"a", "b"});
  std::vector<Pid> ps;
  for (int i = 0; i < 5000; ++i) {
    ps.push_back(holder(c.rt("a")));
    ASSERT_TRUE(registry::register_name(c.rt("a"), Term(i), ps.back()).ok());
  }
  const Pid stays = holder(c.rt("a"));
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("stays"), stays).ok());
  sync();
  ASSERT_EQ(registry::count(c.rt("b")), 5001u);
  for (const Pid& p : ps) c.rt("a").send(p, T("stop"));
  ASSERT_TRUE(c.settle());
  sync();
  for (const char* n : {"a", "b"}) {
    EXPECT_EQ(registry::count(c.rt(n)), 1u) << n;
    EXPECT_EQ(where(n, T("stays")), stays) << n;
  }
}

TEST_F(Registry, AStaticMemberListKeepsOtherRegistriesOut) {
  registry::Options only_ab;
  only_ab.members = {c.name("a"), c.name("b")};
  start("a", only_ab), start("b", only_ab), start("c");  // c runs one too, and is not listed
  mesh({"a", "b", "c"});
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("x"), holder(c.rt("a"))).ok());
  ASSERT_TRUE(registry::register_name(c.rt("c"), T("y"), holder(c.rt("c"))).ok());
  sync();
  EXPECT_TRUE(where("b", T("x")));
  EXPECT_FALSE(where("b", T("y")));
  EXPECT_FALSE(where("c", T("x")));
  EXPECT_EQ(registry::stats(c.rt("a")).members, 1u);
  EXPECT_EQ(registry::stats(c.rt("c")).members, 0u);
}

TEST_F(Registry, ALostDeltaIsRepairedByAntiEntropy) {
  start("a"), start("b");
  mesh({"a", "b"});
  c.net->drop_next(c.name("a"), c.name("b"), 1);
  const Pid p = holder(c.rt("a"));
  ASSERT_TRUE(registry::register_name(c.rt("a"), T("x"), p).ok());
  sync();
  EXPECT_FALSE(where("b", T("x")));  // lost on the way
  ASSERT_TRUE(c.net->advance(1s));   // a says how far it sent; b asks again
  EXPECT_EQ(where("b", T("x")), p);
}

TEST_F(Registry, BeamShapedExportsServeTheViaCallbacks) {
  start("a"), start("b");
  mesh({"a", "b"});
  auto exports = std::make_shared<Exports>();
  registry::add_exports(*exports, c["a"]);
  const Pid p = holder(c.rt("b"));
  auto call = [&](const char* fun, std::vector<Term> args) {
    Mailbox done = c.rt("a").mailbox();
    const Pid to = done.pid();
    const Term arglist = Term::list(std::move(args));
    c.rt("a").spawn([exports, to, fun, arglist](Process& self) -> Task<> {
      Outcome o = co_await exports->apply(self, Atom("hypha_registry"), Atom(fun), arglist);
      self.send(to, o.ok() ? o.value : Term::tuple({"failed"_atom, o.value}));
    });
    auto m = done.receive(5s);
    return m ? *m : Term("timeout"_atom);
  };
  EXPECT_EQ(call("register_name", {T("svc"), Term(p)}), "yes"_atom);
  EXPECT_EQ(call("register_name", {T("svc"), Term(p)}), "no"_atom);
  EXPECT_EQ(call("whereis_name", {T("svc")}), Term(p));
  EXPECT_EQ(call("whereis_name", {T("nobody")}), "undefined"_atom);
  EXPECT_EQ(call("count", {}), Term(1));
  EXPECT_EQ(call("list", {}), Term::list({Term::tuple({T("svc"), Term(p)})}));
  EXPECT_EQ(call("unregister_name", {T("svc")}), "ok"_atom);
  EXPECT_EQ(call("whereis_name", {T("svc")}), "undefined"_atom);
  EXPECT_EQ(call("send", {T("svc"), T("hi")}), Term::tuple({"failed"_atom, T("{badarg,{svc,hi}}")}));
}

// A server that answers `ping` with {pong, ItsNode}.
class Echo final : public GenServer {
 public:
  Task<Action> handle_call(Process& self, const Term& req, const From&) override {
    if (req.is_atom(Atom("ping"))) co_return Action::reply(Term::tuple({"pong"_atom, Term(self.runtime().node())}));
    co_return Action::reply("what"_atom);
  }
};

TEST_F(Registry, AGenServerUnderAViaNameIsCalledFromAnyMemberAndRestartedUnderIt) {
  start("a"), start("b");
  mesh({"a", "b"});
  const ViaName billing = registry::via_name(T("{service, <<\"billing\">>}"));
  EXPECT_EQ(ServerRef(billing).to_term(), T("{via, hypha_registry, {service, <<\"billing\">>}}"));
  auto pid = gen_server::start(c.rt("a"), std::make_unique<Echo>(), {.via = billing});
  ASSERT_TRUE(pid.ok()) << pid.error().to_string();
  EXPECT_EQ(where("a", billing.name), *pid);  // registered before start returned
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(gen_server::call(c.rt("b"), billing, T("ping")).value(), T("{pong, 'a@sim'}"));
  // The name is taken cluster-wide: a second one does not start, on any node.
  auto again = gen_server::start(c.rt("b"), std::make_unique<Echo>(), {.via = billing});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), Term::tuple({"already_started"_atom, Term(*pid)}));
  // A call to a name nobody holds fails as a call to a dead server does.
  auto none = gen_server::call(c.rt("b"), registry::via_name(T("nobody")), T("ping"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error()[0], "noproc"_atom);
  c.rt("a").exit(*pid, T("kill"));
  sync();
  EXPECT_FALSE(where("b", billing.name));

  // A supervisor child made with ChildSpec::server under a via name: restarted, it holds the
  // name again, and a call from the other node reaches the new one.
  const ViaName worker = registry::via_name(T("worker"));
  std::vector<ChildSpec> kids;
  kids.push_back(ChildSpec::server(T("w"), [] { return std::make_unique<Echo>(); }, {.via = worker}));
  auto sup = supervisor::start(c.rt("b"), {}, std::move(kids), {.via = registry::via_name(T("workers"))});
  ASSERT_TRUE(sup.ok());
  EXPECT_EQ(where("b", T("workers")), *sup);  // the supervisor is under a via name too
  sync();
  const auto first = where("a", worker.name);
  ASSERT_TRUE(first);
  c.rt("b").exit(*first, T("kill"));
  ASSERT_TRUE(c.net->run_until([&] { auto w = where("a", worker.name); return w && *w != *first; }, 1s));
  EXPECT_EQ(gen_server::call(c.rt("a"), worker, T("ping")).value(), T("{pong, 'b@sim'}"));
}

}  // namespace
}  // namespace hypha
