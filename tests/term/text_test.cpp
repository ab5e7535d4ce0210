#include "hypha/term/text.hpp"

#include <gtest/gtest.h>

#include "hypha/term/etf.hpp"

namespace hypha {
namespace {

Term parse(std::string_view s) {
  auto r = parse_term(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : Term::atom("parse_failed");
}

ParseError parse_error(std::string_view s) {
  auto r = parse_term(s);
  EXPECT_FALSE(r.ok()) << s;
  return r.ok() ? ParseError{} : r.error();
}

// Each printed form was checked against io_lib:format("~tp") in OTP 25.
TEST(Print, MatchesErlangOnOneLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"{ok,[1,2,3]}", "{ok,[1,2,3]}"},
      {"<<\"bin\">>", "<<\"bin\">>"},
      {"#{b => [x], a => 1}", "#{a => 1,b => [x]}"},
      {"'Quoted'", "'Quoted'"},
      {"'hello world'", "'hello world'"},
      {"''", "''"},
      {"hello@world", "hello@world"},
      {"'receive'", "'receive'"},
      {"maybe", "maybe"},
      {"[]", "[]"},
      {"{}", "{}"},
      {"<<>>", "<<>>"},
      {"#{}", "#{}"},
      {"\"abc\"", "\"abc\""},
      {"[1000]", "[1000]"},
      {"\"a\\nb\"", "\"a\\nb\""},
      {"[10,11]", "\"\\n\\v\""},
      {"[27,0]", "[27,0]"},
      {"[$a|b]", "[97|b]"},
      {"<<1,2,3>>", "<<1,2,3>>"},
      {"<<\"\xc3\xa9\"/utf8>>", "<<\"\xc3\xa9\"/utf8>>"},
      {"<<200,201>>", "<<\"\xc3\x88\xc3\x89\">>"},
      {"<<255>>", "<<\"\xc3\xbf\">>"},
      {"<<97,0>>", "<<97,0>>"},
      {"<<1:3>>", "<<1:3>>"},
      {"<<\"ab\",3:4>>", "<<97,98,3:4>>"},
      {"\"\\\"\\\\'\"", "\"\\\"\\\\'\""},
      {"<<\"\\\"\">>", "<<\"\\\"\">>"},
      {"[$a,200]", "\"a\xc3\x88\""},
      {"#{1.0 => a, 1 => b, \"s\" => c, {x} => d}", "#{1 => b,1.0 => a,{x} => d,\"s\" => c}"},
      {"-0.0", "-0.0"},
      {"[-1]", "[-1]"},
      {"{[]}", "{[]}"},
      {"fun lists:map/2", "fun lists:map/2"},
      {"123456789012345678901234567890", "123456789012345678901234567890"},
      {"'\\x{3b1}\\x{3b2}'", "'\xce\xb1\xce\xb2'"},
      {"\xc3\x9f\xc3\xa9t\xc3\xa9", "\xc3\x9f\xc3\xa9t\xc3\xa9"},  // ßété: a Latin-1 letter may start an atom
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(parse(in).to_string(), out) << in;
}

// float_to_list(F, [short]) in OTP 25.
TEST(Print, FloatsAreShortestAndReadBack) {
  const std::pair<double, const char*> cases[] = {
      {1.0, "1.0"}, {0.1, "0.1"}, {1.0e10, "1.0e10"}, {1.0e15, "1.0e15"}, {1.0e16, "1.0e16"},
      {1.0e-5, "1.0e-5"}, {0.0001, "0.0001"}, {0.001, "0.001"}, {123456.789, "123456.789"},
      {5.0e-324, "5.0e-324"}, {1.7976931348623157e308, "1.7976931348623157e308"}, {-0.0, "-0.0"},
      {2.5e-7, "2.5e-7"}, {1.5e300, "1.5e300"}, {100.0, "100.0"}, {1.0e23, "1.0e23"},
      {12345678901234567.0, "1.2345678901234568e16"}, {0.0, "0.0"}, {-2.5, "-2.5"}};
  for (const auto& [d, text] : cases) {
    EXPECT_EQ(Term(d).to_string(), text);
    EXPECT_EQ(parse(text), Term(d)) << text;
  }
}

TEST(Print, PidsRefsPortsAndFunsNameTheirNode) {
  EXPECT_EQ(Term(Pid{Atom("a@host"), 85, 0, 1}).to_string(), "<a@host.85.0>");
  EXPECT_EQ(Term(Pid{Atom("a@127.0.0.1"), 85, 3, 1}).to_string(), "<'a@127.0.0.1'.85.3>");
  Ref r;
  r.node = Atom("a@h");
  r.len = 3;
  r.ids = {1, 2, 3, 0, 0};
  EXPECT_EQ(Term(r).to_string(), "#Ref<a@h.3.2.1>");
  EXPECT_EQ(Term(Port{Atom("a@h"), 7, 0}).to_string(), "#Port<a@h.7>");
}

TEST(Parse, NumbersInEveryErlangForm) {
  EXPECT_EQ(parse("16#ff"), Term(255));
  EXPECT_EQ(parse("-16#FF"), Term(-255));
  EXPECT_EQ(parse("2#1010"), Term(10));
  EXPECT_EQ(parse("36#zz"), Term(1295));
  EXPECT_EQ(parse("1_000_000"), Term(1000000));
  EXPECT_EQ(parse("$a"), Term(97));
  EXPECT_EQ(parse("$\\n"), Term(10));
  EXPECT_EQ(parse("$ "), Term(32));
  EXPECT_EQ(parse("$\xcf\x80"), Term(960));
  EXPECT_EQ(parse("1.5e-3"), Term(0.0015));
  EXPECT_EQ(parse("2.0E3"), Term(2000.0));
  EXPECT_EQ(parse("- 5"), Term(-5));
  EXPECT_EQ(parse("16#1000000000000000000").to_string(), "4722366482869645213696");
}

TEST(Parse, EveryStringEscape) {
  EXPECT_EQ(parse("\"\\b\\d\\e\\f\\n\\r\\s\\t\\v\\\\\\\"\\'\""),
            Term::list({Term(8), Term(127), Term(27), Term(12), Term(10), Term(13), Term(32), Term(9),
                        Term(11), Term(92), Term(34), Term(39)}));
  EXPECT_EQ(parse("\"\\101\\7\\0\""), Term::list({Term(65), Term(7), Term(0)}));
  EXPECT_EQ(parse("\"\\x41\\x{3c0}\""), Term::list({Term(65), Term(960)}));
  EXPECT_EQ(parse("\"\\^a\\^Z\""), Term::list({Term(1), Term(26)}));
  EXPECT_EQ(parse("\"ab\" \"cd\""), Term::string("abcd"));
  EXPECT_EQ(parse("\"\""), Term());
}

TEST(Parse, BinariesWithSegments) {
  EXPECT_EQ(parse("<<\"abc\">>"), Term::binary("abc"));
  EXPECT_EQ(parse("<<\"\xcf\x80\"/utf8>>"), Term::binary("\xcf\x80"));
  EXPECT_EQ(parse("<<960/utf8>>"), Term::binary("\xcf\x80"));
  EXPECT_EQ(parse("<<1,2,3>>"), Term::binary("\x01\x02\x03"));
  EXPECT_EQ(parse("<<256:16>>"), Term::binary(std::string("\x01\x00", 2)));
  EXPECT_EQ(parse("<<-1:16>>"), Term::binary("\xff\xff"));
  EXPECT_EQ(parse("<<5:3>>").bit_size(), 3u);
  EXPECT_EQ(parse("<<5:3>>").to_string(), "<<5:3>>");
  EXPECT_EQ(parse("<<1:1,0:7>>"), Term::binary("\x80"));
}

TEST(Parse, ContainersPidsRefsPortsFuns) {
  EXPECT_EQ(parse("[1, 2 | tail]"), Term::list({Term(1), Term(2)}, Term::atom("tail")));
  EXPECT_EQ(parse("#{a => 1, a => 2}"), Term::map({{Term::atom("a"), Term(2)}}));
  EXPECT_EQ(parse("<'a@b'.85.2>").pid(), (Pid{Atom("a@b"), 85, 2, 0}));
  EXPECT_EQ(parse("<0.85.0>").pid().node, Atom("nonode@nohost"));
  EXPECT_EQ(parse("#Ref<a@b.3.2.1>").ref().ids[0], 1u);
  EXPECT_EQ(parse("#Port<a@b.7>").port().id, 7u);
  EXPECT_EQ(parse("fun 'my mod':f/3").export_fun().module, Atom("my mod"));
  EXPECT_EQ(parse("  {ok, 1} .  "), Term::tuple({Term::atom("ok"), Term(1)}));
  EXPECT_EQ(parse("{a, % a comment\n b}"), Term::tuple({Term::atom("a"), Term::atom("b")}));
}

TEST(Parse, PrintThenParseGivesTheSameTerm) {
  const char* terms[] = {
      "{ok,[1,2.5,<<\"bin\">>,#{k => [x|y]},-123456789012345678901234567890,\"str\",{}]}",
      "[[[]],{{}},#{#{} => []}]", "'\\x{1F600}'", "<<0,255,3:2>>", "\"tab\\there\"",
      "{'EXIT',<a@b.1.2>,normal}", "#{<<\"k\">> => 1.0e-300}"};
  for (const char* s : terms) {
    Term t = parse(s);
    EXPECT_EQ(parse(t.to_string()), t) << s << " printed as " << t.to_string();
  }
}

TEST(Parse, ErrorsSayWhereAndWhy) {
  EXPECT_EQ(parse_error("{ok,").offset, 4u);
  EXPECT_EQ(parse_error("{ok,").reason, "expected a term, found the end of the text");
  EXPECT_NE(parse_error("[1,2").reason.find("expected ','"), std::string::npos);
  EXPECT_NE(parse_error("'abc").reason.find("unterminated"), std::string::npos);
  EXPECT_NE(parse_error("1.0e999").reason.find("range"), std::string::npos);
  EXPECT_NE(parse_error("{a} b").reason.find("after the term"), std::string::npos);
  EXPECT_NE(parse_error("<1.2.3>").reason.find("node index"), std::string::npos);
  EXPECT_NE(parse_error("#Fun<m.1.2>").reason.find("local fun"), std::string::npos);
  EXPECT_NE(parse_error("Var").reason.find("unexpected character"), std::string::npos);
  EXPECT_NE(parse_error("'" + std::string(256, 'a') + "'").reason.find("255"), std::string::npos);
  EXPECT_EQ(parse_error("{ok,").message(), "at byte 4: expected a term, found the end of the text");
  ParseOptions shallow;
  shallow.max_depth = 10;
  // Ten nested lists around the innermost [] are at the limit; eleven are past it.
  EXPECT_TRUE(parse_term(std::string(11, '[') + std::string(11, ']'), shallow).ok());
  EXPECT_FALSE(parse_term(std::string(12, '[') + std::string(12, ']'), shallow).ok());
  EXPECT_FALSE(parse_term(std::string(100000, '{')).ok());  // never a stack overflow
}

}  // namespace
}  // namespace hypha
