#include "hypha/term/convert.hpp"

#include <gtest/gtest.h>

#include "hypha/term/text.hpp"

namespace hypha {
namespace {

struct Point {
  int x = 0;
  int y = 0;
  std::string label;
  static constexpr auto hypha_fields =
      fields(field("x", &Point::x), field("y", &Point::y), field("label", &Point::label));
  friend bool operator==(const Point&, const Point&) = default;
};

Term parse(std::string_view s) { return parse_term(s).value(); }

TEST(Convert, IntegersAreRangeChecked) {
  EXPECT_EQ(from_term<int>(Term(42)).value(), 42);
  EXPECT_EQ(from_term<std::uint8_t>(Term(255)).value(), 255);
  auto r = from_term<std::uint8_t>(Term(256));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "expected integer in 0..255, found 256");
  EXPECT_FALSE(from_term<unsigned>(Term(-1)).ok());
  EXPECT_EQ(from_term<std::uint64_t>(parse("18446744073709551615")).value(), 18446744073709551615ull);
  EXPECT_FALSE(from_term<std::int64_t>(parse("18446744073709551615")).ok());
  EXPECT_EQ(to_term(std::uint64_t{18446744073709551615ull}).to_string(), "18446744073709551615");
  EXPECT_EQ(from_term<int>(Term::atom("x")).error().message(),
            "expected integer in -2147483648..2147483647, found x");
}

TEST(Convert, PidsAndReferences) {
  const Term pid = parse("<0.42.0>");
  EXPECT_EQ(to_term(from_term<Pid>(pid).value()), pid);
  EXPECT_EQ(from_term<Pid>(Term::atom("x")).error().message(), "expected pid, found x");
  const Term ref = parse("#Ref<0.1.2.3>");
  EXPECT_EQ(to_term(from_term<Ref>(ref).value()), ref);
  EXPECT_FALSE(from_term<Ref>(pid).ok());
}

TEST(Convert, ChardataAsUtf8) {
  std::string out;
  EXPECT_TRUE(append_chardata(out, parse(R"([<<"ab">>, [$c, 252], 8364 | <<"!">>])")));
  EXPECT_EQ(out, "abc\xC3\xBC\xE2\x82\xAC!");
  std::string bad;
  EXPECT_FALSE(append_chardata(bad, parse("[1 | foo]")));
  EXPECT_FALSE(append_chardata(bad, parse("[-1]")));
  EXPECT_FALSE(append_chardata(bad, parse("{a}")));
}

TEST(Convert, DoublesBoolsStrings) {
  EXPECT_EQ(from_term<double>(Term(2.5)).value(), 2.5);
  EXPECT_EQ(from_term<double>(Term(3)).value(), 3.0);
  EXPECT_EQ(from_term<bool>(Term::atom("true")).value(), true);
  EXPECT_EQ(from_term<bool>(Term::atom("yes")).error().message(),
            "expected boolean (true or false), found yes");
  EXPECT_EQ(to_term(std::string("hi")), Term::binary("hi"));
  EXPECT_EQ(to_term("hi"), Term::binary("hi"));
  EXPECT_EQ(from_term<std::string>(Term::binary("hi")).value(), "hi");
  EXPECT_EQ(from_term<std::string>(Term::string("h\xc3\xa9")).value(), "h\xc3\xa9");  // charlist
  EXPECT_FALSE(from_term<std::string>(Term(1)).ok());
}

TEST(Convert, ContainersRoundTrip) {
  const std::vector<int> v{1, 2, 3};
  EXPECT_EQ(to_term(v), parse("[1,2,3]"));
  EXPECT_EQ(from_term<std::vector<int>>(parse("[1,2,3]")).value(), v);
  const std::map<std::string, double> m{{"a", 1.5}};
  EXPECT_EQ(to_term(m), parse("#{<<\"a\">> => 1.5}"));
  EXPECT_EQ((from_term<std::map<std::string, double>>(to_term(m)).value()), m);
  const std::unordered_map<int, bool> um{{1, true}};
  EXPECT_EQ((from_term<std::unordered_map<int, bool>>(to_term(um)).value()), um);
  const auto tup = std::make_tuple(1, std::string("x"), true);
  EXPECT_EQ(to_term(tup), parse("{1,<<\"x\">>,true}"));
  EXPECT_EQ((from_term<std::tuple<int, std::string, bool>>(to_term(tup)).value()), tup);
  EXPECT_EQ((from_term<std::pair<int, int>>(parse("{1,2}")).value()), std::make_pair(1, 2));
  EXPECT_EQ(to_term(std::optional<int>()), Term::atom("undefined"));
  EXPECT_EQ(from_term<std::optional<int>>(Term::atom("nil")).value(), std::nullopt);
  EXPECT_EQ(from_term<std::optional<int>>(Term(4)).value(), 4);
}

TEST(Convert, ErrorsSayWhereInANestedValue) {
  auto r = from_term<std::vector<std::tuple<int, int>>>(parse("[{1,2},{3,x}]"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            "expected integer in -2147483648..2147483647, found x (at element 2 of tuple of element 2 of list)");
  EXPECT_EQ((from_term<std::tuple<int>>(parse("{1,2}")).error().message()),
            "expected tuple of 1 elements, found {1,2}");
  EXPECT_FALSE(from_term<std::vector<int>>(parse("[1|2]")).ok());
}

TEST(Convert, StructsThroughTheirFieldList) {
  const Point p{1, 2, "origin"};
  const Term t = to_term(p);
  EXPECT_EQ(t, parse("#{x => 1, y => 2, label => <<\"origin\">>}"));
  EXPECT_EQ(from_term<Point>(t).value(), p);
  auto missing = from_term<Point>(parse("#{x => 1, label => <<>>}"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().expected, "map with key y");
  auto wrong = from_term<Point>(parse("#{x => 1, y => 2.5, label => <<>>}"));
  EXPECT_EQ(wrong.error().where, "field y");
}

}  // namespace
}  // namespace hypha
