// The cache replica's rules on their own (src/cluster/cache/store.hpp): last writer wins in any
// order, tombstones, active expiry, LRU eviction with ghosts, digests.
#include "../../src/cluster/cache/store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace hypha::cache::detail {
namespace {

Entry live(std::int64_t v, std::uint64_t wall, const char* origin = "a@h", std::uint64_t expires = 0) {
  return Entry{Term(v), Version{HlcTime{wall, 0}, Atom(origin)}, expires, Kind::Live};
}
Entry deleted(std::uint64_t wall, const char* origin = "a@h") {
  return Entry{Term(), Version{HlcTime{wall, 0}, Atom(origin)}, 0, Kind::Deleted};
}
std::uint64_t total_digest(const Store& s) {
  std::uint64_t d = 0;
  for (std::size_t p = 0; p < kPartitions; ++p) d ^= s.digest(p) * (p + 1);
  return d;
}
const std::uint64_t now = 1'000'000;

TEST(CacheStore, TheNewestVersionWinsWhateverOrderTheWritesArriveIn) {
  std::vector<std::pair<Term, Entry>> writes;
  for (int k = 0; k < 50; ++k)
    for (int w = 0; w < 4; ++w)
      writes.emplace_back(Term(k), w == 3 && k % 5 == 0 ? deleted(now + 10 * w) : live(k * 100 + w, now + 10 * w));
  // Two writes at one time: the node name breaks the tie.
  writes.emplace_back(Term(1000), live(1, now, "a@h"));
  writes.emplace_back(Term(1000), live(2, now, "b@h"));
  std::mt19937 rng(7);
  std::vector<std::uint64_t> digests;
  for (int round = 0; round < 5; ++round) {
    Store s(0, 600'000);
    std::shuffle(writes.begin(), writes.end(), rng);
    for (const auto& [k, e] : writes) s.merge(k, e, now);
    for (int k = 0; k < 50; ++k) {
      const Entry* e = s.get(Term(k), now);
      if (k % 5 == 0) {
        EXPECT_EQ(e, nullptr) << k;
        ASSERT_NE(s.raw(Term(k)), nullptr);
        EXPECT_EQ(s.raw(Term(k))->kind, Kind::Deleted);
      } else {
        ASSERT_NE(e, nullptr) << k;
        EXPECT_EQ(e->value, Term(k * 100 + 3));
      }
    }
    EXPECT_EQ(s.get(Term(1000), now)->value, Term(2));
    EXPECT_EQ(s.live(), 41u);
    digests.push_back(total_digest(s));
  }
  EXPECT_TRUE(std::all_of(digests.begin(), digests.end(), [&](std::uint64_t d) { return d == digests[0]; }));
  // Merging what is already held changes nothing.
  Store s(0, 600'000);
  EXPECT_TRUE(s.merge(Term(1), live(1, now), now));
  EXPECT_FALSE(s.merge(Term(1), live(1, now), now));
  EXPECT_FALSE(s.merge(Term(1), live(0, now - 1), now));
}

TEST(CacheStore, ATombstoneKeepsAnOlderWriteOutUntilItIsCollected) {
  Store s(0, 1000);
  s.merge(Term(1), live(1, now), now);
  s.merge(Term(1), deleted(now + 5), now + 5);
  EXPECT_FALSE(s.merge(Term(1), live(2, now + 3), now + 6));  // older than the delete
  EXPECT_EQ(s.get(Term(1), now + 6), nullptr);
  EXPECT_EQ(s.held_in(partition_of(key_hash(Term(1)))), 1u);
  s.sweep(now + 1005);
  EXPECT_EQ(s.raw(Term(1)), nullptr);  // collected: memory is bounded by live keys
  // A tombstone that arrives past the horizon still removes an older entry, but is not kept.
  s.merge(Term(2), live(2, now), now);
  EXPECT_TRUE(s.merge(Term(2), deleted(now + 1), now + 2000));
  EXPECT_EQ(s.raw(Term(2)), nullptr);
  // A newer write after a delete brings the key back.
  s.merge(Term(3), deleted(now), now);
  EXPECT_TRUE(s.merge(Term(3), live(3, now + 1), now + 1));
  EXPECT_EQ(s.get(Term(3), now + 1)->value, Term(3));
}

TEST(CacheStore, ExpiredEntriesAreGoneForReadsAtOnceAndSweptWithoutReads) {
  Store s(0, 600'000);
  for (int k = 0; k < 100; ++k) s.merge(Term(k), live(k, now, "a@h", k < 60 ? now + 500 : 0), now);
  EXPECT_EQ(s.live(), 100u);
  EXPECT_EQ(s.next_expiry(), now + 500);
  EXPECT_EQ(s.get(Term(1), now + 500), nullptr);  // due: not read, though not swept yet
  EXPECT_EQ(s.sweep(now + 499), 0u);
  EXPECT_EQ(s.sweep(now + 500), 60u);
  EXPECT_EQ(s.live(), 40u);
  EXPECT_EQ(s.counters().expirations, 60u);
  EXPECT_EQ(s.next_expiry(), 0u);
  // Written again without a TTL before its time: the old expiry does not take it.
  s.merge(Term(200), live(1, now, "a@h", now + 10), now);
  s.merge(Term(200), live(2, now + 1), now + 1);
  EXPECT_EQ(s.sweep(now + 20), 0u);
  EXPECT_EQ(s.get(Term(200), now + 20)->value, Term(2));
  // One that arrives expired is not kept.
  EXPECT_FALSE(s.merge(Term(300), live(3, now, "a@h", now + 5), now + 10));
}

TEST(CacheStore, AboveMaxEntriesTheLeastRecentlyUsedGoesAndItsGhostKeepsTheDigest) {
  Store s(3, 600'000);
  s.merge(Term(1), live(1, now), now);
  s.merge(Term(2), live(2, now), now);
  s.merge(Term(3), live(3, now), now);
  ASSERT_NE(s.get(Term(1), now), nullptr);  // 1 is used: 2 is now the least recent
  Store full(0, 600'000);
  for (int k = 1; k <= 4; ++k) full.merge(Term(k), live(k, now), now);
  s.merge(Term(4), live(4, now), now);
  EXPECT_EQ(s.live(), 3u);
  EXPECT_EQ(s.get(Term(2), now), nullptr);
  EXPECT_NE(s.get(Term(1), now), nullptr);
  EXPECT_EQ(s.counters().evictions, 1u);
  // The ghost: same digest as a replica that kept the entry, so anti-entropy leaves it be.
  EXPECT_EQ(total_digest(s), total_digest(full));
  EXPECT_FALSE(s.merge(Term(2), live(2, now), now));  // the same version does not come back
  EXPECT_TRUE(s.merge(Term(2), live(22, now + 1), now + 1));  // a newer one does
  EXPECT_EQ(s.get(Term(2), now + 1)->value, Term(22));
  EXPECT_EQ(s.live(), 3u);
}

TEST(CacheStore, APartitionHandedOverIsForgottenWhole) {
  Store s(0, 600'000);
  for (int k = 0; k < 2000; ++k) s.merge(Term(k), live(k, now), now);
  std::size_t sum = 0;
  for (std::size_t p = 0; p < kPartitions; ++p) sum += s.live_in(p);
  EXPECT_EQ(sum, 2000u);
  const std::size_t p = partition_of(key_hash(Term(7)));
  const std::size_t in_p = s.live_in(p);
  ASSERT_GT(in_p, 0u);
  s.drop_partition(p);
  EXPECT_EQ(s.live(), 2000u - in_p);
  EXPECT_EQ(s.digest(p), 0u);
  EXPECT_EQ(s.get(Term(7), now), nullptr);
}

}  // namespace
}  // namespace hypha::cache::detail
