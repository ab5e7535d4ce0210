// rpc and gen_server between C++ nodes over real loopback connections: values and failure shapes,
// multicall with a node down, a call across a lost connection, spawn_request's link and monitor.
#include <gtest/gtest.h>

#include "test_util.hpp"


#include "hypha/otp/blocking.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/rpc.hpp"
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

  Node& start(const std::string& name) {
    nodes.push_back(testing::start_node(name, epmd));
    auto exports = std::make_shared<Exports>();
    exports->add("calc", "add", [](std::int64_t a, std::int64_t b) { return a + b; });
    exports->add("calc", "boom", []() -> Term { throw std::runtime_error("boom"); });
    // Tells `report_to` its pid, then waits for `release`: a call that ends when the test says.
    exports->add("calc", "hold", [](Process& self, Pid report_to) -> Task<Term> {
      self.send(report_to, Term::tuple({Term(Atom("held")), Term(self.pid())}));
      co_await self.receive([](const Term& m) { return m.is_atom(Atom("release")); });
      co_return Term(Atom("released"));
    });
    rpc::serve(*nodes.back(), exports);
    EXPECT_TRUE(task::serve_supervisor(nodes.back()->runtime(), exports, Atom("tasks")).ok());
    return *nodes.back();
  }
};

TEST_F(OtpCluster, RpcCallBetweenCppNodes) {
  Node& a = start("a");
  Node& b = start("b");
  Runtime& rt = a.runtime();
  EXPECT_EQ(rpc::call(rt, b.name(), "calc"_a, "add"_a, T("[2, 3]")), Term(5));
  EXPECT_EQ(rpc::call(rt, b.name(), "erlang"_a, "node"_a, T("[]")), Term(b.name()));
  EXPECT_EQ(rpc::call(rt, a.name(), "erlang"_a, "node"_a, T("[]")), Term(a.name()));  // this node, no network
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
};

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
