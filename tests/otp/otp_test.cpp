// The otp layer in one runtime: exports (typed arguments, Erlang's exception shapes) and
// gen_server (calls, casts, deferred replies, stop, the exit reasons OTP's call gives).
#include <gtest/gtest.h>

#include "test_util.hpp"

#include <algorithm>
#include <mutex>

#include "hypha/base/log.hpp"
#include "log_capture.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/supervisor.hpp"
#include "hypha/otp/task.hpp"
#include "hypha/term/text.hpp"

namespace hypha {
namespace {

using testing::T;

using namespace std::chrono_literals;
using namespace hypha::literals;

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
  Task<> terminate(Process&, const Term&) override {
    ++*terminated;
    co_return;
  }
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

// Reports its idle timeouts and continues to `to`.
struct Timed : GenServer {
  explicit Timed(Pid t) : to(t) {}
  Pid to;
  Task<Action> handle_call(Process&, const Term& req, const From&) override {
    if (req == T("arm")) co_return Action(T("armed")).with_timeout(30ms);
    co_return Action::stop(T("bad"));
  }
  Task<Action> handle_cast(Process& self, const Term& msg) override {
    if (msg.is_tuple() && msg[0] == T("continue")) co_return Action::noreply().with_continue(msg[1]);
    self.send(to, Term::tuple({"cast"_atom, msg}));
    co_return Action::noreply();
  }
  Task<Action> handle_info(Process& self, const Term& msg) override {
    self.send(to, Term::tuple({"info"_atom, msg}));
    co_return Action::noreply();
  }
  Task<Action> handle_continue(Process& self, const Term& arg) override {
    self.send(to, Term::tuple({"continued"_atom, arg}));
    co_return Action::noreply();
  }
};

TEST(GenServer, IdleTimeoutsAndContinuesAsOtps) {
  Runtime rt;
  Mailbox me = rt.mailbox();
  auto pid = gen_server::start(rt, std::make_unique<Timed>(me.pid()));
  ASSERT_TRUE(pid.ok());
  // {reply, armed, S, 30}: no message within 30 ms, so handle_info(timeout), once.
  EXPECT_EQ(gen_server::call(rt, *pid, T("arm")).value(), T("armed"));
  EXPECT_EQ(me.receive(kWait), T("{info, timeout}"));
  EXPECT_FALSE(me.receive(100ms));
  // A message within the time cancels it (the cast's noreply sets none).
  EXPECT_EQ(gen_server::call(rt, *pid, T("arm")).value(), T("armed"));
  gen_server::cast(rt, *pid, T("hello"));
  EXPECT_EQ(me.receive(kWait), T("{cast, hello}"));
  EXPECT_FALSE(me.receive(100ms));
  // {noreply, S, {continue, 7}}: handle_continue runs before the next message, though it is queued.
  gen_server::cast(rt, *pid, T("{continue, 7}"));
  gen_server::cast(rt, *pid, T("after"));
  EXPECT_EQ(me.receive(kWait), T("{continued, 7}"));
  EXPECT_EQ(me.receive(kWait), T("{cast, after}"));
}

// init asks for a continue or an idle timeout, as OTP's {ok, State, {continue, Arg}} and
// {ok, State, Timeout}.
struct TimedFromInit : Timed {
  TimedFromInit(Pid t, Action a) : Timed(t), first(std::move(a)) {}
  Action first;
  Task<> init(Process&) override {
    after_init(std::move(first));
    co_return;
  }
};

TEST(GenServer, InitCanAskForAContinueOrAnIdleTimeout) {
  Runtime rt;
  Mailbox me = rt.mailbox();
  auto warm = gen_server::start(rt, std::make_unique<TimedFromInit>(me.pid(), Action::noreply().with_continue(T("warm"))));
  ASSERT_TRUE(warm.ok());
  gen_server::cast(rt, *warm, T("first"));  // queued before the continue runs, handled after it
  EXPECT_EQ(me.receive(kWait), T("{continued, warm}"));
  EXPECT_EQ(me.receive(kWait), T("{cast, first}"));
  auto idle = gen_server::start(rt, std::make_unique<TimedFromInit>(me.pid(), Action::noreply().with_timeout(20ms)));
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(me.receive(kWait), T("{info, timeout}"));
}

// {watch, N} monitors N fresh processes and lets them go (the monitor table grows, then empties);
// {shrink} asks to hibernate; {hibernations} says how often on_hibernate ran.
struct Burst : GenServer {
  std::vector<std::string> cache;
  int hibernations = 0;
  Task<Action> handle_call(Process& self, const Term& req, const From&) override {
    if (req.is_tuple() && req[0].is_atom("watch"_a)) {
      std::vector<Pid> pids;
      for (std::int64_t i = 0; i < req[1].small_integer(); ++i) {
        pids.push_back(self.spawn([](Process& p) -> Task<> { co_await p.receive(); }));
        self.monitor(pids.back());
        cache.emplace_back(1000, 'x');
      }
      for (const Pid& p : pids) self.send(p, "go"_a);
      for (std::size_t i = 0; i < pids.size(); ++i) co_await self.receive([](const Term& m) { return m.is_tuple() && m[0].is_atom(atoms::DOWN()); });
      co_return Action::reply("ok"_a);
    }
    if (req.is_tuple() && req[0].is_atom("shrink"_a)) co_return Action::reply("ok"_a).with_hibernate();
    co_return Action::reply(Term(hibernations));
  }
  void on_hibernate(Process&) override {
    ++hibernations;
    cache = {};
  }
};

TEST(GenServer, HibernateGivesBackWhatTheServerKeepsAndItGoesOn) {
  Runtime rt;
  Mailbox me = rt.mailbox();
  auto pid = gen_server::start(rt, std::make_unique<Burst>());
  ASSERT_TRUE(pid.ok());
  const std::size_t idle = rt.process_info(*pid)->memory;
  ASSERT_TRUE(gen_server::call(rt, *pid, T("{watch, 2000}")).ok());
  const std::size_t after_burst = rt.process_info(*pid)->memory;
  EXPECT_GT(after_burst, idle + 2000 * sizeof(Ref));  // the monitor table kept its capacity
  EXPECT_EQ(*gen_server::call(rt, *pid, T("{shrink}")), T("ok"));
  EXPECT_EQ(*gen_server::call(rt, *pid, T("hibernations")), Term(1));  // and it still answers
  EXPECT_EQ(rt.process_info(*pid)->memory, idle);
  EXPECT_EQ(*gen_server::call(rt, *pid, T("hibernations")), Term(1));  // a plain reply does not hibernate
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

// ---------------------------------------------------------------------------------- supervisor

// A child that waits forever (until an exit signal ends it).
ProcessBody idle() {
  return [](Process& self) -> Task<> {
    for (;;) co_await self.receive();
  };
}

Term children(Runtime& rt, const Pid& sup) {
  return block_on(rt, [&](Process& self) { return supervisor::which_children(self, sup); }).value();
}

// The pid of child `id`, or nullopt when it is not running.
std::optional<Pid> child(Runtime& rt, const Pid& sup, const char* id) {
  const Term all = children(rt, sup);
  for (const Term& c : all.list_elements())
    if (c[0] == Term(Atom(id))) return c[1].is_pid() ? std::optional<Pid>(c[1].pid()) : std::nullopt;
  return std::nullopt;
}

// Ends `pid` with `reason` and returns once it is gone. Its exit signal reaches its supervisor
// before the DOWN reaches us, so a call made afterwards sees the supervisor's reaction.
void end_child(Runtime& rt, const Pid& pid, const Term& reason) {
  Mailbox m = rt.mailbox();
  const Ref ref = m.monitor(pid);
  rt.exit(pid, reason);
  const Term ref_term(ref);
  ASSERT_TRUE(m.receive([&](const Term& t) { return t.is_tuple() && t.tuple_size() == 5 && t[1] == ref_term; }, kWait));
}

std::vector<ChildSpec> three(Restart r = Restart::Permanent) {
  return {ChildSpec::process(T("a"), idle(), r), ChildSpec::process(T("b"), idle(), r), ChildSpec::process(T("c"), idle(), r)};
}

TEST(Supervisor, OneForOneRestartsOnlyTheDeadChild) {
  Runtime rt;
  auto sup = supervisor::start(rt, {.strategy = Strategy::OneForOne}, three());
  ASSERT_TRUE(sup.ok());
  const Pid a = *child(rt, *sup, "a"), b = *child(rt, *sup, "b"), c = *child(rt, *sup, "c");
  end_child(rt, b, T("crash"));
  const auto b2 = child(rt, *sup, "b");
  ASSERT_TRUE(b2.has_value());
  EXPECT_NE(*b2, b);
  EXPECT_EQ(*child(rt, *sup, "a"), a);
  EXPECT_EQ(*child(rt, *sup, "c"), c);
}

TEST(Supervisor, RestartAndDeleteAStoppedChild) {
  Runtime rt;
  auto sup = supervisor::start(rt, {}, {ChildSpec::process(T("t"), idle(), Restart::Transient)});
  ASSERT_TRUE(sup.ok());
  auto call = [&](auto f) { return block_on(rt, [&](Process& self) { return f(self); }); };
  const ServerRef ref(*sup);
  EXPECT_EQ(call([&](Process& s) { return supervisor::restart_child(s, ref, T("t")); }).error(), T("running"));
  EXPECT_EQ(call([&](Process& s) { return supervisor::delete_child(s, ref, T("t")); }).error(), T("running"));
  end_child(rt, *child(rt, *sup, "t"), T("{shutdown, done}"));  // a clean exit: stopped, keeps its place
  EXPECT_FALSE(child(rt, *sup, "t").has_value());
  auto again = call([&](Process& s) { return supervisor::restart_child(s, ref, T("t")); });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(child(rt, *sup, "t"), std::optional<Pid>(*again));
  end_child(rt, *again, T("shutdown"));
  EXPECT_TRUE(call([&](Process& s) { return supervisor::delete_child(s, ref, T("t")); }).ok());
  EXPECT_TRUE(children(rt, *sup).list_elements().empty());
  EXPECT_EQ(call([&](Process& s) { return supervisor::restart_child(s, ref, T("t")); }).error(), T("not_found"));
}

TEST(Supervisor, OneForAllAndRestForOne) {
  Runtime rt;
  auto all = supervisor::start(rt, {.strategy = Strategy::OneForAll}, three());
  ASSERT_TRUE(all.ok());
  const Pid a = *child(rt, *all, "a"), b = *child(rt, *all, "b"), c = *child(rt, *all, "c");
  end_child(rt, b, T("crash"));
  EXPECT_NE(*child(rt, *all, "a"), a);
  EXPECT_NE(*child(rt, *all, "b"), b);
  EXPECT_NE(*child(rt, *all, "c"), c);
  EXPECT_FALSE(rt.alive(a));
  EXPECT_FALSE(rt.alive(c));

  auto rest = supervisor::start(rt, {.strategy = Strategy::RestForOne}, three());
  ASSERT_TRUE(rest.ok());
  const Pid ra = *child(rt, *rest, "a"), rb = *child(rt, *rest, "b"), rc = *child(rt, *rest, "c");
  end_child(rt, rb, T("crash"));
  EXPECT_EQ(*child(rt, *rest, "a"), ra);
  EXPECT_NE(*child(rt, *rest, "b"), rb);
  EXPECT_NE(*child(rt, *rest, "c"), rc);
}

TEST(Supervisor, RestartKinds) {
  Runtime rt;
  auto sup = supervisor::start(rt, {}, {ChildSpec::process(T("t"), idle(), Restart::Transient),
                                        ChildSpec::process(T("tmp"), idle(), Restart::Temporary)});
  ASSERT_TRUE(sup.ok());
  const Pid t = *child(rt, *sup, "t");
  end_child(rt, t, T("{shutdown, done}"));  // a clean exit: a transient child stays down
  EXPECT_FALSE(child(rt, *sup, "t").has_value());
  end_child(rt, *child(rt, *sup, "tmp"), T("crash"));  // temporary: forgotten
  EXPECT_EQ(children(rt, *sup).list_elements().size(), 1u);
}

TEST(Supervisor, TooManyRestartsAndTheSupervisorGivesUp) {
  Runtime rt;
  auto sup = supervisor::start(rt, {.strategy = Strategy::OneForOne, .intensity = 2, .period = 60s}, three());
  ASSERT_TRUE(sup.ok());
  Mailbox watcher = rt.mailbox();
  watcher.monitor(*sup);
  const Pid c = *child(rt, *sup, "c");
  end_child(rt, *child(rt, *sup, "a"), T("crash"));
  end_child(rt, *child(rt, *sup, "a"), T("crash"));
  end_child(rt, *child(rt, *sup, "a"), T("crash"));  // the third within the period: too many
  auto down = watcher.receive(kWait);
  ASSERT_TRUE(down.has_value());
  EXPECT_EQ((*down)[4], T("shutdown"));
  EXPECT_FALSE(rt.alive(c));  // it took its children with it
}

using testing::LogCapture;

TEST(Supervisor, ReportsCrashesAndGivingUpAsOtpDoes) {
  LogCapture logs;
  Runtime rt;
  auto sup = supervisor::start(rt, {.strategy = Strategy::OneForOne, .intensity = 1, .period = 60s},
                               {ChildSpec::process(T("worker_a"), idle())});
  ASSERT_TRUE(sup.ok());
  Mailbox watcher = rt.mailbox();
  watcher.monitor(*sup);
  end_child(rt, *child(rt, *sup, "worker_a"), T("boom"));
  end_child(rt, *child(rt, *sup, "worker_a"), T("boom"));  // the second within the period: too many
  ASSERT_TRUE(watcher.receive(kWait));
  EXPECT_EQ(logs.count({"error", "event=child_terminated", "child=worker_a", "reason=boom"}), 2u);
  EXPECT_EQ(logs.count({"event=reached_max_restart_intensity", "child=worker_a"}), 1u);
}

TEST(GenServer, ACrashIsReportedWithItsLastMessage) {
  LogCapture logs;
  Runtime rt;
  auto pid = gen_server::start(rt, std::make_unique<Stack>(), {.name = "crashing_stack"_a});
  ASSERT_TRUE(pid.ok());
  ASSERT_FALSE(gen_server::call(rt, "crashing_stack"_a, T("crash")).ok());
  EXPECT_EQ(logs.count({"error", "event=gen_server_terminating", "last_message=", "crash"}), 1u);
  for (const char* reason : {"shutdown", "{shutdown, done}", "normal", "oops"}) {
    ASSERT_TRUE(gen_server::start(rt, std::make_unique<Stack>(), {.name = "stopped_stack"_a}).ok());
    const Term why = T(reason);
    ASSERT_TRUE(block_on(rt, [&](Process& self) { return gen_server::stop(self, ServerRef("stopped_stack"_a), why); }).ok());
  }
  // Clean stops are not reported; the one with reason oops is.
  EXPECT_EQ(logs.count({"event=gen_server_terminating"}), 2u);
  EXPECT_EQ(logs.count({"event=gen_server_terminating", "reason=oops"}), 1u);
}

TEST(Supervisor, DynamicChildrenAndShutdownThenKill) {
  Runtime rt;
  auto sup = supervisor::start(rt, {}, {});
  ASSERT_TRUE(sup.ok());
  auto w1 = supervisor::start_child(rt, *sup, ChildSpec::process(T("w1"), idle()));
  ASSERT_TRUE(w1.ok());
  auto again = supervisor::start_child(rt, *sup, ChildSpec::process(T("w1"), idle()));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), Term::tuple({T("already_started"), Term(*w1)}));
  // A child that ignores shutdown (it traps exits) is killed after its shutdown time.
  ChildSpec stubborn = ChildSpec::process(T("stubborn"), [](Process& self) -> Task<> {
    self.trap_exit(true);
    for (;;) co_await self.receive();
  });
  stubborn.shutdown = 50ms;
  auto s = supervisor::start_child(rt, *sup, stubborn);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(block_on(rt, [&](Process& self) { return supervisor::count_children(self, *sup); }).value(),
            T("[{specs, 2}, {active, 2}, {supervisors, 0}, {workers, 2}]"));
  auto gone = block_on(rt, [&](Process& self) { return supervisor::terminate_child(self, *sup, Term(*s)); });
  EXPECT_TRUE(gone.ok());
  EXPECT_FALSE(rt.alive(*s));
  // By pid: stopped and forgotten (DynamicSupervisor); by id: stopped, its place kept (supervisor).
  EXPECT_EQ(block_on(rt, [&](Process& self) { return supervisor::count_children(self, *sup); }).value(),
            T("[{specs, 1}, {active, 1}, {supervisors, 0}, {workers, 1}]"));
  auto by_id = block_on(rt, [&](Process& self) { return supervisor::terminate_child(self, *sup, T("w1")); });
  EXPECT_TRUE(by_id.ok());
  EXPECT_FALSE(rt.alive(*w1));
  EXPECT_EQ(children(rt, *sup), T("[{w1, undefined, worker, []}]"));
  auto again_by_id = block_on(rt, [&](Process& self) { return supervisor::terminate_child(self, *sup, T("w1")); });
  EXPECT_TRUE(again_by_id.ok());  // already stopped: ok, as OTP answers
  auto restarted = block_on(rt, [&](Process& self) { return supervisor::restart_child(self, *sup, T("w1")); });
  ASSERT_TRUE(restarted.ok());
  EXPECT_TRUE(rt.alive(*restarted));
  block_on(rt, [&](Process& self) { return supervisor::terminate_child(self, *sup, T("w1")); });
  auto deleted = block_on(rt, [&](Process& self) { return supervisor::delete_child(self, *sup, T("w1")); });
  EXPECT_TRUE(deleted.ok());
  auto missing = block_on(rt, [&](Process& self) { return supervisor::terminate_child(self, *sup, T("w1")); });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(), T("not_found"));
  EXPECT_EQ(children(rt, *sup), Term());
}

