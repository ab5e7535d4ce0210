#include "hypha/term/atom.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace hypha {
namespace {

TEST(Atom, SameTextGivesSameAtom) {
  Atom a("hello"), b(std::string("hel") + "lo");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.index(), b.index());
  EXPECT_EQ(a.text(), "hello");
  EXPECT_NE(a, Atom("world"));
}

TEST(Atom, DefaultIsTheEmptyAtom) {
  Atom e;
  EXPECT_EQ(e.text(), "");
  EXPECT_EQ(e, Atom(""));
}

TEST(Atom, AcceptsExactly255CharactersAndRefuses256) {
  EXPECT_TRUE(Atom::make(std::string(255, 'a')).ok());
  auto r = Atom::make(std::string(256, 'a'));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("255"), std::string::npos);
  // The limit counts characters, not bytes: 255 two-byte characters fit.
  std::string wide;
  for (int i = 0; i < 255; ++i) wide += "\xc3\xa9";
  auto w = Atom::make(wide);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->length(), 255u);
  EXPECT_FALSE(Atom::make(wide + "\xc3\xa9").ok());
}

TEST(Atom, RefusesMalformedUtf8) {
  EXPECT_FALSE(Atom::make("\xff").ok());
  EXPECT_FALSE(Atom::make("\xc0\x80").ok());      // overlong
  EXPECT_FALSE(Atom::make("\xed\xa0\x80").ok());  // surrogate
  EXPECT_THROW(Atom("\xc3"), std::invalid_argument);
}

TEST(Atom, OrdersByText) {
  EXPECT_LT(Atom("abc"), Atom("abd"));
  EXPECT_LT(Atom("ab"), Atom("abc"));
  EXPECT_LT(Atom("z"), Atom("\xc3\xa9"));  // code point order: 'z' < 'é'
}

TEST(Atom, ExistingNeverCreates) {
  const std::string name = "atom_that_nobody_made_" + std::to_string(reinterpret_cast<std::uintptr_t>(&name));
  EXPECT_FALSE(Atom::existing(name).ok());
  Atom made(name);
  EXPECT_EQ(*Atom::existing(name), made);
}

TEST(Atom, Latin1TextBecomesUtf8) {
  auto a = Atom::from_latin1("caf\xe9");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->text(), "caf\xc3\xa9");
  EXPECT_TRUE(a->is_latin1());
  EXPECT_FALSE(Atom("\xce\xb1").is_latin1());  // alpha
}

TEST(Atom, ConcurrentInterningYieldsOneAtom) {
  std::vector<std::thread> threads;
  std::vector<Atom> seen(8);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([t, &seen] {
      for (int i = 0; i < 2000; ++i) Atom("concurrent_" + std::to_string(i));
      seen[t] = Atom("concurrent_1999");
    });
  for (auto& th : threads) th.join();
  for (const auto& a : seen) EXPECT_EQ(a, seen[0]);
}

}  // namespace
}  // namespace hypha
