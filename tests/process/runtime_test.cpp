#include "hypha/process.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>

#include "hypha/term/text.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;

constexpr auto kWait = 5s;  // upper bound for something that must happen; never slept through

Term T(std::string_view text) { return parse_term(text).value(); }

bool is_tagged(const Term& m, std::string_view tag) {
  return m.is_tuple() && m.tuple_size() > 0 && m[0].is_atom(Atom(tag));
}

// A process that sends everything it receives back to the pid in the message {From, Msg}.
Task<> echo(Process& self) {
  for (;;) {
    Term m = co_await self.receive();
    if (m.is_atom(Atom("stop"))) co_return;
    self.send(m[0].pid(), m[1]);
  }
}

class RuntimeTest : public ::testing::Test {
 protected:
  Runtime rt{RuntimeOptions{.threads = 2}};
};

TEST_F(RuntimeTest, SpawnedProcessReceivesAndReplies) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn(echo);
  rt.send(p, Term::tuple({Term(me.pid()), "hello"_atom}));
  auto reply = me.receive(kWait);
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "hello"_atom);
  EXPECT_TRUE(rt.alive(p));
}

// Idle workers that never spin (RuntimeOptions::idle_spin = 0) still wake for every message.
TEST(Runtime, WorksWithoutIdleSpinning) {
  Runtime quiet{RuntimeOptions{.threads = 2, .idle_spin = std::chrono::microseconds(0)}};
  Mailbox me = quiet.mailbox();
  Pid p = quiet.spawn(echo);
  for (int i = 0; i < 1000; ++i) {
    quiet.send(p, Term::tuple({Term(me.pid()), Term(i)}));
    auto reply = me.receive(kWait);
    ASSERT_TRUE(reply);
    ASSERT_EQ(*reply, Term(i));
  }
}

// A Mailbox that outlives its Runtime (a node stopped first) is inert and safe to destroy.
TEST(Runtime, AMailboxThatOutlivesItsRuntimeIsInert) {
  std::optional<Mailbox> kept;
  Pid kept_pid;
  {
    Runtime short_lived{RuntimeOptions{.threads = 1}};
    kept.emplace(short_lived.mailbox());
    kept_pid = kept->pid();
    Mailbox other = short_lived.mailbox();
    other.send(kept_pid, "queued"_atom);
    ASSERT_EQ(kept->queue_length(), 1u);
  }
  EXPECT_EQ(kept->pid(), kept_pid);
  EXPECT_EQ(kept->receive(10ms), std::nullopt);
  EXPECT_THROW(kept->receive(), std::logic_error);
  kept->send(kept_pid, "nowhere"_atom);  // no effect, no crash
  EXPECT_FALSE(kept->demonitor(Ref{}));
  kept.reset();  // destroying it touches nothing of the runtime
}

TEST_F(RuntimeTest, MessagesFromOneSenderArriveInOrder) {
  Mailbox me = rt.mailbox();
  Pid checker = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    std::int64_t expected = 0;
    for (;;) {
      Term m = co_await self.receive();
      if (m.is_atom(Atom("done"))) break;
      if (m.small_integer() != expected) {
        self.send(reply, "out_of_order"_atom);
        co_return;
      }
      ++expected;
    }
    self.send(reply, Term(expected));
  });
  Pid sender = rt.spawn([checker](Process& self) -> Task<> {
    for (int i = 0; i < 20000; ++i) self.send(checker, Term(i));
    self.send(checker, "done"_atom);
    co_return;
  });
  (void)sender;
  EXPECT_EQ(me.receive(kWait), Term(20000));
}

// send_each to more processes than one scheduling batch, some running, some waiting, a mailbox
// and a dead pid among them: every live receiver gets each message once, in order, from a plain
// thread and from a process.
TEST_F(RuntimeTest, SendEachReachesEveryReceiverOnceInOrder) {
  Mailbox done = rt.mailbox();
  const Pid report = done.pid();
  constexpr int kProcs = 1000, kMsgs = 3;
  std::vector<Pid> to;
  for (int i = 0; i < kProcs; ++i)
    to.push_back(rt.spawn([report](Process& self) -> Task<> {
      for (long want = 0; want < 2 * kMsgs; ++want) {
        const Term m = co_await self.receive();
        if (!(m == Term(want % kMsgs))) throw Exit(Term::tuple({"out_of_order"_atom, m}));
      }
      self.send(report, "ok"_atom);
    }));
  Mailbox box = rt.mailbox();
  to.push_back(box.pid());
  const Pid dead = rt.spawn([](Process&) -> Task<> { co_return; });
  while (rt.alive(dead)) std::this_thread::yield();
  to.push_back(dead);
  for (long i = 0; i < kMsgs; ++i) rt.send_each(to, Term(i));
  rt.spawn([to](Process& self) -> Task<> {
    for (long i = 0; i < kMsgs; ++i) self.send_each(to, Term(i));
    co_return;
  });
  for (int i = 0; i < kProcs; ++i) {
    auto m = done.receive(kWait);
    ASSERT_TRUE(m) << "only " << i << " receivers got all";
    EXPECT_EQ(*m, "ok"_atom);
  }
  for (long i = 0; i < 2 * kMsgs; ++i) EXPECT_EQ(box.receive(kWait), std::optional<Term>(Term(i % kMsgs)));
  EXPECT_FALSE(box.receive(0ms));
}