// Children asked for by a call of the supervisor's own (child_for_call, as Task.Supervisor's
// start_task) are kept by pid, many at once; a stopping supervisor shuts them all down together:
// every one gets its shutdown signal before the first is killed, each after its own shutdown time.
TEST(Supervisor, ManyDynamicChildrenAreShutDownTogether) {
  Runtime rt;
  Mailbox inbox = rt.mailbox();
  supervisor::StartOptions opts;
  opts.child_for_call = [report_to = inbox.pid()](const Term& req) -> Result<ChildSpec, Term> {
    if (!req.is_small_integer()) return unexpected(T("bad_request"));  // the shutdown time, ms
    ChildSpec c = ChildSpec::process(T("undefined"), [report_to](Process& self) -> Task<> {
      self.trap_exit(true);
      self.send(report_to, Term::tuple({T("started"), Term(self.pid())}));
      for (;;) {
        const Term m = co_await self.receive();
        if (m.is_tuple() && m.tuple_size() == 3 && m[2] == T("shutdown")) self.send(report_to, T("asked_to_stop"));
      }
    });
    c.shutdown = std::chrono::milliseconds(req.small_integer());
    return c;
  };
  auto sup = supervisor::start(rt, {}, {}, std::move(opts));
  ASSERT_TRUE(sup.ok());
  constexpr int kChildren = 300;
  std::vector<Pid> kids;
  for (int i = 0; i < kChildren; ++i) {
    // One has a shorter shutdown time than the others.
    const Term shutdown_ms(i == 0 ? 100 : 500);
    auto r = block_on(rt, [&](Process& self) { return gen_server::call(self, *sup, shutdown_ms); });
    ASSERT_TRUE(r.ok());
    EXPECT_EQ((*r)[0], T("ok"));
    kids.push_back((*r)[1].pid());
  }
  for (int i = 0; i < kChildren; ++i) inbox.receive();  // each {started, Pid}
  EXPECT_EQ(block_on(rt, [&](Process& self) { return supervisor::count_children(self, *sup); }).value(),
            T("[{specs, 300}, {active, 300}, {supervisors, 0}, {workers, 300}]"));
  auto bad = block_on(rt, [&](Process& self) { return gen_server::call(self, *sup, T("other")); });
  EXPECT_EQ(bad.value(), T("{error, bad_request}"));
  // One stopped by pid: only it.
  auto one = block_on(rt, [&](Process& self) { return supervisor::terminate_child(self, *sup, Term(kids.back())); });
  EXPECT_TRUE(one.ok());
  EXPECT_EQ(inbox.receive(), T("asked_to_stop"));
  kids.pop_back();
  for (const Pid& k : kids) inbox.monitor(k);
  block_on(rt, [&](Process& self) { return gen_server::stop(self, *sup); });
  int asked = 0;
  for (;;) {
    const Term m = inbox.receive();
    if (m == T("asked_to_stop")) {
      ++asked;
      continue;
    }
    EXPECT_EQ(m[0], T("'DOWN'"));
    EXPECT_EQ(m[3], Term(kids.front()));  // killed after its own shutdown time, not the longest
    EXPECT_EQ(m[4], T("killed"));
    break;
  }
  EXPECT_EQ(asked, kChildren - 1);
  for (const Pid& k : kids) EXPECT_FALSE(rt.alive(k));
}

