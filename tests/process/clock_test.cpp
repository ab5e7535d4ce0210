// Runtimes on a ManualClock: timers fire when the test moves time, not before, and the clock's
// advance() returns once what was due has fired.
#include <gtest/gtest.h>

#include <thread>

#include "hypha/base/clock.hpp"
#include "hypha/process.hpp"
#include "hypha/process/inbound.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;

// Waits (for real, bounded) until the runtime has no runnable process.
bool wait_quiet(Runtime& rt) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!RuntimeInbound(rt).quiet())
    if (std::chrono::steady_clock::now() > until) return false;
    else std::this_thread::yield();
  return true;
}

TEST(ManualClock, MovesOnlyForwardAndReportsTheEarliestDeadline) {
  ManualClock clock;
  const auto start = clock.now();
  clock.advance(1s);
  EXPECT_EQ(clock.now() - start, 1s);
  clock.set(start);  // back: ignored
  EXPECT_EQ(clock.now() - start, 1s);
  EXPECT_EQ(clock.next_deadline(), Clock::time_point::max());
  EXPECT_EQ(ManualClock().now(), start);  // every run starts at the same point
}

TEST(ManualClock, TimersFireWhenTimeReachesThemAndNotBefore) {
  auto clock = std::make_shared<ManualClock>();
  Runtime rt({.threads = 2, .clock = clock});
  EXPECT_EQ(rt.clock(), clock);
  Mailbox me = rt.mailbox();
  const auto t0 = clock->now();
  rt.send_after(5s, me.pid(), "late"_atom);
  rt.send_after(2s, me.pid(), "early"_atom);
  const TimerRef cancelled = rt.send_after(3s, me.pid(), "cancelled"_atom);
  EXPECT_EQ(clock->next_deadline(), t0 + 2s);
  EXPECT_TRUE(rt.cancel_timer(cancelled));

  clock->advance(1999ms);
  EXPECT_FALSE(me.receive(0ms));
  clock->advance(1ms);  // fired before advance() returns
  EXPECT_EQ(me.receive(0ms), Term("early"_atom));
  EXPECT_EQ(clock->next_deadline(), t0 + 5s);
  clock->advance(10s);
  EXPECT_EQ(me.receive(0ms), Term("late"_atom));
  EXPECT_FALSE(me.receive(0ms));
  EXPECT_EQ(clock->next_deadline(), Clock::time_point::max());
}

TEST(ManualClock, AReceiveTimeoutRunsOutOnlyWhenTimeIsMoved) {
  auto clock = std::make_shared<ManualClock>();
  Runtime rt({.threads = 2, .clock = clock});
  Mailbox me = rt.mailbox();
  const Pid waiter = rt.spawn([to = me.pid()](Process& self) -> Task<> {
    auto m = co_await self.receive(1000ms);
    self.send(to, m ? "message"_atom : "timeout"_atom);
  });
  ASSERT_TRUE(wait_quiet(rt));  // the process is waiting in its receive
  clock->advance(999ms);
  ASSERT_TRUE(wait_quiet(rt));
  EXPECT_FALSE(me.receive(0ms));
  clock->advance(1ms);
  ASSERT_TRUE(wait_quiet(rt));
  EXPECT_EQ(me.receive(0ms), Term("timeout"_atom));
  EXPECT_FALSE(rt.alive(waiter));
}

TEST(ManualClock, ARuntimeOnTheSteadyClockIsAlwaysQuiet) {
  Runtime rt({.threads = 1});
  EXPECT_FALSE(rt.clock()->manual());
  EXPECT_TRUE(RuntimeInbound(rt).quiet());
}

}  // namespace
}  // namespace hypha