TEST_F(RuntimeTest, SelectiveReceiveTakesTheMatchAndKeepsTheRestInOrder) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    // Wait for `go`, which arrives after three other messages.
    co_await self.receive([](const Term& m) { return m.is_atom(Atom("go")); });
    std::vector<Term> rest;
    for (int i = 0; i < 3; ++i) rest.push_back(co_await self.receive());
    self.send(reply, Term::list(std::move(rest)));
  });
  rt.send(p, Term(1));
  rt.send(p, Term(2));
  rt.send(p, Term(3));
  rt.send(p, "go"_atom);
  EXPECT_EQ(me.receive(kWait), T("[1,2,3]"));
}

TEST_F(RuntimeTest, ReceiveTimesOutWithNothingAndZeroTimeoutPolls) {
  Mailbox me = rt.mailbox();
  rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    auto none = co_await self.receive(30ms);
    auto poll = co_await self.receive(0ms);
    self.send(reply, Term::tuple({Term(none.has_value()), Term(poll.has_value())}));
  });
  EXPECT_EQ(me.receive(kWait), T("{false,false}"));
}

TEST_F(RuntimeTest, ATimedReceiveStillGetsAMessageThatArrivesInTime) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    auto m = co_await self.receive(10s);
    self.send(reply, m ? *m : "timeout"_atom);
  });
  rt.send(p, "ping"_atom);
  EXPECT_EQ(me.receive(kWait), "ping"_atom);
}

TEST_F(RuntimeTest, ExitReasonReachesMonitorsAndLinksKill) {
  Mailbox me = rt.mailbox();
  Pid victim = rt.spawn([](Process& self) -> Task<> {
    co_await self.receive();
    self.exit("boom"_atom);
  });
  Pid linked = rt.spawn([victim, reply = me.pid()](Process& self) -> Task<> {
    self.link(victim);
    self.send(reply, "linked"_atom);
    co_await self.receive();  // never comes: the link kills it first
  });
  // The link exists before the victim dies.
  ASSERT_EQ(me.receive(kWait), Term("linked"_atom));
  Ref m1 = me.monitor(victim);
  Ref m2 = me.monitor(linked);
  rt.send(victim, "go"_atom);
  std::map<Pid, Term> reasons;
  for (int i = 0; i < 2; ++i) {
    auto down = me.receive(kWait);
    ASSERT_TRUE(down);
    ASSERT_TRUE(is_tagged(*down, "DOWN"));
    EXPECT_TRUE((*down)[1] == Term(m1) || (*down)[1] == Term(m2));
    reasons[(*down)[3].pid()] = (*down)[4];
  }
  EXPECT_EQ(reasons[victim], "boom"_atom);
  EXPECT_EQ(reasons[linked], "boom"_atom);
}

TEST_F(RuntimeTest, ExitOnReturnEndsWithThatReasonWithoutAnException) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    Term m = co_await self.receive();
    self.exit_on_return(Term::tuple({"result"_atom, m}));
    self.send(reply, "returning"_atom);  // still alive until the body returns
  });
  Ref mon = me.monitor(p);
  rt.send(p, Term(42));
  EXPECT_EQ(me.receive(kWait), Term("returning"_atom));
  EXPECT_EQ(me.receive(kWait), Term::tuple({"DOWN"_atom, Term(mon), "process"_atom, Term(p), T("{result,42}")}));
}

TEST_F(RuntimeTest, TrapExitTurnsExitSignalsIntoMessages) {
  Mailbox me = rt.mailbox();
  rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    self.trap_exit(true);
    Pid child = self.spawn_link([](Process& c) -> Task<> { c.exit(Term::tuple({"shutdown"_atom, 7})); co_return; });
    Term m = co_await self.receive();
    self.send(reply, Term::tuple({m, Term(child)}));
  });
  auto r = me.receive(kWait);
  ASSERT_TRUE(r);
  const Term& exit_msg = (*r)[0];
  EXPECT_TRUE(is_tagged(exit_msg, "EXIT"));
  EXPECT_EQ(exit_msg[1], (*r)[1]);
  EXPECT_EQ(exit_msg[2], T("{shutdown,7}"));
}