TEST(Supervisor, TerminatingATemporaryChildByIdForgetsIt) {
  Runtime rt;
  auto sup = supervisor::start(rt, {}, {ChildSpec::process(T("once"), idle(), Restart::Temporary)});
  ASSERT_TRUE(sup.ok());
  auto r = block_on(rt, [&](Process& self) { return supervisor::terminate_child(self, *sup, T("once")); });
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(children(rt, *sup), Term());
}

// OTP's ignore from init: start() says ignore, a supervisor keeps the child's place without a process.
struct Ignores : GenServer {
  Task<> init(Process&) override {
    throw gen_server::Ignore{};
    co_return;
  }
};

TEST(Supervisor, AChildWhoseInitSaysIgnoreKeepsItsPlaceWithoutAProcess) {
  Runtime rt;
  auto direct = gen_server::start(rt, std::make_unique<Ignores>());
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.error(), T("ignore"));
  auto sup = supervisor::start(rt, {}, {ChildSpec::server(T("quiet"), [] { return std::make_unique<Ignores>(); }),
                                        ChildSpec::process(T("w"), idle())});
  ASSERT_TRUE(sup.ok());  // not a failure to start
  const Term all = children(rt, *sup);
  ASSERT_EQ(all.list_elements().size(), 2u);
  EXPECT_EQ(all.list_elements()[0], T("{quiet, undefined, worker, []}"));
  auto added = supervisor::start_child(rt, *sup, ChildSpec::server(T("later"), [] { return std::make_unique<Ignores>(); }));
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error(), T("ignore"));
  EXPECT_EQ(block_on(rt, [&](Process& self) { return supervisor::count_children(self, *sup); }).value(),
            T("[{specs, 3}, {active, 1}, {supervisors, 0}, {workers, 3}]"));
}

