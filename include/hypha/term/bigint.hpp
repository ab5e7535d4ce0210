// BigInt: an arbitrary-precision signed integer, as Erlang integers are. Only what the term layer
// needs: construction from bytes, text and doubles, conversion back, and exact comparison. It is
// a value type; Term stores integers that fit in 64 bits without it.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hypha {

class BigInt {
 public:
  BigInt() = default;
  BigInt(std::int64_t v);  // NOLINT: implicit on purpose, integers are integers
  static BigInt from_uint64(std::uint64_t v);

  // From a sign and a little-endian magnitude in base 256 (the ETF SMALL/LARGE_BIG layout).
  static BigInt from_bytes(bool negative, std::span<const std::uint8_t> little_endian);
  // From digits in base 2..36 with an optional leading '-' or '+'; nullopt when malformed.
  static std::optional<BigInt> parse(std::string_view text, int base = 10);
  // The exact value of an integral, finite double; nullopt otherwise.
  static std::optional<BigInt> from_double(double d);

  bool negative() const noexcept { return neg_; }
  bool is_zero() const noexcept { return mag_.empty(); }
  std::vector<std::uint8_t> magnitude_bytes() const;  // little-endian, no trailing zeros
  std::size_t magnitude_byte_count() const noexcept;

  std::optional<std::int64_t> to_int64() const noexcept;
  std::optional<std::uint64_t> to_uint64() const noexcept;
  // Nearest double; +-infinity when out of range.
  double to_double() const noexcept;
  std::string to_string(int base = 10) const;

  friend bool operator==(const BigInt&, const BigInt&) = default;
  friend std::strong_ordering operator<=>(const BigInt& a, const BigInt& b) noexcept;
  // Exact comparison with a finite double.
  std::partial_ordering compare(double d) const noexcept;

  std::size_t hash() const noexcept;

 private:
  void trim() noexcept;
  std::uint32_t divmod_small(std::uint32_t divisor);  // divides the magnitude, returns remainder
  void mul_add_small(std::uint32_t mul, std::uint32_t add);

  bool neg_ = false;
  std::vector<std::uint32_t> mag_;  // little-endian 32-bit limbs; empty means zero
};

}  // namespace hypha