TEST_F(RuntimeTest, NormalExitDoesNotKillALinkedProcess) {
  Mailbox me = rt.mailbox();
  Pid parent = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    self.spawn_link([](Process&) -> Task<> { co_return; });
    auto m = co_await self.receive();
    self.send(reply, m == "check"_atom ? "still_alive"_atom : "?"_atom);
  });
  Pid probe = rt.spawn([parent](Process& self) -> Task<> {
    co_await self.receive(50ms);  // let the child's normal exit signal land first
    self.send(parent, "check"_atom);
  });
  (void)probe;
  EXPECT_EQ(me.receive(kWait), "still_alive"_atom);
}

TEST_F(RuntimeTest, KillIsUntrappableAndLinksSeeKilled) {
  Mailbox me = rt.mailbox();
  Pid target = rt.spawn([](Process& self) -> Task<> {
    self.trap_exit(true);
    for (;;) co_await self.receive();
  }, SpawnOptions{.trap_exit = true});
  me.link(target);
  Ref mon = me.monitor(target);
  rt.exit(target, "kill"_atom);
  std::vector<Term> got;
  for (int i = 0; i < 2; ++i) got.push_back(*me.receive(kWait));
  std::sort(got.begin(), got.end());  // tuples order by size first: the 'EXIT' one is smaller
  EXPECT_EQ(got[0], Term::tuple({"EXIT"_atom, Term(target), "killed"_atom}));
  EXPECT_EQ(got[1], Term::tuple({"DOWN"_atom, Term(mon), "process"_atom, Term(target), "killed"_atom}));
}

TEST_F(RuntimeTest, ExitFromOutsideWithNormalIsIgnoredUnlessTrapped) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn(echo);
  rt.exit(p, "normal"_atom);
  rt.send(p, Term::tuple({Term(me.pid()), "alive"_atom}));
  EXPECT_EQ(me.receive(kWait), "alive"_atom);
}

TEST_F(RuntimeTest, MonitorOfADeadProcessGivesNoproc) {
  Mailbox me = rt.mailbox();
  Pid gone = rt.spawn([](Process&) -> Task<> { co_return; });
  Ref wait_for = me.monitor(gone);
  ASSERT_TRUE(me.receive(kWait));  // its DOWN (normal or noproc, depending on timing)
  (void)wait_for;
  Ref r = me.monitor(gone);
  EXPECT_EQ(me.receive(kWait), Term::tuple({"DOWN"_atom, Term(r), "process"_atom, Term(gone), "noproc"_atom}));
}

TEST_F(RuntimeTest, DemonitorWithFlushRemovesTheDownMessage) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn([](Process& self) -> Task<> { co_await self.receive(); });
  Ref r = me.monitor(p);
  Ref watch = me.monitor(p);
  rt.send(p, "die"_atom);
  // Wait for one DOWN; the other is then certainly queued too.
  auto first = me.receive([&](const Term& m) { return m[1] == Term(watch); }, kWait);
  ASSERT_TRUE(first);
  EXPECT_FALSE(me.demonitor(r, true));  // already fired: nothing to remove but the message
  EXPECT_EQ(me.queue_length(), 0u);
}

TEST_F(RuntimeTest, DemonitorStopsTheDown) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn([](Process& self) -> Task<> { co_await self.receive(); });
  Ref r = me.monitor(p);
  EXPECT_TRUE(me.demonitor(r));
  Ref watch = me.monitor(p);
  rt.send(p, "die"_atom);
  auto down = me.receive(kWait);
  ASSERT_TRUE(down);
  EXPECT_EQ((*down)[1], Term(watch));  // only the second monitor fired
  EXPECT_FALSE(me.receive(50ms));
}

TEST_F(RuntimeTest, RegisteredNames) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn(echo);
  EXPECT_TRUE(rt.register_name(Atom("echo"), p));
  EXPECT_FALSE(rt.register_name(Atom("echo"), p));          // taken
  EXPECT_FALSE(rt.register_name(Atom("other_name"), p));    // a process has one name
  EXPECT_EQ(rt.whereis(Atom("echo")), p);
  EXPECT_TRUE(rt.send(Atom("echo"), Term::tuple({Term(me.pid()), 1})));
  EXPECT_EQ(me.receive(kWait), Term(1));
  EXPECT_FALSE(rt.send(Atom("nobody"), Term(1)));
  Ref r = me.monitor(p);
  rt.send(p, "stop"_atom);
  ASSERT_TRUE(me.receive([&](const Term& m) { return m[1] == Term(r); }, kWait));
  EXPECT_FALSE(rt.whereis(Atom("echo")));  // a dead process loses its name
}