TEST(Supervisor, AChildThatFailsToStartFailsTheStart) {
  Runtime rt;
  struct Refuses : GenServer {
    Task<> init(Process&) override {
      throw Exit(T("no"));
      co_return;
    }
  };
  auto sup = supervisor::start(rt, {}, {ChildSpec::process(T("ok"), idle()),
                                        ChildSpec::server(T("bad"), [] { return std::make_unique<Refuses>(); })});
  ASSERT_FALSE(sup.ok());
  EXPECT_EQ(sup.error(), T("{shutdown, {failed_to_start_child, bad, no}}"));
}

// ---------------------------------------------------------------------------------- tasks

TEST(Tasks, AsyncAwaitYieldShutdown) {
  Runtime rt;
  const Term out = block_on(rt, [](Process& self) -> Task<Term> {
    auto t = task::async(self, [](Process&) -> Task<Term> { co_return Term(42); });
    auto r = co_await task::await(self, t);
    EXPECT_TRUE(r.ok());
    // A task that waits for a go: yield gives nothing yet, then the value.
    auto slow = task::async(self, [](Process& p) -> Task<Term> {
      co_await p.receive([](const Term& m) { return m.is_atom(Atom("go")); });
      co_return Term(Atom("done"));
    });
    auto early = co_await task::yield(self, slow, std::chrono::milliseconds(0));
    EXPECT_FALSE(early.has_value());
    self.send(slow.pid, Term(Atom("go")));
    auto later = co_await task::yield(self, slow, std::chrono::seconds(5));
    EXPECT_TRUE(later.has_value() && later->ok() && later->value() == Term(Atom("done")));
    // Shutdown of one that never ends: nothing.
    auto stuck = task::async(self, [](Process& p) -> Task<Term> {
      co_await p.receive([](const Term&) { return false; });
      co_return Term();
    });
    auto stopped = co_await task::shutdown(self, stuck);
    EXPECT_FALSE(stopped.has_value());
    EXPECT_FALSE(self.runtime().alive(stuck.pid));
    co_return r.value();
  });
  EXPECT_EQ(out, Term(42));
}

