#include "hypha/term/term.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "hypha/term/text.hpp"

namespace hypha {
namespace {

Term pid_on(const char* node, std::uint32_t id) { return Term(Pid{Atom(node), id, 0, 1}); }
Term ref_on(const char* node) {
  Ref r;
  r.node = Atom(node);
  r.len = 3;
  r.ids = {1, 2, 3, 0, 0};
  return Term(r);
}

TEST(Term, DefaultIsNil) {
  Term t;
  EXPECT_TRUE(t.is_nil());
  EXPECT_EQ(t.kind(), Kind::Nil);
  EXPECT_TRUE(t.is_proper_list());
  EXPECT_TRUE(t.list_elements().empty());
}

TEST(Term, IntegersNormaliseSoEqualValuesAreEqual) {
  EXPECT_EQ(Term(5), Term(BigInt(5)));
  EXPECT_TRUE(Term(BigInt(5)).is_small_integer());
  const Term big(18446744073709551615ull);
  EXPECT_FALSE(big.is_small_integer());
  EXPECT_TRUE(big.is_integer());
  EXPECT_EQ(big.big_integer().to_string(), "18446744073709551615");
}

TEST(Term, Literals) {
  using namespace hypha::literals;
  EXPECT_EQ("ok"_atom, Term::atom("ok"));
  EXPECT_EQ("ok"_a, Atom("ok"));
  EXPECT_EQ(Term::tuple({"reply"_atom, 42, 1.5}).to_string(), "{reply,42,1.5}");
}

TEST(Term, BoolsAreAtoms) {
  EXPECT_TRUE(Term(true).is_atom(Atom("true")));
  EXPECT_EQ(Term(false), Term::atom("false"));
}

TEST(Term, FloatsMustBeFinite) {
  EXPECT_THROW((void)Term(std::numeric_limits<double>::infinity()), std::invalid_argument);
  EXPECT_THROW((void)Term(std::nan("")), std::invalid_argument);
}

TEST(Term, ListTailsFlatten) {
  Term a = Term::list({Term(1), Term(2)}, Term::list({Term(3)}));
  Term b = Term::list({Term(1), Term(2), Term(3)});
  EXPECT_EQ(a, b);
  EXPECT_TRUE(a.is_proper_list());
  Term improper = Term::list({Term(1)}, Term::atom("b"));
  EXPECT_FALSE(improper.is_proper_list());
  EXPECT_EQ(improper.list_tail(), Term::atom("b"));
  EXPECT_EQ(Term::list({}, Term(7)), Term(7));  // [|7] is just 7
}

TEST(Term, StringIsAListOfCodePoints) {
  Term s = Term::string("h\xc3\xa9");
  ASSERT_EQ(s.list_elements().size(), 2u);
  EXPECT_EQ(s.list_elements()[1], Term(0xE9));
  EXPECT_THROW(Term::string("\xff"), std::invalid_argument);
}

TEST(Term, MapsKeepLastDuplicateAndSortKeys) {
  Term m = Term::map({{Term::atom("b"), Term(1)}, {Term::atom("a"), Term(2)}, {Term::atom("b"), Term(3)}});
  ASSERT_EQ(m.map_size(), 2u);
  EXPECT_EQ(m.map_entries()[0].first, Term::atom("a"));
  EXPECT_EQ(*m.map_find(Term::atom("b")), Term(3));
  EXPECT_EQ(m.map_find(Term::atom("c")), nullptr);
  // 1 and 1.0 are different keys.
  Term n = Term::map({{Term(1), Term::atom("i")}, {Term(1.0), Term::atom("f")}});
  EXPECT_EQ(n.map_size(), 2u);
  EXPECT_EQ(*n.map_find(Term(1.0)), Term::atom("f"));
}

TEST(Term, BitstringsClearUnusedBits) {
  const std::uint8_t bytes[] = {0xFF};
  Term b = Term::bitstring(bytes, 3);
  EXPECT_EQ(b.bit_size(), 3u);
  EXPECT_EQ(b.binary_bytes()[0], 0xE0);
  EXPECT_FALSE(b.is_binary());
  EXPECT_TRUE(b.is_bitstring());
  EXPECT_TRUE(Term::binary("").is_binary());
  EXPECT_THROW(Term::bitstring(bytes, 0), std::invalid_argument);
}

TEST(Term, TermOrderAcrossKinds) {
  ExportFun f{Atom("m"), Atom("f"), 1};
  const std::vector<Term> ordered = {
      Term(-5), Term(1.5), Term(BigInt::parse("100000000000000000000").value()), Term::atom("a"),
      ref_on("n@h"), Term(f), Term(Port{Atom("n@h"), 1, 0}), pid_on("n@h", 1), Term::tuple({}),
      Term::map({}), Term(), Term::list({Term(1)}), Term::binary("")};
  for (std::size_t i = 0; i + 1 < ordered.size(); ++i)
    EXPECT_LT(ordered[i], ordered[i + 1]) << ordered[i].to_string() << " vs " << ordered[i + 1].to_string();
  auto shuffled = ordered;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(42));
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(shuffled, ordered);
}

TEST(Term, IntegersAndFloatsCompareByValueWithTheIntegerFirst) {
  EXPECT_LT(Term(1), Term(1.5));
  EXPECT_LT(Term(1.5), Term(2));
  EXPECT_NE(Term(1), Term(1.0));
  EXPECT_LT(Term(1), Term(1.0));  // equal value: total order puts the integer first
  EXPECT_TRUE(erlang_equal(Term(1), Term(1.0)));
  EXPECT_TRUE(erlang_equal(Term::tuple({Term(1)}), Term::tuple({Term(1.0)})));
  EXPECT_FALSE(erlang_equal(Term(1), Term(1.5)));
  const Term big(BigInt::parse("9223372036854775808").value());
  EXPECT_TRUE(erlang_equal(big, Term(9223372036854775808.0)));
  EXPECT_LT(Term(9223372036854775807LL), Term(9223372036854775808.0));
}

TEST(Term, NegativeZeroIsDistinctUnderExactEquality) {
  EXPECT_NE(Term(0.0), Term(-0.0));
  EXPECT_LT(Term(-0.0), Term(0.0));
  EXPECT_TRUE(erlang_equal(Term(0.0), Term(-0.0)));
}

TEST(Term, ListsCompareElementwiseThenByTail) {
  EXPECT_LT(Term::list({Term(1), Term(2)}), Term::list({Term(1), Term(3)}));
  EXPECT_LT(Term::list({Term(1)}), Term::list({Term(1), Term(2)}));
  // [1|2] vs [1,2]: the tail 2 (a number) is less than the list [2].
  EXPECT_LT(Term::list({Term(1)}, Term(2)), Term::list({Term(1), Term(2)}));
  // [1|<<>>] vs [1,2]: a bitstring tail sorts after a list.
  EXPECT_GT(Term::list({Term(1)}, Term::binary("")), Term::list({Term(1), Term(2)}));
}

TEST(Term, TuplesAndMapsCompareBySizeFirst) {
  EXPECT_LT(Term::tuple({Term(9)}), Term::tuple({Term(1), Term(1)}));
  EXPECT_LT(Term::map({{Term(9), Term(9)}}), Term::map({{Term(1), Term(1)}, {Term(2), Term(2)}}));
  EXPECT_LT(Term::map({{Term(1), Term(9)}}), Term::map({{Term(2), Term(1)}}));  // keys before values
}

TEST(Term, BitstringsCompareBitwise) {
  const std::uint8_t a[] = {0x80};
  EXPECT_LT(Term::bitstring(a, 1), Term::binary("\x80"));  // <<1:1>> is a prefix of <<128>>
  EXPECT_LT(Term::binary("ab"), Term::binary("b"));
  EXPECT_LT(Term::binary("a"), Term::binary("ab"));
}

TEST(Term, HashAgreesWithEquality) {
  std::unordered_set<Term> set;
  set.insert(Term::tuple({Term(1), Term::binary("x")}));
  set.insert(Term::tuple({Term(1), Term::binary("x")}));
  set.insert(Term(1));
  set.insert(Term(1.0));
  EXPECT_EQ(set.size(), 3u);
  EXPECT_TRUE(set.count(Term::tuple({Term(1), Term::binary("x")})));
}

TEST(Term, WrongKindAccessSaysWhatWasFound) {
  try {
    (void)Term::atom("ok").tuple_size();
    FAIL() << "expected BadTermAccess";
  } catch (const BadTermAccess& e) {
    EXPECT_STREQ(e.what(), "expected tuple, found atom ok");
  }
  EXPECT_THROW(Term::tuple({Term(1)})[1], BadTermAccess);
}

TEST(Term, CopiesShareStorageAndOutliveTheOriginal) {
  Term copy;
  {
    Term original = Term::tuple({Term::binary(std::string(1000, 'x')), Term::list({Term(1)})});
    copy = original;
    EXPECT_EQ(copy.tuple_elements().data(), original.tuple_elements().data());
  }
  EXPECT_EQ(copy[0].binary_view().size(), 1000u);
  Term moved = std::move(copy);
  EXPECT_TRUE(copy.is_nil());  // NOLINT: moved-from is nil by contract
  EXPECT_EQ(moved.tuple_size(), 2u);
}

}  // namespace
}  // namespace hypha

namespace hypha {
namespace {

// Large binaries reuse freed storage (block_cache): what a new binary holds is exactly what it was
// made from, whatever a reused block held before, across sizes around the page rounding and
// across threads (one frees what another made, as a receiving node and its processes do).
TEST(Term, LargeBinariesOverReusedStorageHoldTheirOwnBytes) {
  const std::vector<std::size_t> sizes{16 * 1024 - 100, 16 * 1024, 64 * 1024, 64 * 1024 + 1, 1 << 20, 5 << 20};
  for (int round = 0; round < 3; ++round) {
    std::vector<Term> made;
    for (std::size_t i = 0; i < sizes.size(); ++i)
      made.push_back(Term::binary(std::string(sizes[i], static_cast<char>('a' + round * 7 + static_cast<int>(i)))));
    std::thread([moved = std::move(made)]() mutable { moved.clear(); }).join();
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const char c = static_cast<char>('a' + round * 7 + static_cast<int>(i) + 1);
      const Term again = Term::binary(std::string(sizes[i], c));
      ASSERT_EQ(again.binary_view().size(), sizes[i]);
      EXPECT_EQ(again.binary_view().find_first_not_of(c), std::string_view::npos);
    }
  }
}

}  // namespace
}  // namespace hypha
