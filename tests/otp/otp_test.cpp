// The otp layer in one runtime: exports (typed arguments, Erlang's exception shapes) and
// gen_server (calls, casts, deferred replies, stop, the exit reasons OTP's call gives).
#include <gtest/gtest.h>

#include "hypha/otp/blocking.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/term/text.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;

Term T(std::string_view s) { return parse_term(s).value(); }
constexpr auto kWait = 5s;

Outcome apply(Runtime& rt, const Exports& ex, std::string_view mod, std::string_view fun, std::string_view args) {
  return block_on(rt, [&](Process& self) { return ex.apply(self, Atom(mod), Atom(fun), T(args)); });
}

TEST(Exports, TypedArgumentsAndResults) {
  Runtime rt;
  Exports ex;
  ex.add("math", "add", [](std::int64_t a, std::int64_t b) { return a + b; });
  ex.add("text", "join", [](std::vector<std::string> parts) {
    std::string out;
    for (auto& p : parts) out += p;
    return out;
  });
  ex.add("misc", "nothing", [] {});
  const Outcome sum = apply(rt, ex, "math", "add", "[40, 2]");
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum.value, Term(42));
  EXPECT_EQ(apply(rt, ex, "text", "join", R"([[<<"a">>, <<"bc">>]])").value, T(R"(<<"abc">>)"));
  EXPECT_EQ(apply(rt, ex, "misc", "nothing", "[]").value, T("ok"));
  EXPECT_TRUE(ex.exported("math"_a, "add"_a, 2));
  EXPECT_FALSE(ex.exported("math"_a, "add"_a, 3));
}

TEST(Exports, FailuresHaveErlangsShapes) {
  Runtime rt;
  Exports ex;
  ex.add("math", "add", [](std::int64_t a, std::int64_t b) { return a + b; });
  ex.add("bad", "std", []() -> int { throw std::runtime_error("boom"); });
  ex.add("bad", "error", []() -> int { throw Error(T("{my, reason}")); });
  ex.add("bad", "throw", []() -> int { throw Throw(T("thrown")); });
  ex.add("bad", "exit", []() -> int { throw Exit(T("bye")); });

  const Outcome undef = apply(rt, ex, "math", "add", "[1]");  // another arity is another function
  EXPECT_EQ(undef.cls, Outcome::Class::Error);
  EXPECT_EQ(undef.value, T("undef"));
  EXPECT_EQ(undef.stack, T("[{math, add, [1], []}]"));

  const Outcome badarg = apply(rt, ex, "math", "add", "[1, foo]");
  EXPECT_EQ(badarg.cls, Outcome::Class::Error);
  EXPECT_EQ(badarg.value, T("badarg"));
  const std::string stack = badarg.stack.to_string();
  EXPECT_NE(stack.find("{math,add,[1,foo],[{error_info,#{cause => <<\"argument 2: expected"), std::string::npos) << stack;
  EXPECT_NE(stack.find("foo"), std::string::npos);

  const Outcome ex_std = apply(rt, ex, "bad", "std", "[]");
  EXPECT_EQ(ex_std.cls, Outcome::Class::Error);
  EXPECT_EQ(ex_std.value, T(R"({exception, <<"boom">>})"));
  EXPECT_EQ(apply(rt, ex, "bad", "error", "[]").value, T("{my, reason}"));
  EXPECT_EQ(apply(rt, ex, "bad", "throw", "[]").cls, Outcome::Class::Throw);
  const Outcome ex_exit = apply(rt, ex, "bad", "exit", "[]");
  EXPECT_EQ(ex_exit.cls, Outcome::Class::Exit);
  EXPECT_EQ(ex_exit.value, T("bye"));
  EXPECT_EQ(exit_reason_of(undef), T("{undef, [{math, add, [1], []}]}"));
}

TEST(Exports, ACoroutineExportRunsInTheCallingProcess) {
  Runtime rt;
  Exports ex;
  // Asks another process and awaits its answer: exports may receive.
  const Pid doubler = rt.spawn([](Process& self) -> Task<> {
    for (;;) {
      Term m = co_await self.receive();
      self.send(m[0].pid(), Term(m[1].small_integer() * 2));
    }
  });
  ex.add("svc", "twice", [doubler](Process& self, std::int64_t n) -> Task<std::int64_t> {
    self.send(doubler, Term::tuple({Term(self.pid()), Term(n)}));
    Term r = co_await self.receive();
    co_return r.small_integer();
  });
  EXPECT_EQ(apply(rt, ex, "svc", "twice", "[21]").value, Term(42));
}

// A stack server, as in the Elixir guide, with a deferred reply and a crash on demand.
struct Stack : GenServer {
  std::vector<Term> items;
  std::optional<From> waiting;  // a pop on an empty stack waits for the next push
  Pid* terminated_to = nullptr;
  std::shared_ptr<std::atomic<int>> terminated = std::make_shared<std::atomic<int>>(0);

  Task<Action> handle_call(Process&, const Term& req, const From& from) override {
    if (req.is_atom("pop"_a)) {
      if (items.empty()) {
        waiting = from;
        co_return Action::noreply();
      }
      Term top = items.back();
      items.pop_back();
      co_return top;
    }
    if (req.is_atom("size"_a)) co_return Term(static_cast<std::int64_t>(items.size()));
    if (req.is_atom("crash"_a)) throw Exit(T("crashed"));
    if (req.is_atom("slow"_a)) co_return Action::noreply();  // never answers
    if (req.is_atom("stop"_a)) co_return Action::stop(T("normal"), T("stopping"));
    co_return Action::stop(T("{bad_call, x}"));
  }
  Task<Action> handle_cast(Process& self, const Term& msg) override {
    if (msg.is_tuple() && msg[0].is_atom("push"_a)) {
      if (waiting) {
        gen_server::reply(self, *waiting, msg[1]);
        waiting.reset();
      } else {
        items.push_back(msg[1]);
      }
    }
    co_return Action::noreply();
  }
  void terminate(Process&, const Term&) override { ++*terminated; }
};

