// erlang:phash2 against values a real erl 25 printed (erlang:phash2(T, 1 bsl 32)), one or more
// per kind of term; tests/interop/phash2.escript compares thousands of random terms with erl.
#include <gtest/gtest.h>

#include "hypha/term.hpp"

namespace hypha {
namespace {

Term T(std::string_view text) { return *parse_term(text); }

TEST(Phash2, MatchesErlOnEveryKind) {
  const std::vector<std::uint8_t> pid_etf = {131, 88, 119, 3, 'a', '@', 'h', 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2};
  const std::vector<std::uint8_t> ref_etf = {131, 90, 0, 3, 119, 3, 'a', '@', 'h', 0, 0, 0, 1,
                                             0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 9};
  const struct {
    Term term;
    std::uint32_t hash;
  } cases[] = {
      {T("[]"), 3468870702u},
      {T("{}"), 221703996u},
      {T("#{}"), 844985373u},
      {T("<<>>"), 147926629u},
      {T("0"), 3175731469u},
      {T("-1"), 1117813597u},
      {T("134217728"), 2562491755u},
      {T("-18446744073709551616"), 2563594619u},
      {T("0.0"), 423528920u},
      {Term(-0.0), 423528920u},
      {T("<<1:3>>"), 3965351140u},
      {T("<<\"abcdefghijklmn\">>"), 445108337u},
      {T("[a | b]"), 2356411656u},
      {*etf::decode(pid_etf), 1742111205u},
      {*etf::decode(ref_etf), 464301042u},
      {T("fun lists:map/2"), 840287883u},
      {T("#{a => 1, b => 2}"), 1982682855u},
      {T("ok"), 1883u},
      {T("{a, <<\"b\">>, [1, 2, 3]}"), 3737474695u},
  };
  for (const auto& c : cases) EXPECT_EQ(phash2_full(c.term), c.hash) << c.term.to_string();
  EXPECT_EQ(phash2(T("a")), 97u);
  EXPECT_EQ(phash2(T("1180591620717411303424")), 131422029u);  // 1 bsl 70
  EXPECT_EQ(phash2(T("-1.5")), 13753666u);
  EXPECT_EQ(phash2(T("\"hello\"")), 81920127u);
  EXPECT_EQ(phash2(T("#{x => 1}"), 1000), 498u);
  EXPECT_EQ(phash2(T("ok"), std::uint64_t{1} << 32), 1883u);
  EXPECT_THROW(phash2(T("ok"), 0), std::invalid_argument);
  EXPECT_THROW(phash2(T("ok"), (std::uint64_t{1} << 32) + 1), std::invalid_argument);
}

TEST(Phash2, MapOrderAndListShapeDoNotChangeEqualTerms) {
  // Equal terms built differently hash the same; different terms of one shape differ.
  EXPECT_EQ(phash2_full(Term::map({{T("b"), T("2")}, {T("a"), T("1")}})), phash2_full(T("#{a => 1, b => 2}")));
  EXPECT_EQ(phash2_full(Term::list({T("1")}, Term::list({T("2"), T("3")}))), phash2_full(T("[1, 2, 3]")));
  EXPECT_EQ(phash2_full(Term::string("abc")), phash2_full(T("[97, 98, 99]")));
  EXPECT_NE(phash2_full(T("{1, 2}")), phash2_full(T("{2, 1}")));
  EXPECT_NE(phash2_full(T("<<1:3>>")), phash2_full(T("<<1:4>>")));
}

}  // namespace
}  // namespace hypha