TEST(Tasks, FailuresAndTimeoutsAreResultsShapedAsElixirs) {
  Runtime rt;
  block_on(rt, [](Process& self) -> Task<> {
    auto crash = task::async_nolink(self, [](Process&) -> Task<Term> { throw Exit(T("boom")); });
    auto r = co_await task::await(self, crash);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error()[0], T("boom"));
    EXPECT_EQ(r.error()[1][0], T("'Elixir.Task'"));
    EXPECT_EQ(r.error()[1][1], T("await"));
    auto slow = task::async_nolink(self, [](Process& p) -> Task<Term> {
      co_await p.receive([](const Term&) { return false; });
      co_return Term();
    });
    auto t = co_await task::await(self, slow, std::chrono::milliseconds(20));
    EXPECT_FALSE(t.ok());
    EXPECT_EQ(t.error()[0], T("timeout"));
    co_await task::shutdown(self, slow);
  });
}

// Task.await_many: every value in the tasks' order whatever order they finish in; the first
// failure or the timeout is the error, shaped as Elixir's exit.
TEST(Tasks, AwaitManyInOrderFirstFailureOrTimeout) {
  Runtime rt;
  block_on(rt, [](Process& self) -> Task<> {
    // Each task waits for its go; the gos come last first.
    std::vector<TaskRef> tasks;
    for (int i = 0; i < 3; ++i)
      tasks.push_back(task::async(self, [i](Process& p) -> Task<Term> {
        co_await p.receive([](const Term& m) { return m.is_atom(Atom("go")); });
        co_return Term(i * 10);
      }));
    for (int i = 2; i >= 0; --i) self.send(tasks[static_cast<std::size_t>(i)].pid, Term(Atom("go")));
    auto all = co_await task::await_many(self, tasks);
    EXPECT_EQ(all.value(), (std::vector<Term>{Term(0), Term(10), Term(20)}));
    EXPECT_EQ(self.runtime().process_info(self.pid())->message_queue_len, 0u);  // nothing left behind

    // One fails while the other's result is already waiting behind the failure: the error, and
    // nothing left in the mailbox. (Each task is let go in turn, and its end seen by a monitor of
    // the test's own, which comes after what the task sent.)
    auto go_then = [](Term result) {
      return [result](Process& p) -> Task<Term> {
        co_await p.receive([](const Term& m) { return m.is_atom(Atom("go")); });
        if (result.is_atom(Atom("boom"))) throw Exit(result);
        co_return result;
      };
    };
    auto bad = task::async_nolink(self, go_then(T("boom")));
    auto ok = task::async_nolink(self, go_then(Term(1)));
    for (const TaskRef* t : {&bad, &ok}) {
      const Term watch(self.monitor(t->pid));
      self.send(t->pid, Term(Atom("go")));
      co_await self.receive([&](const Term& m) { return m.is_tuple() && m.tuple_size() == 5 && m[1] == watch; });
    }
    const std::vector<TaskRef> mixed{ok, bad};
    auto failed = co_await task::await_many(self, mixed);
    EXPECT_EQ(failed.error()[0], T("boom"));
    EXPECT_EQ(failed.error()[1][1], T("await_many"));
    const Term args = failed.error()[1][2];
    EXPECT_EQ(args.list_elements()[0].list_elements().size(), 2u);  // [Tasks, Timeout]
    EXPECT_EQ(self.runtime().process_info(self.pid())->message_queue_len, 0u);

    auto stuck = task::async_nolink(self, [](Process& p) -> Task<Term> {
      co_await p.receive([](const Term&) { return false; });
      co_return Term();
    });
    const std::vector<TaskRef> one{stuck};
    auto late = co_await task::await_many(self, one, std::chrono::milliseconds(20));
    EXPECT_EQ(late.error()[0], T("timeout"));
    co_await task::shutdown(self, stuck);
  });
}

}  // namespace
}  // namespace hypha
