#include "hypha/term/etf.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "hypha/term/text.hpp"

namespace hypha {
namespace {

using Bytes = std::vector<std::uint8_t>;

Term roundtrip(const Term& t) {
  auto r = etf::decode(etf::encode(t));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : Term();
}

Term decode_ok(const Bytes& b) {
  auto r = etf::decode(b);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : Term();
}

etf::DecodeError decode_err(const Bytes& b, const etf::DecodeOptions& o = {}) {
  auto r = etf::decode(b, o);
  EXPECT_FALSE(r.ok()) << "decoded " << (r.ok() ? r->to_string() : "");
  return r.ok() ? etf::DecodeError{} : r.error();
}

Term parse(std::string_view s) { return parse_term(s).value(); }

// Bytes written by OTP 25: term_to_binary(T, [{minor_version, 2}]).
TEST(Etf, EncodesLikeTermToBinary) {
  EXPECT_EQ(etf::encode(parse("{ok,[1,2,3]}")), (Bytes{131, 104, 2, 119, 2, 111, 107, 107, 0, 3, 1, 2, 3}));
  EXPECT_EQ(etf::encode(parse("#{a => 1, <<\"b\">> => 2.5}")),
            (Bytes{131, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 109, 0, 0, 0, 1, 98, 70, 64, 4, 0, 0, 0, 0, 0, 0}));
}

TEST(Etf, IntegersAtEveryEncodingBoundary) {
  struct Case {
    const char* text;
    std::uint8_t tag;
  };
  const Case cases[] = {
      {"0", 97}, {"255", 97}, {"256", 98}, {"-1", 98}, {"2147483647", 98}, {"-2147483648", 98},
      {"2147483648", 110}, {"-2147483649", 110}, {"9223372036854775807", 110},
      {"-9223372036854775808", 110}, {"9223372036854775808", 110}, {"18446744073709551616", 110},
      {"-18446744073709551616", 110}};
  for (const auto& c : cases) {
    Term t = parse(c.text);
    Bytes b = etf::encode(t);
    EXPECT_EQ(b[1], c.tag) << c.text;
    EXPECT_EQ(roundtrip(t), t) << c.text;
    EXPECT_EQ(roundtrip(t).to_string(), c.text);
  }
  // 255 magnitude bytes is the largest SMALL_BIG_EXT; 256 needs LARGE_BIG_EXT.
  Term small_big(*BigInt::parse("1" + std::string(510, '0'), 16));  // 2^2040: 256 bytes
  Term fits(*BigInt::parse(std::string(510, 'f'), 16));             // 255 bytes
  EXPECT_EQ(etf::encode(fits)[1], 110);
  EXPECT_EQ(etf::encode(small_big)[1], 111);
  EXPECT_EQ(roundtrip(fits), fits);
  EXPECT_EQ(roundtrip(small_big), small_big);
}

TEST(Etf, FloatsNewAndLegacy) {
  EXPECT_EQ(roundtrip(Term(0.1)), Term(0.1));
  EXPECT_EQ(roundtrip(Term(-0.0)), Term(-0.0));
  EXPECT_EQ(roundtrip(Term(std::numeric_limits<double>::denorm_min())),
            Term(std::numeric_limits<double>::denorm_min()));
  // FLOAT_EXT as term_to_binary(1.5, [{minor_version, 0}]) writes it.
  Bytes old = {131, 99};
  const std::string text = "1.50000000000000000000e+00";
  old.insert(old.end(), text.begin(), text.end());
  old.resize(2 + 31, 0);
  EXPECT_EQ(decode_ok(old), Term(1.5));
  // NaN has no Erlang form.
  EXPECT_NE(decode_err({131, 70, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}).reason.find("NaN"), std::string::npos);
}

TEST(Etf, AtomsUtf8AndLegacy) {
  EXPECT_EQ(roundtrip(Term::atom(std::string(255, 'x'))), Term::atom(std::string(255, 'x')));
  std::string long_utf8;
  for (int i = 0; i < 200; ++i) long_utf8 += "\xce\xb1";  // 400 bytes: ATOM_UTF8_EXT
  EXPECT_EQ(etf::encode(Term::atom(long_utf8))[1], 118);
  EXPECT_EQ(roundtrip(Term::atom(long_utf8)), Term::atom(long_utf8));
  // ATOM_EXT and SMALL_ATOM_EXT are Latin-1.
  EXPECT_EQ(decode_ok({131, 100, 0, 4, 'c', 'a', 'f', 0xe9}), Term::atom("caf\xc3\xa9"));
  EXPECT_EQ(decode_ok({131, 115, 2, 'o', 'k'}), Term::atom("ok"));
  Bytes too_long = {131, 100, 1, 0};
  too_long.resize(4 + 256, 'a');
  EXPECT_NE(decode_err(too_long).reason.find("255"), std::string::npos);
  EXPECT_FALSE(etf::decode(Bytes{131, 119, 1, 0xff}).ok());  // not UTF-8
}

TEST(Etf, BinariesAndBitstrings) {
  EXPECT_EQ(roundtrip(Term::binary("")), Term::binary(""));
  const std::string big(1 << 20, 'z');
  EXPECT_EQ(roundtrip(Term::binary(big)).binary_view(), big);
  const std::uint8_t bits[] = {0xAB, 0xC0};
  Term bs = Term::bitstring(bits, 3);
  Bytes b = etf::encode(bs);
  EXPECT_EQ(b[1], 77);
  EXPECT_EQ(roundtrip(bs), bs);
  EXPECT_NE(decode_err({131, 77, 0, 0, 0, 1, 9, 0}).reason.find("1..8"), std::string::npos);
}

TEST(Etf, ListsStringsAndImproperTails) {
  Term s = Term::string("hello");
  EXPECT_EQ(etf::encode(s)[1], 107);
  EXPECT_EQ(roundtrip(s), s);
  std::vector<Term> many(70000, Term(7));
  Term long_list = Term::list(many);
  EXPECT_EQ(etf::encode(long_list)[1], 108);  // too long for STRING_EXT
  EXPECT_EQ(roundtrip(long_list), long_list);
  Term improper = parse("[1,2|x]");
  EXPECT_EQ(roundtrip(improper), improper);
  // A list whose tail is written as another LIST_EXT decodes to the flat list.
  EXPECT_EQ(decode_ok({131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106}), parse("[1,2]"));
  EXPECT_EQ(decode_ok({131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2}), parse("[1,2]"));
}

TEST(Etf, TuplesSmallAndLarge) {
  std::vector<Term> elems;
  for (int i = 0; i < 256; ++i) elems.emplace_back(i);
  Term large = Term::tuple(std::span<const Term>(elems));
  EXPECT_EQ(etf::encode(large)[1], 105);
  EXPECT_EQ(roundtrip(large), large);
  elems.pop_back();
  Term small = Term::tuple(std::span<const Term>(elems));
  EXPECT_EQ(etf::encode(small)[1], 104);
  EXPECT_EQ(roundtrip(small), small);
  EXPECT_EQ(decode_ok({131, 105, 0, 0, 0, 0}), Term::tuple({}));
}

TEST(Etf, FormsOtpNoLongerProducesAreRefusedByName) {
  EXPECT_NE(decode_err({131, 117, 0, 0, 0, 0}).reason.find("FUN_EXT"), std::string::npos);
  EXPECT_NE(decode_err({131, 121, 0}).reason.find("LOCAL_EXT"), std::string::npos);
  EXPECT_NE(decode_err({131, 104, 1, 80, 0}).reason.find("compressed term inside"), std::string::npos);
}

TEST(Etf, PidsPortsRefsEveryTag) {
  const Bytes node = {100, 0, 3, 'a', '@', 'b'};
  auto with = [&](std::initializer_list<std::uint8_t> head, std::initializer_list<std::uint8_t> tail) {
    Bytes b = {131};
    b.insert(b.end(), head);
    b.insert(b.end(), node.begin(), node.end());
    b.insert(b.end(), tail);
    return b;
  };
  Term pid_old = decode_ok(with({103}, {0, 0, 0, 85, 0, 0, 0, 2, 3}));
  EXPECT_EQ(pid_old.pid(), (Pid{Atom("a@b"), 85, 2, 3}));
  Term pid_new = decode_ok(with({88}, {0, 0, 0, 85, 0, 0, 0, 2, 0, 0, 1, 0}));
  EXPECT_EQ(pid_new.pid().creation, 256u);
  EXPECT_EQ(etf::encode(pid_new)[1], 88);
  EXPECT_EQ(roundtrip(pid_new), pid_new);

  EXPECT_EQ(decode_ok(with({102}, {0, 0, 0, 9, 1})).port(), (Port{Atom("a@b"), 9, 1}));
  EXPECT_EQ(decode_ok(with({89}, {0, 0, 0, 9, 0, 0, 0, 1})).port(), (Port{Atom("a@b"), 9, 1}));
  Term v4 = decode_ok(with({120}, {0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 1}));
  EXPECT_EQ(v4.port().id, (1ull << 32) + 9);
  EXPECT_EQ(etf::encode(v4)[1], 120);
  EXPECT_EQ(roundtrip(v4), v4);

  Term r1 = decode_ok(with({101}, {0, 0, 0, 7, 2}));
  EXPECT_EQ(r1.ref().len, 1);
  Term r2 = decode_ok(with({114, 0, 3}, {2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}));
  EXPECT_EQ(r2.ref().words()[2], 3u);
  Term r3 = decode_ok(with({90, 0, 5}, {0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5}));
  EXPECT_EQ(r3.ref().len, 5);
  EXPECT_EQ(etf::encode(r3)[1], 90);
  EXPECT_EQ(roundtrip(r3), r3);
  EXPECT_FALSE(etf::decode(with({90, 0, 6}, {0, 0, 0, 2})).ok());
}

TEST(Etf, FunsExportAndLocal) {
  Term ex = parse("fun lists:map/2");
  EXPECT_EQ(etf::encode(ex)[1], 113);
  EXPECT_EQ(roundtrip(ex), ex);
  // fun(X) -> X + 1 end, as OTP 25 encodes it.
  const Bytes local = {131, 112, 0, 0, 0, 69, 1, 246, 3, 178, 108, 181, 152, 179, 119, 166, 76, 87, 223, 153, 164,
                       4, 159, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 1, 103, 97, 0, 98, 7, 176, 29, 147, 88, 100, 0, 13, 110,
                       111, 110, 111, 100, 101, 64, 110, 111, 104, 111, 115, 116, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0};
  Term f = decode_ok(local);
  ASSERT_TRUE(f.is_local_fun());
  EXPECT_EQ(f.local_fun().module, Atom("g"));
  EXPECT_EQ(f.local_fun().arity, 1u);
  EXPECT_EQ(etf::encode(f), local);  // kept byte for byte
  Bytes bad_size = local;
  bad_size[5] = 70;
  EXPECT_FALSE(etf::decode(bad_size).ok());
}

TEST(Etf, CompressedRoundTripAndCorruption) {
  Term t = Term::list(std::vector<Term>(5000, Term::atom("same")));
  Bytes z = etf::encode(t, {.compression = 6});
  EXPECT_EQ(z[1], 80);
  EXPECT_LT(z.size(), etf::encode(t).size());
  EXPECT_EQ(decode_ok(z), t);
  Bytes corrupt = z;
  corrupt[z.size() / 2] ^= 0xFF;
  EXPECT_FALSE(etf::decode(corrupt).ok());
  Bytes lying = z;
  lying[5] += 1;  // stated size one more than the data
  EXPECT_FALSE(etf::decode(lying).ok());
  Bytes trailing = z;
  trailing.push_back(0);
  EXPECT_FALSE(etf::decode(trailing).ok());
  // Small terms are not worth compressing and stay plain.
  EXPECT_EQ(etf::encode(Term(1), {.compression = 9})[1], 97);
}

TEST(Etf, ErrorsNameOffsetAndReason) {
  EXPECT_EQ(decode_err({}).reason, "empty input");
  EXPECT_EQ(decode_err({130, 106}).offset, 0u);
  auto trailing = decode_err({131, 106, 106});
  EXPECT_EQ(trailing.offset, 2u);
  EXPECT_NE(trailing.reason.find("trailing"), std::string::npos);
  auto unknown = decode_err({131, 104, 1, 200});
  EXPECT_EQ(unknown.offset, 3u);
  EXPECT_EQ(unknown.message(), "at byte 3: unknown tag 200");
  EXPECT_NE(decode_err({131, 109, 0, 0, 0, 5, 1}).reason.find("truncated"), std::string::npos);
}

TEST(Etf, EveryTruncationIsAnErrorNeverACrash) {
  Term t = parse("{ok,[1,2.5,<<\"bin\">>,#{k => [x|y]},-123456789012345678901234567890,\"str\",{}]}");
  Bytes full = etf::encode(t);
  for (std::size_t n = 0; n < full.size(); ++n) {
    Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(etf::decode(prefix).ok()) << n;
  }
  EXPECT_EQ(decode_ok(full), t);
}

TEST(Etf, CountsLargerThanTheInputAreRefusedBeforeAllocating) {
  EXPECT_NE(decode_err({131, 108, 0xff, 0xff, 0xff, 0xff, 106}).reason.find("exceeds"), std::string::npos);
  EXPECT_NE(decode_err({131, 105, 0xff, 0xff, 0xff, 0xff}).reason.find("exceeds"), std::string::npos);
  EXPECT_NE(decode_err({131, 116, 0xff, 0xff, 0xff, 0xff}).reason.find("exceeds"), std::string::npos);
  EXPECT_NE(decode_err({131, 80, 0xff, 0xff, 0xff, 0xff, 0}).reason.find("exceeds"), std::string::npos);
}

TEST(Etf, NestingAtTheLimitDecodesAndPastItFails) {
  etf::DecodeOptions o;
  o.max_depth = 100;
  auto nested = [](std::size_t depth) {
    Bytes b = {131};
    for (std::size_t i = 0; i < depth; ++i) b.insert(b.end(), {104, 1});
    b.push_back(106);
    return b;
  };
  EXPECT_TRUE(etf::decode(nested(100), o).ok());
  EXPECT_NE(decode_err(nested(101), o).reason.find("nesting"), std::string::npos);
  // The default limit protects the stack from a deeply nested hostile term.
  EXPECT_FALSE(etf::decode(nested(1000000)).ok());
}

TEST(Etf, DuplicateMapKeysAreRefused) {
  EXPECT_NE(decode_err({131, 116, 0, 0, 0, 2, 97, 1, 106, 97, 1, 106}).reason.find("duplicate"), std::string::npos);
}

TEST(Etf, AtomCreationIsLimited) {
  etf::DecodeOptions safe;
  safe.allow_new_atoms = false;
  EXPECT_NE(decode_err({131, 119, 9, 'n', 'o', '_', 's', 'u', 'c', 'h', '_', 'x'}, safe).reason.find("new atoms"),
            std::string::npos);
  EXPECT_TRUE(etf::decode(etf::encode(Term::atom("ok")), safe).ok());
  etf::DecodeOptions few;
  few.max_new_atoms = 2;
  Bytes three = {131, 104, 3};
  for (const char* name : {"fresh_atom_a_17", "fresh_atom_b_17", "fresh_atom_c_17"}) {
    three.push_back(119);
    three.push_back(static_cast<std::uint8_t>(std::strlen(name)));
    three.insert(three.end(), name, name + std::strlen(name));
  }
  EXPECT_NE(decode_err(three, few).reason.find("new atoms"), std::string::npos);
}

TEST(Etf, BignumSizeIsLimited) {
  etf::DecodeOptions o;
  o.max_bignum_bytes = 8;
  EXPECT_TRUE(etf::decode(Bytes{131, 110, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8}, o).ok());
  EXPECT_FALSE(etf::decode(Bytes{131, 110, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, o).ok());
}

TEST(Etf, AtomCacheReferencesResolveFromTheCache) {
  const Atom cache[] = {Atom("cached")};
  etf::DecodeOptions o;
  o.atom_cache = cache;
  EXPECT_EQ(etf::decode(Bytes{131, 82, 0}, o).value(), Term::atom("cached"));
  EXPECT_FALSE(etf::decode(Bytes{131, 82, 1}, o).ok());
  EXPECT_FALSE(etf::decode(Bytes{131, 82, 0}).ok());
}

TEST(Etf, EncodeIntoWritesExactlyEncodedSizeBytes) {
  Ref r;
  r.node = Atom("n@h");
  r.len = 3;
  for (const Term& t : {parse("{ok,[1,2|x],#{a => <<1:3>>},\"str\",-1.5,123456789012345678901234567890}"),
                        Term(Pid{Atom("n@h"), 1, 2, 3}), Term(Port{Atom("n@h"), 1ull << 40, 2}), Term(r),
                        parse("fun m:f/2"), Term(-9223372036854775807LL - 1), Term::binary(std::string(300, 'b'))}) {
    const std::size_t n = etf::encoded_size(t);
    std::vector<std::uint8_t> into(n + 1, 0xEE);
    EXPECT_EQ(etf::encode_into(into.data(), t), into.data() + n) << t.to_string();
    EXPECT_EQ(into[n], 0xEE);  // nothing written past the end
    std::vector<std::uint8_t> appended;
    etf::encode_append(appended, t);
    into.pop_back();
    EXPECT_EQ(into, appended);
  }
}

TEST(Etf, DecodePrefixReportsConsumedBytes) {
  Bytes two;
  etf::encode_append(two, Term::atom("a"));
  etf::encode_append(two, Term(1));
  auto first = etf::decode_prefix(two);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->term, Term::atom("a"));
  EXPECT_EQ(first->consumed, 3u);
  EXPECT_EQ(etf::encoded_size(Term::atom("a")), 3u);
}

}  // namespace
}  // namespace hypha

namespace hypha {
namespace {

TEST(EtfDecodeBudget, ATermThatWouldTakeFarMoreMemoryThanItsBytesIsRefused) {
  // [[] x 100000]: 100 KiB on the wire, ~1.6 MB as terms.
  const auto bytes = etf::encode(Term::list(std::vector<Term>(100000)));
  etf::DecodeOptions tight;
  tight.max_memory = 1u << 20;
  auto refused = etf::decode(bytes, tight);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().reason.find("memory budget"), std::string::npos) << refused.error().reason;
  etf::DecodeOptions per_byte;
  per_byte.memory_per_byte = 4;  // 16 bytes per element do not fit in 4 per byte
  EXPECT_FALSE(etf::decode(bytes, per_byte).ok());
  EXPECT_TRUE(etf::decode(bytes).ok());  // the defaults: 16 per byte, 256 MiB
  // Binaries cost their bytes: a 1 MiB binary fits in a 2 MiB budget.
  const auto bin = etf::encode(Term::binary(std::string(1u << 20, 'x')));
  etf::DecodeOptions two;
  two.max_memory = 2u << 20;
  EXPECT_TRUE(etf::decode(bin, two).ok());
}

}  // namespace
}  // namespace hypha
