// The hybrid logical clock: follows the wall clock, never goes back, orders after what it saw.
#include "hypha/base/hlc.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace hypha {
namespace {

struct Wall {
  std::uint64_t ms = 1'000'000;
  HybridClock::WallMs fn() {
    return [this] { return ms; };
  }
};

TEST(Hlc, FollowsTheWallClockAndCountsEventsWithinAMillisecond) {
  Wall wall;
  HybridClock c(wall.fn());
  EXPECT_EQ(c.now(), (HlcTime{1'000'000, 0}));
  EXPECT_EQ(c.now(), (HlcTime{1'000'000, 1}));
  wall.ms += 5;
  EXPECT_EQ(c.now(), (HlcTime{1'000'005, 0}));
}

TEST(Hlc, NeverGoesBackWhenTheWallClockDoes) {
  Wall wall;
  HybridClock c(wall.fn());
  const HlcTime a = c.now();
  wall.ms -= 2000;  // NTP stepped the clock back
  const HlcTime b = c.now();
  EXPECT_GT(b, a);
  EXPECT_EQ(b.wall_ms, a.wall_ms);
}

TEST(Hlc, ARemoteTimestampIsOrderedBeforeEverythingAfterIt) {
  Wall mine, theirs;
  theirs.ms += 3000;  // their clock is 3 s ahead
  HybridClock a(mine.fn()), b(theirs.fn());
  const HlcTime sent = b.now();
  auto got = a.observe(sent);
  ASSERT_TRUE(got);
  EXPECT_GT(*got, sent);
  EXPECT_GT(a.now(), sent);  // a's next events are after b's, although a's wall clock is behind
  // Both equal on wall time: the larger logical counter wins, plus one.
  HybridClock c(mine.fn());
  (void)c.observe({mine.ms, 7});
  EXPECT_EQ(c.last(), (HlcTime{mine.ms, 8}));
}

TEST(Hlc, ATimestampTooFarAheadIsRefusedAndChangesNothing) {
  Wall wall;
  HybridClock c(wall.fn(), std::chrono::seconds(60));
  const HlcTime before = c.now();
  EXPECT_FALSE(c.observe({wall.ms + 61'000, 0}));
  EXPECT_EQ(c.last(), before);
  EXPECT_TRUE(c.observe({wall.ms + 59'000, 0}));
}

TEST(Hlc, TimestampsFromManyThreadsAreDistinct) {
  HybridClock c;
  std::vector<std::vector<HlcTime>> got(4);
  std::vector<std::thread> ts;
  for (auto& v : got)
    ts.emplace_back([&c, &v] {
      for (int i = 0; i < 10000; ++i) v.push_back(c.now());
    });
  for (auto& t : ts) t.join();
  std::vector<HlcTime> all;
  for (auto& v : got) {
    for (std::size_t i = 1; i < v.size(); ++i) EXPECT_LT(v[i - 1], v[i]);
    all.insert(all.end(), v.begin(), v.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

}  // namespace
}  // namespace hypha