TEST_F(RuntimeTest, MonitorByNameReportsTheName) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn(echo);
  ASSERT_TRUE(rt.register_name(Atom("named"), p));
  Pid watcher = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    Ref r = self.monitor(Atom("named"), self.runtime().node());
    self.send(reply, "monitoring"_atom);
    Term down = co_await self.receive();
    self.send(reply, Term::tuple({down[1] == Term(r) ? "ok"_atom : "bad_ref"_atom, down[3], down[4]}));
  });
  (void)watcher;
  ASSERT_EQ(me.receive(kWait), "monitoring"_atom);
  rt.send(p, "stop"_atom);
  EXPECT_EQ(me.receive(kWait), Term::tuple({"ok"_atom, Term::tuple({"named"_atom, Term(rt.node())}), "normal"_atom}));
}

TEST_F(RuntimeTest, SendAfterDeliversAndCancelPrevents) {
  Mailbox me = rt.mailbox();
  TimerRef cancelled = rt.send_after(20ms, me.pid(), "cancelled"_atom);
  EXPECT_TRUE(rt.cancel_timer(cancelled));
  EXPECT_FALSE(rt.cancel_timer(cancelled));
  rt.send_after(30ms, me.pid(), "fired"_atom);
  EXPECT_EQ(me.receive(kWait), "fired"_atom);
  EXPECT_FALSE(me.receive(50ms));
}

// The timer thread sleeps until its first deadline and is woken only for an earlier one: a
// timer started after a far one, or after the first one was cancelled, still fires on time.
TEST_F(RuntimeTest, TimersFireInDeadlineOrderWhateverTheOrderTheyWereStartedAndCancelled) {
  Mailbox me = rt.mailbox();
  TimerRef far = rt.send_after(60s, me.pid(), "far"_atom);
  ASSERT_FALSE(me.receive(10ms));  // the timer thread now sleeps towards the far deadline
  rt.send_after(40ms, me.pid(), "second"_atom);
  rt.send_after(10ms, me.pid(), "first"_atom);
  TimerRef dropped = rt.send_after(20ms, me.pid(), "dropped"_atom);
  EXPECT_TRUE(rt.cancel_timer(dropped));
  EXPECT_EQ(me.receive(kWait), "first"_atom);
  EXPECT_EQ(me.receive(kWait), "second"_atom);
  EXPECT_TRUE(rt.cancel_timer(far));
  // Later than a deadline that was cancelled: the thread wakes at the stale one, then this one.
  TimerRef soon = rt.send_after(30ms, me.pid(), "cancelled"_atom);
  EXPECT_TRUE(rt.cancel_timer(soon));
  rt.send_after(50ms, me.pid(), "last"_atom);
  EXPECT_EQ(me.receive(kWait), "last"_atom);
  EXPECT_FALSE(me.receive(50ms));
}

TEST_F(RuntimeTest, ExceptionsBecomeExitReasons) {
  Mailbox me = rt.mailbox();
  auto [pid, ref] = std::pair<Pid, Ref>{};
  Pid p = rt.spawn([](Process& self) -> Task<> {
    co_await self.receive();
    throw std::runtime_error("bad input");
  });
  Ref r = me.monitor(p);
  rt.send(p, "go"_atom);
  EXPECT_EQ(me.receive(kWait), Term::tuple({"DOWN"_atom, Term(r), "process"_atom, Term(p),
                                           T("{exception,<<\"bad input\">>}")}));
  (void)pid;
  (void)ref;
}

TEST_F(RuntimeTest, LinkToADeadProcessGivesNoproc) {
  Mailbox me = rt.mailbox();
  Pid gone = rt.spawn([](Process&) -> Task<> { co_return; });
  Ref r = me.monitor(gone);
  ASSERT_TRUE(me.receive(kWait));
  (void)r;
  me.link(gone);
  EXPECT_EQ(me.receive(kWait), Term::tuple({"EXIT"_atom, Term(gone), "noproc"_atom}));
}

Task<int> add_later(Process& self, int a) {
  auto m = co_await self.receive();
  co_return a + static_cast<int>(m.small_integer());
}

Task<int> fails(Process&) {
  throw std::invalid_argument("nested");
  co_return 0;
}

