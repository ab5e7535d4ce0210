#include "hypha/term/match.hpp"

#include <gtest/gtest.h>

#include "hypha/term/text.hpp"

namespace hypha {
namespace {

using namespace pattern;
using namespace literals;

Term T(std::string_view s) { return parse_term(s).value(); }

TEST(Match, TuplesOfAtomsAndBindings) {
  const Term m = T("{'$gen_call', {<0.5.0>, #Ref<0.1.2.3>}, {get, <<\"k\">>, 7}}");
  Pid from;
  Term tag;
  std::string key;
  std::int64_t n = 0;
  ASSERT_TRUE(match(m, tuple("$gen_call", tuple(bind(from), bind(tag)), tuple("get"_a, bind(key), bind(n)))));
  EXPECT_EQ(Term(from), T("<0.5.0>"));
  EXPECT_TRUE(tag.is_ref());
  EXPECT_EQ(key, "k");
  EXPECT_EQ(n, 7);
  EXPECT_EQ(mismatch(m, tuple("$gen_call", any, any)), "");
}

TEST(Match, ShapesThatDoNotMatch) {
  Pid from;
  const auto gen_call = tuple("$gen_call", tuple(bind(from), any), any);
  EXPECT_FALSE(match(T("{'$gen_call', foo, bar}"), gen_call));
  EXPECT_FALSE(match(T("{'$gen_call', {1, x}, bar}"), gen_call));      // not a pid
  EXPECT_FALSE(match(T("{'$gen_cast', {<0.1.0>, x}, bar}"), gen_call));  // another tag
  EXPECT_FALSE(match(T("{'$gen_call', {<0.1.0>, x}}"), gen_call));       // size
  EXPECT_FALSE(match(T("[a, b, c]"), gen_call));
  EXPECT_TRUE(match(T("{'$gen_call', {<0.1.0>, x}, bar}"), gen_call));
}

TEST(Match, MismatchSaysWhereAndWhat) {
  Pid from;
  const auto gen_call = tuple("$gen_call", tuple(bind(from), any), any);
  EXPECT_EQ(mismatch(T("{'$gen_call', foo, bar}"), gen_call),
            "expected {'$gen_call', {pid, _}, _}, found {'$gen_call',foo,bar}: element 2: expected {pid, _}, found foo");
  EXPECT_EQ(mismatch(T("{'$gen_call', {1, x}, bar}"), gen_call),
            "expected {'$gen_call', {pid, _}, _}, found {'$gen_call',{1,x},bar}: element 2: expected {pid, _}, found {1,x}: "
            "element 1: expected pid, found 1");
  EXPECT_EQ(mismatch(T("ok"), tuple("ok", any)), "expected {ok, _}, found ok");
  std::int64_t n = 0;
  EXPECT_EQ(mismatch(T("{n, <<\"x\">>}"), tuple("n", bind(n))),
            "expected {n, integer}, found {n,<<\"x\">>}: element 2: expected integer in -9223372036854775808..9223372036854775807, "
            "found <<\"x\">>");  // the converter says what it takes
}

TEST(Match, ListsConsAlternativesAndGuards) {
  Term a, b;
  EXPECT_TRUE(match(T("[1, 2]"), list(bind(a), bind(b))));
  EXPECT_EQ(a, Term(1));
  EXPECT_EQ(b, Term(2));
  EXPECT_FALSE(match(T("[1, 2 | 3]"), list(any, any)));  // improper
  EXPECT_FALSE(match(T("[1]"), list(any, any)));
  EXPECT_TRUE(match(T("[]"), list()));
  EXPECT_FALSE(match(T("[x]"), list()));

  // [alias | Ref], the tag OTP 24+ callers send
  Ref r;
  EXPECT_TRUE(match(T("[alias | #Ref<0.1.2.3>]"), cons("alias", bind(r))));
  EXPECT_FALSE(match(T("[alias, #Ref<0.1.2.3>]"), cons("alias", bind(r))));  // the tail is a list
  Term rest;
  EXPECT_TRUE(match(T("[h, i, j]"), cons("h", bind(rest))));
  EXPECT_EQ(rest, T("[i, j]"));

  EXPECT_TRUE(match(T("leave"), one_of("join", "leave")));
  EXPECT_FALSE(match(T("stay"), one_of("join", "leave")));
  EXPECT_EQ(mismatch(T("stay"), one_of("join", "leave")), "expected join | leave, found stay");

  std::int64_t n = 0;
  const auto positive = with(bind(n), [](const Term& t) { return t.is_small_integer() && t.small_integer() > 0; });
  EXPECT_TRUE(match(T("3"), positive));
  EXPECT_FALSE(match(T("-3"), positive));
  EXPECT_EQ(mismatch(T("-3"), positive), "the guard fails for -3");

  EXPECT_TRUE(match(T("{a, 1.0}"), tuple("a", eq(T("1.0")))));
  EXPECT_FALSE(match(T("{a, 1}"), tuple("a", eq(T("1.0")))));  // =:=, not ==
}

TEST(Match, PointersIntoTheTermAndConversions) {
  const Term m = T("{data, [1, 2, 3], <<\"bytes\">>}");
  const Term* items = nullptr;
  std::vector<int> v;
  ASSERT_TRUE(match(m, tuple("data", bind(items), any)));
  EXPECT_EQ(items, &m[1]);  // no copy
  ASSERT_TRUE(match(m, tuple("data", bind(v), any)));
  EXPECT_EQ(v, (std::vector<int>{1, 2, 3}));
  Atom tag;
  ASSERT_TRUE(match(m, tuple(bind(tag), any, any)));
  EXPECT_EQ(tag, Atom("data"));
}

TEST(Match, HugeTermsArePrintedShortInMismatches) {
  std::vector<Term> many(1'000'000, Term(7));
  const Term big = Term::tuple({Term::atom("x"), Term::list(std::move(many))});
  const std::string why = mismatch(big, tuple("y", any));
  EXPECT_LT(why.size(), 300u);
  EXPECT_NE(why.find("[7,7,7,7,7,7,7,7,'...']"), std::string::npos) << why;
}

}  // namespace
}  // namespace hypha
