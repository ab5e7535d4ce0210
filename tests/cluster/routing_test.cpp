// Routing tables: ranges from config, and the consistent-hash ring's key movement.
#include "hypha/cluster/routing.hpp"

#include <gtest/gtest.h>

#include <map>

namespace hypha {
namespace {

TEST(RangeTable, ParsesRangesAndLooksUpTheFirstByte) {
  auto t = RangeTable::parse({{"a-m", "foo@127.0.0.1"}, {"n-z", "bar@127.0.0.1"}, {"0", "baz@127.0.0.1"}});
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(t->lookup("hello"), Atom("foo@127.0.0.1"));
  EXPECT_EQ(t->lookup("mm"), Atom("foo@127.0.0.1"));
  EXPECT_EQ(t->lookup("world"), Atom("bar@127.0.0.1"));
  EXPECT_EQ(t->lookup("0abc"), Atom("baz@127.0.0.1"));
  EXPECT_FALSE(t->lookup("1abc").has_value());
  EXPECT_FALSE(t->lookup("").has_value());
  EXPECT_EQ(t->describe(), "[{\"a-m\", 'foo@127.0.0.1'}, {\"n-z\", 'bar@127.0.0.1'}, {\"0\", 'baz@127.0.0.1'}]");
}

TEST(RangeTable, BadEntriesAreNamed) {
  EXPECT_NE(RangeTable::parse({{"abc", "foo@h"}}).error().find("\"abc\""), std::string::npos);
  EXPECT_NE(RangeTable::parse({{"z-a", "foo@h"}}).error().find("empty"), std::string::npos);
  EXPECT_NE(RangeTable::parse({{"a", "nohost"}}).error().find("not a node name"), std::string::npos);
}

std::map<std::string, Atom> place(const HashRing& ring, int keys) {
  std::map<std::string, Atom> out;
  for (int i = 0; i < keys; ++i) {
    const std::string k = "bucket-" + std::to_string(i);
    out.emplace(k, *ring.lookup(k));
  }
  return out;
}

TEST(HashRing, AddingOrRemovingANodeMovesAboutOneNthOfTheKeys) {
  constexpr int kKeys = 20000;
  HashRing ring;
  for (int i = 0; i < 4; ++i) ring.add(Atom("n" + std::to_string(i) + "@h"));
  const auto before = place(ring, kKeys);
  // Balance: each of 4 nodes holds roughly a quarter.
  std::map<Atom, int> load;
  for (const auto& [_, n] : before) ++load[n];
  for (const auto& [n, c] : load) EXPECT_NEAR(c, kKeys / 4, kKeys / 4 * 0.25) << n.text();

  ring.add(Atom("n4@h"));  // a fifth node: about 1/5 of the keys move, all of them to it
  const auto grown = place(ring, kKeys);
  int moved = 0;
  for (const auto& [k, n] : grown) {
    if (n != before.at(k)) {
      ++moved;
      EXPECT_EQ(n, Atom("n4@h"));
    }
  }
  EXPECT_NEAR(moved, kKeys / 5, kKeys / 5 * 0.3);

  ring.remove(Atom("n1@h"));  // one of five leaves: its keys (about 1/5) move, nothing else
  const auto shrunk = place(ring, kKeys);
  moved = 0;
  for (const auto& [k, n] : shrunk) {
    if (n != grown.at(k)) {
      ++moved;
      EXPECT_EQ(grown.at(k), Atom("n1@h"));
    }
  }
  EXPECT_NEAR(moved, kKeys / 5, kKeys / 5 * 0.3);
}

TEST(HashRing, WeightsShareKeysInProportion) {
  HashRing ring;
  ring.add(Atom("light@h"), 1);
  ring.add(Atom("heavy@h"), 3);
  int heavy = 0;
  for (const auto& [_, n] : place(ring, 20000)) heavy += n == Atom("heavy@h");
  EXPECT_NEAR(heavy, 15000, 1500);
  EXPECT_FALSE(HashRing().lookup("x").has_value());
}

}  // namespace
}  // namespace hypha