TEST_F(RuntimeTest, NestedTasksReturnValuesAndPropagateExceptions) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    int v = co_await add_later(self, 40);
    std::string caught;
    try {
      co_await fails(self);
    } catch (const std::invalid_argument& e) {
      caught = e.what();
    }
    self.send(reply, Term::tuple({Term(v), Term::binary(caught)}));
  });
  rt.send(p, Term(2));
  EXPECT_EQ(me.receive(kWait), T("{42,<<\"nested\">>}"));
}

TEST_F(RuntimeTest, SpawnMonitorSeesEvenAnImmediateExit) {
  Mailbox me = rt.mailbox();
  rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    auto [pid, ref] = self.spawn_monitor([](Process& c) -> Task<> { c.exit("quick"_atom); co_return; });
    Term down = co_await self.receive();
    self.send(reply, Term::tuple({Term(down[1] == Term(ref)), Term(down[3] == Term(pid)), down[4]}));
  });
  EXPECT_EQ(me.receive(kWait), T("{true,true,quick}"));
}

TEST_F(RuntimeTest, ProcessInfoReportsQueueAndStatus) {
  Pid p = rt.spawn([](Process& self) -> Task<> {
    co_await self.receive([](const Term& m) { return m.is_atom(Atom("wanted")); });
  });
  for (int i = 0; i < 5; ++i) rt.send(p, Term(i));
  std::optional<ProcessInfo> info;
  for (int i = 0; i < 100000; ++i) {
    info = rt.process_info(p);
    if (info && info->status == ProcessStatus::Waiting && info->message_queue_len == 5) break;
    std::this_thread::yield();
  }
  ASSERT_TRUE(info);
  EXPECT_EQ(info->message_queue_len, 5u);
  EXPECT_EQ(info->status, ProcessStatus::Waiting);
  EXPECT_FALSE(rt.process_info(Pid{rt.node(), 999999, 0, 0}));
}

TEST_F(RuntimeTest, ARingOfAThousandProcessesPassesATokenAround) {
  Mailbox me = rt.mailbox();
  constexpr int kN = 1000, kLaps = 20;
  std::vector<Pid> ring;
  // Each forwards {Hops, Next...} to the next one; the last reports.
  Pid last = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    for (;;) {
      Term m = co_await self.receive();
      self.send(reply, m);
    }
  });
  Pid next = last;
  for (int i = 0; i < kN; ++i) {
    next = rt.spawn([next](Process& self) -> Task<> {
      for (;;) self.send(next, co_await self.receive());
    });
  }
  for (int lap = 0; lap < kLaps; ++lap) rt.send(next, Term(lap));
  for (int lap = 0; lap < kLaps; ++lap) EXPECT_EQ(me.receive(kWait), Term(lap));
  EXPECT_GE(rt.process_count(), static_cast<std::size_t>(kN + 2));
}

TEST_F(RuntimeTest, AliasesDeliverUntilUnaliased) {
  Mailbox me = rt.mailbox();
  Pid p = rt.spawn([reply = me.pid()](Process& self) -> Task<> {
    const Ref a = self.alias();
    self.send(reply, Term(a));
    Term first = co_await self.receive();
    self.unalias(a);
    self.send(reply, Term::tuple({"got"_atom, first}));
    auto second = co_await self.receive(200ms);
    self.send(reply, Term(second.has_value()));
  });
  (void)p;
  auto alias = me.receive(kWait);
  ASSERT_TRUE(alias && alias->is_ref());
  rt.send(alias->ref(), "via_alias"_atom);
  EXPECT_EQ(me.receive(kWait), Term::tuple({"got"_atom, "via_alias"_atom}));
  rt.send(alias->ref(), "after_unalias"_atom);  // dropped: the alias is gone
  EXPECT_EQ(me.receive(kWait), Term(false));
}

TEST(Runtime, PidsAndRefsCarryTheNodeName) {
  Runtime rt{RuntimeOptions{.node = Atom("a@host"), .creation = 7, .threads = 1}};
  Mailbox me = rt.mailbox();
  EXPECT_EQ(me.pid().node, Atom("a@host"));
  EXPECT_EQ(me.pid().creation, 7u);
  Ref r1 = rt.make_ref(), r2 = rt.make_ref();
  EXPECT_NE(r1, r2);
  EXPECT_EQ(r1.node, Atom("a@host"));
  EXPECT_TRUE(rt.is_local(me.pid()));
  EXPECT_FALSE(rt.is_local(Pid{Atom("b@host"), 1, 0, 7}));
}

}  // namespace
}  // namespace hypha
