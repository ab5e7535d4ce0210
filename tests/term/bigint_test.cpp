#include "hypha/term/bigint.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace hypha {
namespace {

TEST(BigInt, DecimalTextRoundTrips) {
  for (const char* s : {"0", "1", "-1", "4294967295", "4294967296", "-9223372036854775808",
                        "18446744073709551616", "123456789012345678901234567890123456789",
                        "-99999999999999999999999999999999999999999999999999999999999"}) {
    auto v = BigInt::parse(s);
    ASSERT_TRUE(v) << s;
    EXPECT_EQ(v->to_string(), s);
  }
  EXPECT_EQ(BigInt::parse("+42")->to_string(), "42");
  EXPECT_EQ(BigInt::parse("-0")->to_string(), "0");
  EXPECT_FALSE(BigInt::parse(""));
  EXPECT_FALSE(BigInt::parse("-"));
  EXPECT_FALSE(BigInt::parse("12a"));
}

TEST(BigInt, OtherBases) {
  EXPECT_EQ(BigInt::parse("ff", 16)->to_string(), "255");
  EXPECT_EQ(BigInt::parse("-1010", 2)->to_string(), "-10");
  EXPECT_EQ(BigInt::parse("zz", 36)->to_string(), "1295");
  EXPECT_EQ(BigInt::parse("123456789abcdef0123456789", 16)->to_string(16), "123456789ABCDEF0123456789");
  EXPECT_FALSE(BigInt::parse("2", 2));
}

TEST(BigInt, BytesRoundTripLittleEndian) {
  const std::uint8_t bytes[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
  BigInt v = BigInt::from_bytes(true, bytes);
  EXPECT_TRUE(v.negative());
  EXPECT_EQ(v.magnitude_bytes(), std::vector<std::uint8_t>(std::begin(bytes), std::end(bytes)));
  EXPECT_EQ(v.magnitude_byte_count(), 9u);
  const std::uint8_t zeros[] = {0, 0, 0};
  EXPECT_TRUE(BigInt::from_bytes(true, zeros).is_zero());
  EXPECT_FALSE(BigInt::from_bytes(true, zeros).negative());  // no negative zero
}

TEST(BigInt, Int64Boundaries) {
  const auto min = std::numeric_limits<std::int64_t>::min();
  const auto max = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(BigInt(min).to_int64(), min);
  EXPECT_EQ(BigInt(max).to_int64(), max);
  EXPECT_FALSE(BigInt::parse("9223372036854775808")->to_int64());
  EXPECT_FALSE(BigInt::parse("-9223372036854775809")->to_int64());
  EXPECT_EQ(BigInt::parse("18446744073709551615")->to_uint64(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_FALSE(BigInt::parse("18446744073709551616")->to_uint64());
  EXPECT_FALSE(BigInt(-1).to_uint64());
}

TEST(BigInt, OrderingIsNumeric) {
  EXPECT_LT(*BigInt::parse("-100000000000000000000"), BigInt(-5));
  EXPECT_LT(BigInt(5), *BigInt::parse("100000000000000000000"));
  EXPECT_LT(*BigInt::parse("100000000000000000000"), *BigInt::parse("100000000000000000001"));
  EXPECT_GT(*BigInt::parse("-100000000000000000000"), *BigInt::parse("-100000000000000000001"));
}

TEST(BigInt, ComparesExactlyWithDoubles) {
  const BigInt two63 = *BigInt::parse("9223372036854775808");
  EXPECT_EQ(two63.compare(9223372036854775808.0), std::partial_ordering::equivalent);
  EXPECT_EQ((*BigInt::parse("9223372036854775809")).compare(9223372036854775808.0), std::partial_ordering::greater);
  EXPECT_EQ(BigInt(3).compare(3.5), std::partial_ordering::less);
  EXPECT_EQ(BigInt(-3).compare(-3.5), std::partial_ordering::greater);
  EXPECT_EQ(BigInt(0).compare(-0.0), std::partial_ordering::equivalent);
}

TEST(BigInt, ToDoubleRoundsToNearest) {
  EXPECT_EQ(BigInt::parse("9007199254740993")->to_double(), 9007199254740992.0);  // ties to even
  EXPECT_EQ(BigInt::parse("9007199254740995")->to_double(), 9007199254740996.0);
  EXPECT_EQ(BigInt::parse("-18446744073709551616")->to_double(), -18446744073709551616.0);
  EXPECT_EQ(BigInt::parse("1" + std::string(400, '0'))->to_double(), std::numeric_limits<double>::infinity());
}

TEST(BigInt, FromDoubleIsExact) {
  EXPECT_EQ(BigInt::from_double(1e30)->to_string(), "1000000000000000019884624838656");
  EXPECT_EQ(BigInt::from_double(-4.0)->to_string(), "-4");
  EXPECT_FALSE(BigInt::from_double(0.5));
  EXPECT_FALSE(BigInt::from_double(std::nan("")));
}

}  // namespace
}  // namespace hypha