TEST(GenServer, CallCastAndADeferredReply) {
  Runtime rt;
  auto started = gen_server::start(rt, std::make_unique<Stack>(), {.name = "stack"_a});
  ASSERT_TRUE(started.ok());
  gen_server::cast(rt, "stack"_a, T("{push, 1}"));
  gen_server::cast(rt, "stack"_a, T("{push, 2}"));
  EXPECT_EQ(gen_server::call(rt, "stack"_a, T("size")).value(), Term(2));
  EXPECT_EQ(gen_server::call(rt, *started, T("pop")).value(), Term(2));
  EXPECT_EQ(gen_server::call(rt, ServerRef("stack"_a, rt.node()), T("pop")).value(), Term(1));
  // Empty: the reply is deferred until the next push. A raw caller speaks the protocol itself,
  // so the push is sure to come after the call.
  Mailbox caller = rt.mailbox();
  const Term tag = T("tag1");
  caller.send(*started, Term::tuple({T("'$gen_call'"), Term::tuple({Term(caller.pid()), tag}), T("pop")}));
  caller.send(*started, T("{'$gen_cast', {push, late}}"));
  auto reply = caller.receive(kWait);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, Term::tuple({tag, T("late")}));
}

TEST(GenServer, FailedCallsGiveOtpsExitReasons) {
  Runtime rt;
  auto server = std::make_unique<Stack>();
  auto terminated = server->terminated;
  auto pid = gen_server::start(rt, std::move(server), {.name = "stack"_a});
  ASSERT_TRUE(pid.ok());

  auto noproc = gen_server::call(rt, "nobody"_a, T("pop"));
  ASSERT_FALSE(noproc.ok());
  EXPECT_EQ(noproc.error(), T("{noproc, {gen_server, call, [nobody, pop, 5000]}}"));

  auto timeout = gen_server::call(rt, "stack"_a, T("slow"), 50ms);
  ASSERT_FALSE(timeout.ok());
  EXPECT_EQ(timeout.error(), T("{timeout, {gen_server, call, [stack, slow, 50]}}"));

  auto crash = gen_server::call(rt, "stack"_a, T("crash"));
  ASSERT_FALSE(crash.ok());
  EXPECT_EQ(crash.error(), T("{crashed, {gen_server, call, [stack, crash, 5000]}}"));
  EXPECT_EQ(terminated->load(), 1);  // terminate ran with the crash
  EXPECT_FALSE(rt.whereis("stack"_a).has_value());
}

TEST(GenServer, ALateReplyIsDroppedByTheAlias) {
  Runtime rt;
  // A server that answers only after the caller gave up.
  struct Late : GenServer {
    std::optional<From> from;
    Task<Action> handle_call(Process&, const Term&, const From& f) override {
      from = f;
      co_return Action::noreply();
    }
    Task<Action> handle_cast(Process& self, const Term&) override {
      if (from) gen_server::reply(self, *from, T("too_late"));
      co_return Action::noreply();
    }
  };
  auto pid = gen_server::start(rt, std::make_unique<Late>());
  ASSERT_TRUE(pid.ok());
  const std::size_t stray = block_on(rt, [&](Process& self) -> Task<std::size_t> {
    auto r = co_await gen_server::call(self, *pid, T("q"), 20ms);
    EXPECT_FALSE(r.ok());
    gen_server::cast(self, *pid, T("answer"));
    // Synchronise with the server: once it answers this call, the late reply was sent before.
    gen_server::cast(self, *pid, T("again"));
    auto again = co_await gen_server::call(self, *pid, T("q2"), 20ms);
    EXPECT_FALSE(again.ok());
    co_return self.runtime().process_info(self.pid())->message_queue_len;
  });
  EXPECT_EQ(stray, 0u);
}

TEST(GenServer, StartFailuresAndStop) {
  Runtime rt;
  struct Refuses : GenServer {
    Task<> init(Process&) override {
      throw Exit(T("{shutdown, no_config}"));
      co_return;
    }
  };
  auto refused = block_on(rt, [](Process& self) -> Task<Result<Pid, Term>> {
    auto r = co_await gen_server::start(self, std::make_unique<Refuses>(), {.link = true});
    co_return r;  // still alive: the failed child did not take its starter down
  });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), T("{shutdown, no_config}"));

  auto first = gen_server::start(rt, std::make_unique<Stack>(), {.name = "s"_a});
  ASSERT_TRUE(first.ok());
  auto second = gen_server::start(rt, std::make_unique<Stack>(), {.name = "s"_a});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error(), Term::tuple({T("already_started"), Term(*first)}));

  EXPECT_EQ(gen_server::call(rt, "s"_a, T("stop")).value(), T("stopping"));

  auto server = std::make_unique<Stack>();
  auto terminated = server->terminated;
  auto pid = gen_server::start(rt, std::move(server));
  ASSERT_TRUE(pid.ok());
  auto stopped = block_on(rt, [&](Process& self) { return gen_server::stop(self, *pid, T("shutdown")); });
  EXPECT_TRUE(stopped.ok());
  EXPECT_EQ(terminated->load(), 1);
  EXPECT_FALSE(rt.alive(*pid));
}

}  // namespace
}  // namespace hypha
