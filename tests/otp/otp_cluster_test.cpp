// rpc and gen_server between C++ nodes over real loopback connections: values and failure shapes,
// multicall with a node down, a call across a lost connection, spawn_request's link and monitor.
#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.hpp"


#include "hypha/otp/blocking.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/otp/supervisor.hpp"
#include "hypha/otp/task.hpp"

namespace hypha {
namespace {

using testing::free_port;
using testing::T;

using namespace std::chrono_literals;
using namespace hypha::literals;


class OtpCluster : public ::testing::Test {
 protected:
  std::uint16_t epmd = free_port();
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::shared_ptr<Exports>> exports;  // each node's

  Node& start(const std::string& name) {
    auto exports = this->exports.emplace_back(std::make_shared<Exports>());
    exports->add("calc", "add", [](std::int64_t a, std::int64_t b) { return a + b; });
    exports->add("calc", "boom", []() -> Term { throw std::runtime_error("boom"); });
    // Tells `report_to` its pid, then waits for `release`: a call that ends when the test says.
    exports->add("calc", "hold", [](Process& self, Pid report_to) -> Task<Term> {
      self.send(report_to, Term::tuple({Term(Atom("held")), Term(self.pid())}));
      co_await self.receive([](const Term& m) { return m.is_atom(Atom("release")); });
      co_return Term(Atom("released"));
    });
    // Tells `report_to` it ran, then fails: a task that is restarted or not.
    exports->add("calc", "report_and_fail", [](Process& self, Pid report_to) -> Term {
      self.send(report_to, Term::tuple({Term(Atom("ran")), Term(self.pid())}));
      throw std::runtime_error("failed on purpose");
    });
    nodes.push_back(testing::start_node(name, epmd, {}, exports));
    EXPECT_TRUE(task::serve_supervisor(nodes.back()->runtime(), exports, Atom("tasks")).ok());
    return *nodes.back();
  }
};

// The node's services are the kernel supervisor's children: one that dies is started again, and
// the node answers pings and rpc as before.
TEST_F(OtpCluster, TheKernelRestartsANodeServiceThatDies) {
  Node& a = start("ka");
  Node& b = start("kb");
  Runtime& rt = a.runtime();
  const auto sup = rt.whereis(Atom("kernel_sup"));
  ASSERT_TRUE(sup);
  const Term children = block_on(rt, [&](Process& self) { return supervisor::which_children(self, *sup); }).value();
  std::vector<Term> ids;
  for (const Term& c : children.list_elements()) ids.push_back(c[0]);
  EXPECT_EQ(Term::list(ids), T("[net_kernel, rex, user, hypha_tasks]"));

  const Pid old = *rt.whereis(Atom("net_kernel"));
  Mailbox me = rt.mailbox();
  me.monitor(old);
  rt.exit(old, Term(Atom("kill")));
  ASSERT_TRUE(me.receive([](const Term& m) { return m.is_tuple() && m.tuple_size() == 5 && m[0].is_atom(atoms::DOWN()); }, 5s));
  // Started again under its name (wait for the restart: no fixed sleep)
  std::optional<Pid> again;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!(again = rt.whereis(Atom("net_kernel"))) && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(again);
  EXPECT_NE(*again, old);
  EXPECT_TRUE(b.ping(a.name()));
  EXPECT_EQ(rpc::call(b.runtime(), a.name(), "calc"_a, "add"_a, T("[1, 2]")), Term(3));
}

TEST_F(OtpCluster, RpcCallBetweenCppNodes) {
  Node& a = start("a");
  Node& b = start("b");
  Runtime& rt = a.runtime();
  EXPECT_EQ(rpc::call(rt, b.name(), "calc"_a, "add"_a, T("[2, 3]")), Term(5));
  EXPECT_EQ(rpc::call(rt, b.name(), "erlang"_a, "node"_a, T("[]")), Term(b.name()));
  EXPECT_EQ(rpc::call(rt, a.name(), "erlang"_a, "node"_a, T("[]")), Term(a.name()));  // this node, no network
  // erlang:phash2/1,2 as a BEAM node answers (values from erl 25; tests/interop/phash2.escript checks thousands).
  EXPECT_EQ(rpc::call(rt, b.name(), "erlang"_a, "phash2"_a, T("[a]")), Term(97));
  EXPECT_EQ(rpc::call(rt, b.name(), "erlang"_a, "phash2"_a, T("[{a, <<\"b\">>, [1, 2, 3]}, 4294967296]")), Term(3737474695u));
  EXPECT_EQ(rpc::call(rt, b.name(), "erlang"_a, "phash2"_a, T("[#{x => 1}, 1000]")), Term(498));
  EXPECT_EQ(rpc::call(rt, b.name(), "erlang"_a, "phash2"_a, T("[\"hello\"]")), Term(81920127));
  EXPECT_EQ(rpc::call(rt, b.name(), "erlang"_a, "phash2"_a, T("[x, 0]")).tuple_elements()[0], T("badrpc"));
  EXPECT_EQ(rpc::call(rt, b.name(), "calc"_a, "nope"_a, T("[]")), T("{badrpc, {'EXIT', {undef, [{calc, nope, [], []}]}}}"));
  EXPECT_EQ(rpc::call(rt, b.name(), "calc"_a, "boom"_a, T("[]")),
            T(R"({badrpc, {'EXIT', {{exception, <<"boom">>}, [{calc, boom, [], []}]}}})"));
  Mailbox reports = rt.mailbox();
  EXPECT_EQ(rpc::call(rt, b.name(), "calc"_a, "hold"_a, Term::list({Term(reports.pid())}), 50ms), T("{badrpc, timeout}"));
  EXPECT_EQ(rpc::call(rt, Atom("nobody@127.0.0.1"), "erlang"_a, "node"_a, T("[]"), 3s), T("{badrpc, nodedown}"));
  // After all of that both nodes still serve.
  EXPECT_EQ(rpc::call(rt, b.name(), "calc"_a, "add"_a, T("[40, 2]")), Term(42));
}

TEST_F(OtpCluster, MulticallSeparatesBadNodes) {
  Node& a = start("a");
  Node& b = start("b");
  const Atom down("down@127.0.0.1");
  const Term r = rpc::multicall(a.runtime(), {a.name(), b.name(), down}, "erlang"_a, "node"_a, T("[]"), 3s);
  EXPECT_EQ(r, Term::tuple({Term::list({Term(a.name()), Term(b.name())}), Term::list({Term(down)})}));
}

TEST_F(OtpCluster, ATimedOutRpcLeavesNothingBehind) {
  Node& a = start("a");
  Node& b = start("b");
  const std::size_t left = block_on(a.runtime(), [&](Process& self) -> Task<std::size_t> {
    const Term args = Term::list({Term(self.pid())});  // (g++ 12: no braced temporaries in co_await)
    const Term r = co_await rpc::call(self, b.name(), "calc"_a, "hold"_a, args, 10ms);
    EXPECT_EQ(r, T("{badrpc, timeout}"));
    // Let the abandoned call end, watching it ourselves: our DOWN comes after any DOWN the call's
    // own monitor would have sent (same process, same connection, in monitor order).
    const Term held = co_await self.receive([](const Term& m) { return m.is_tuple() && m[0] == T("held"); });
    const Ref mon = self.monitor(held[1].pid());
    self.send(held[1].pid(), T("release"));
    const Term mon_term(mon);
    co_await self.receive([&](const Term& m) { return m.is_tuple() && m.tuple_size() == 5 && m[1] == mon_term; });
    co_return self.runtime().process_info(self.pid())->message_queue_len;
  });
  EXPECT_EQ(left, 0u);
}

struct Counter : GenServer {
  std::int64_t n = 0;
  std::shared_ptr<std::atomic<bool>> holding = std::make_shared<std::atomic<bool>>(false);
  Task<Action> handle_call(Process&, const Term& req, const From&) override {
    if (req.is_atom("next"_a)) co_return Term(++n);
    holding->store(true);
    co_return Action::noreply();  // anything else is never answered
  }
  Task<Action> handle_cast(Process&, const Term& msg) override {
    if (msg.is_tuple() && msg.tuple_size() == 2 && msg[0] == T("add")) n += msg[1].small_integer();
    co_return Action::noreply();
  }
};

// gen_server:multi_call and abcast over several nodes (one without the server, one that does not
// exist), and requests out at once collected in any order, with OTP's error shapes.
TEST_F(OtpCluster, MultiCallAbcastAndRequestsOutAtOnce) {
  Node& a = start("a");
  Node& b = start("b");
  Node& c = start("c");
  for (Node* n : {&a, &b}) ASSERT_TRUE(gen_server::start(n->runtime(), std::make_unique<Counter>(), {.name = "counter"_a}).ok());
  const Atom ghost("ghost@127.0.0.1");
  const Term out = block_on(a.runtime(), [&](Process& self) -> Task<Term> {
    const std::vector<Atom> all{a.name(), b.name(), c.name(), ghost};
    const Term first = co_await gen_server::multi_call(self, all, "counter"_a, T("next"), 2s);
    gen_server::abcast(self, all, "counter"_a, T("{add, 10}"));
    const Term second = co_await gen_server::multi_call(self, all, "counter"_a, T("next"), 2s);
    const std::vector<Atom> just_b{b.name()};
    const Term held = co_await gen_server::multi_call(self, just_b, "counter"_a, T("hang"), 100ms);
    co_return Term::list({first, second, held});
  });
  const Term an(a.name()), bn(b.name()), cn(c.name()), gn(ghost);
  const Term bad = Term::list({cn, gn});
  EXPECT_EQ(out, Term::list({Term::tuple({Term::list({Term::tuple({an, Term(1)}), Term::tuple({bn, Term(1)})}), bad}),
                             Term::tuple({Term::list({Term::tuple({an, Term(12)}), Term::tuple({bn, Term(12)})}), bad}),
                             Term::tuple({Term(), Term::list({bn})})}));

  block_on(a.runtime(), [&](Process& self) -> Task<> {
    const ServerRef on_a("counter"_a), on_b("counter"_a, b.name());
    const gen_server::RequestId ra = gen_server::send_request(self, on_a, T("next"));
    const gen_server::RequestId rb = gen_server::send_request(self, on_b, T("next"));
    const gen_server::RequestId hang = gen_server::send_request(self, on_b, T("hang"));
    self.send(self.pid(), T("other"));
    const Term other = co_await self.receive([](const Term& m) { return m == T("other"); });
    EXPECT_FALSE(gen_server::check_response(self, other, ra).has_value());
    auto from_b = co_await gen_server::receive_response(self, rb);  // in any order
    EXPECT_EQ(from_b.value(), Term(13));
    auto from_a = co_await gen_server::receive_response(self, ra);
    EXPECT_EQ(from_a.value(), Term(13));
    auto late = co_await gen_server::receive_response(self, hang, 50ms);
    EXPECT_EQ(late.error(), Term::tuple({T("timeout"), on_b.to_term()}));
    const gen_server::RequestId here = gen_server::send_request(self, "nobody"_a, T("x"));
    auto nobody_here = co_await gen_server::receive_response(self, here);
    EXPECT_EQ(nobody_here.error(), T("{noproc, nobody}"));
    const ServerRef nobody_there("nobody"_a, b.name());
    const gen_server::RequestId there = gen_server::send_request(self, nobody_there, T("x"));
    auto none = co_await gen_server::receive_response(self, there);
    EXPECT_EQ(none.error(), Term::tuple({T("noproc"), nobody_there.to_term()}));
  });
}

TEST_F(OtpCluster, GenServerCallsAcrossNodes) {
  Node& a = start("a");
  Node& b = start("b");
  ASSERT_TRUE(gen_server::start(b.runtime(), std::make_unique<Counter>(), {.name = "counter"_a}).ok());
  const ServerRef counter("counter"_a, b.name());
  EXPECT_EQ(gen_server::call(a.runtime(), counter, T("next")).value(), Term(1));
  EXPECT_EQ(gen_server::call(a.runtime(), counter, T("next")).value(), Term(2));
  auto noproc = gen_server::call(a.runtime(), ServerRef("nobody"_a, b.name()), T("next"));
  ASSERT_FALSE(noproc.ok());
  EXPECT_EQ(noproc.error(), Term::tuple({T("noproc"), Term::tuple({T("gen_server"), T("call"),
                                                                   Term::list({Term::tuple({T("nobody"), Term(b.name())}),
                                                                               T("next"), Term(5000)})})}));
}

TEST_F(OtpCluster, ACallAcrossALostConnectionEndsWithNodedown) {
  Node& a = start("a");
  Node& b = start("b");
  auto counter = std::make_unique<Counter>();
  auto holding = counter->holding;
  ASSERT_TRUE(gen_server::start(b.runtime(), std::move(counter), {.name = "counter"_a}).ok());
  const Atom bname = b.name();
  std::thread stopper([&] {
    while (!holding->load()) std::this_thread::yield();  // the server holds a's call: now b goes away
    b.stop();
  });
  auto r = gen_server::call(a.runtime(), ServerRef("counter"_a, bname), T("hang"), gen_server::infinity);
  stopper.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error()[0], Term::tuple({T("nodedown"), Term(bname)}));
}

TEST_F(OtpCluster, SpawnRequestWithMonitorAndLink) {
  Node& a = start("a");
  Node& b = start("b");
  const Term down = block_on(a.runtime(), [&](Process& self) -> Task<Term> {
    SpawnRequestOptions o;
    o.monitor = true;
    o.link = true;
    self.trap_exit(true);
    const Ref req = self.spawn_request(b.name(), "calc"_a, "boom"_a, T("[]"), o);
    const Term reply = co_await self.receive();
    EXPECT_EQ(reply[0], T("spawn_reply"));
    EXPECT_EQ(reply[2], T("ok"));
    const Term req_term(req);
    co_return co_await self.receive([&](const Term& m) { return m.tuple_size() == 5 && m[1] == req_term; });
  });
  EXPECT_EQ(down[4], T(R"({{exception, <<"boom">>}, [{calc, boom, [], []}]})"));
}

TEST_F(OtpCluster, RemoteTasksThroughATaskSupervisor) {
  Node& a = start("a");
  Node& b = start("b");
  const ServerRef sup("tasks"_a, b.name());
  block_on(a.runtime(), [&](Process& self) -> Task<> {
    auto t = co_await task::async(self, sup, "erlang"_a, "node"_a, Term());
    EXPECT_TRUE(t.ok());
    auto r = co_await task::await(self, *t);
    EXPECT_EQ(r.value(), Term(b.name()));
    auto sum = co_await task::async(self, sup, "calc"_a, "add"_a, T("[1, 2]"));
    EXPECT_EQ((co_await task::await(self, *sum)).value(), Term(3));
    // A failing function: the error result, not a crash of the caller (async without link).
    auto bad = co_await task::async(self, sup, "calc"_a, "boom"_a, Term(), false);
    auto br = co_await task::await(self, *bad);
    EXPECT_FALSE(br.ok());
    EXPECT_EQ(br.error()[0], T(R"({{exception, <<"boom">>}, [{calc, boom, [], []}]})"));
    // No such supervisor: the call's noproc.
    auto none = co_await task::async(self, ServerRef("nosup"_a, b.name()), "erlang"_a, "node"_a, Term());
    EXPECT_FALSE(none.ok());
    EXPECT_EQ(none.error()[0], T("noproc"));
  });
}

// The pid in the next {held, Pid} (calc:hold's report).
Task<Pid> held_pid(Process& self) {
  const Term m = co_await self.receive([](const Term& t) { return t.is_tuple() && t.tuple_size() == 2 && t[0] == T("held"); });
  co_return m[1].pid();
}

// Elixir's Task.Supervisor is a DynamicSupervisor: children, terminate_child, start_child with a
// restart kind, max_children, and its tasks shut down when it stops. The same from another node.
TEST_F(OtpCluster, ATaskSupervisorIsADynamicSupervisorForCallersOnAnyNode) {
  Node& a = start("a");
  Node& b = start("b");
  ASSERT_TRUE(task::serve_supervisor(b.runtime(), exports.back(), "one_task"_a, {.max_children = 1}).ok());
  const ServerRef sup("tasks"_a, b.name());
  block_on(a.runtime(), [&](Process& self) -> Task<> {
    const Term me = Term::list({Term(self.pid())});
    auto t1 = co_await task::async(self, sup, "calc"_a, "hold"_a, me, false);
    const Pid p1 = co_await held_pid(self);
    auto t2 = co_await task::async(self, sup, "calc"_a, "hold"_a, me, false);
    const Pid p2 = co_await held_pid(self);
    EXPECT_EQ(t1->pid, p1);
    auto kids = co_await task::children(self, sup);
    std::vector<Pid> both{p1, p2};
    std::sort(both.begin(), both.end());
    std::sort(kids->begin(), kids->end());
    EXPECT_EQ(*kids, both);
    auto counts = co_await supervisor::count_children(self, sup);
    EXPECT_EQ(counts.value(), T("[{specs, 2}, {active, 2}, {supervisors, 0}, {workers, 2}]"));
    auto which = co_await supervisor::which_children(self, sup);
    const Term which_list = which.value();
    for (const Term& c : which_list.list_elements()) EXPECT_EQ(c[0], T("undefined"));  // no ids, as DynamicSupervisor's

    // terminate_child by pid: the task is shut down and forgotten; its awaiter gets the reason.
    auto stopped = co_await supervisor::terminate_child(self, sup, Term(p1));
    EXPECT_EQ(stopped.value(), T("ok"));
    auto r1 = co_await task::await(self, *t1);
    EXPECT_EQ(r1.error()[0], T("shutdown"));
    kids = co_await task::children(self, sup);
    EXPECT_EQ(kids.value(), std::vector<Pid>(1, p2));
    stopped = co_await supervisor::terminate_child(self, sup, Term(p1));
    EXPECT_EQ(stopped.error(), T("not_found"));
    self.send(p2, T("release"));
    auto r2 = co_await task::await(self, *t2);
    EXPECT_EQ(r2.value(), T("released"));

    // start_child: temporary runs once; transient runs again after a failure.
    auto once = co_await task::start_child(self, sup, "calc"_a, "report_and_fail"_a, me);
    EXPECT_TRUE(once.ok());
    if (!once) co_return;
    auto ran = [](const Term& t) { return t.is_tuple() && t[0] == T("ran"); };
    const Term once_ran = co_await self.receive(ran);
    EXPECT_EQ(once_ran[1], Term(*once));
    auto again = co_await task::start_child(self, sup, "calc"_a, "report_and_fail"_a, me, Restart::Transient);
    EXPECT_TRUE(again.ok());
    if (!again) co_return;
    const Term first_run = co_await self.receive(ran);
    EXPECT_EQ(first_run[1], Term(*again));
    const Term second_run = co_await self.receive(ran);
    EXPECT_NE(second_run[1], first_run[1]);  // run again, by a new process

    // max_children: a second task is refused while the first runs.
    const ServerRef one("one_task"_a, b.name());
    auto first = co_await task::start_child(self, one, "calc"_a, "hold"_a, me);
    EXPECT_TRUE(first.ok());
    if (!first) co_return;
    const Pid first_held = co_await held_pid(self);
    EXPECT_EQ(first_held, *first);
    auto refused = co_await task::start_child(self, one, "erlang"_a, "node"_a, Term());
    EXPECT_EQ(refused.error(), T("max_children"));

    // Stopping the supervisor shuts its running tasks down.
    const Ref watch = self.monitor(*first);
    auto sup_stopped = co_await gen_server::stop(self, one);
    EXPECT_TRUE(sup_stopped.ok());
    auto down = co_await self.receive([&](const Term& t) { return t.is_tuple() && t.tuple_size() == 5 && t[1] == Term(watch); });
    EXPECT_EQ(down[4], T("shutdown"));
  });
}

TEST_F(OtpCluster, TheLossOfTheTasksNodeIsAnErrorNotAHang) {
  Node& a = start("a");
  Node& b = start("b");
  const Atom bname = b.name();
  const Term r = block_on(a.runtime(), [&](Process& self) -> Task<Term> {
    const Term args = Term::list({Term(self.pid())});
    auto t = co_await task::async(self, ServerRef("tasks"_a, bname), "calc"_a, "hold"_a, args, false);
    EXPECT_TRUE(t.ok());
    co_await self.receive([](const Term& m) { return m.is_tuple() && m[0] == T("held"); });  // it runs on b
    b.stop();
    auto res = co_await task::await(self, *t, gen_server::infinity);
    co_return res.ok() ? res.value() : res.error()[0];
  });
  EXPECT_EQ(r, Term::tuple({T("nodedown"), Term(bname)}));
}

}  // namespace
}  // namespace hypha
