#include "hypha/term/bigint.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace hypha {

BigInt::BigInt(std::int64_t v) {
  neg_ = v < 0;
  std::uint64_t m = neg_ ? (~static_cast<std::uint64_t>(v) + 1) : static_cast<std::uint64_t>(v);
  while (m) {
    mag_.push_back(static_cast<std::uint32_t>(m));
    m >>= 32;
  }
}

BigInt BigInt::from_uint64(std::uint64_t v) {
  BigInt r;
  while (v) {
    r.mag_.push_back(static_cast<std::uint32_t>(v));
    v >>= 32;
  }
  return r;
}

void BigInt::trim() noexcept {
  while (!mag_.empty() && mag_.back() == 0) mag_.pop_back();
  if (mag_.empty()) neg_ = false;
}

BigInt BigInt::from_bytes(bool negative, std::span<const std::uint8_t> le) {
  BigInt r;
  r.mag_.assign((le.size() + 3) / 4, 0);
  for (std::size_t i = 0; i < le.size(); ++i)
    r.mag_[i / 4] |= static_cast<std::uint32_t>(le[i]) << (8 * (i % 4));
  r.neg_ = negative;
  r.trim();
  return r;
}

std::vector<std::uint8_t> BigInt::magnitude_bytes() const {
  std::vector<std::uint8_t> out(magnitude_byte_count());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(mag_[i / 4] >> (8 * (i % 4)));
  return out;
}

std::size_t BigInt::magnitude_byte_count() const noexcept {
  if (mag_.empty()) return 0;
  std::size_t n = mag_.size() * 4;
  std::uint32_t top = mag_.back();
  while ((top & 0xFF000000u) == 0) {
    top <<= 8;
    --n;
  }
  return n;
}

void BigInt::mul_add_small(std::uint32_t mul, std::uint32_t add) {
  std::uint64_t carry = add;
  for (auto& limb : mag_) {
    const std::uint64_t v = static_cast<std::uint64_t>(limb) * mul + carry;
    limb = static_cast<std::uint32_t>(v);
    carry = v >> 32;
  }
  if (carry) mag_.push_back(static_cast<std::uint32_t>(carry));
}

std::uint32_t BigInt::divmod_small(std::uint32_t divisor) {
  std::uint64_t rem = 0;
  for (std::size_t i = mag_.size(); i-- > 0;) {
    const std::uint64_t cur = (rem << 32) | mag_[i];
    mag_[i] = static_cast<std::uint32_t>(cur / divisor);
    rem = cur % divisor;
  }
  while (!mag_.empty() && mag_.back() == 0) mag_.pop_back();
  return static_cast<std::uint32_t>(rem);
}

namespace {
int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}
}  // namespace

std::optional<BigInt> BigInt::parse(std::string_view text, int base) {
  if (base < 2 || base > 36) return std::nullopt;
  bool neg = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    neg = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  // Feed the digits in chunks that fit 32 bits, so long numbers cost one pass per chunk.
  std::uint32_t chunk_mul = 1;
  int chunk_len = 0;
  while (static_cast<std::uint64_t>(chunk_mul) * base <= 0xFFFFFFFFull) {
    chunk_mul *= base;
    ++chunk_len;
  }
  BigInt r;
  std::uint32_t acc = 0, mul = 1;
  int in_chunk = 0;
  for (char c : text) {
    const int d = digit_value(c);
    if (d >= base) return std::nullopt;
    acc = acc * base + d;
    mul *= base;
    if (++in_chunk == chunk_len) {
      r.mul_add_small(mul, acc);
      acc = 0;
      mul = 1;
      in_chunk = 0;
    }
  }
  if (in_chunk) r.mul_add_small(mul, acc);
  r.neg_ = neg;
  r.trim();
  return r;
}

std::string BigInt::to_string(int base) const {
  if (base < 2 || base > 36) base = 10;
  if (mag_.empty()) return "0";
  std::uint32_t chunk_div = 1;
  int chunk_len = 0;
  while (static_cast<std::uint64_t>(chunk_div) * base <= 0xFFFFFFFFull) {
    chunk_div *= base;
    ++chunk_len;
  }
  static constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  BigInt t = *this;
  std::string out;
  while (!t.mag_.empty()) {
    std::uint32_t rem = t.divmod_small(chunk_div);
    for (int k = 0; k < chunk_len && (rem || !t.mag_.empty()); ++k) {
      out.push_back(kDigits[rem % base]);
      rem /= base;
    }
  }
  if (neg_) out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

std::optional<std::int64_t> BigInt::to_int64() const noexcept {
  if (mag_.size() > 2) return std::nullopt;
  std::uint64_t m = 0;
  for (std::size_t i = mag_.size(); i-- > 0;) m = (m << 32) | mag_[i];
  if (neg_) {
    if (m > (1ull << 63)) return std::nullopt;
    return static_cast<std::int64_t>(~m + 1);
  }
  if (m >= (1ull << 63)) return std::nullopt;
  return static_cast<std::int64_t>(m);
}

std::optional<std::uint64_t> BigInt::to_uint64() const noexcept {
  if (neg_ || mag_.size() > 2) return std::nullopt;
  std::uint64_t m = 0;
  for (std::size_t i = mag_.size(); i-- > 0;) m = (m << 32) | mag_[i];
  return m;
}

double BigInt::to_double() const noexcept {
  if (mag_.empty()) return 0.0;
  // Take the top 64 significant bits, fold everything below into a sticky bit, and let the
  // uint64 -> double conversion round to nearest: that is correctly rounded.
  const std::size_t n = mag_.size();
  const int top_bits = 32 - __builtin_clz(mag_.back());
  const std::size_t total_bits = (n - 1) * 32 + top_bits;
  std::uint64_t hi = 0;
  bool sticky = false;
  const std::size_t shift = total_bits > 64 ? total_bits - 64 : 0;
  for (std::size_t bit_limb = 0; bit_limb < n; ++bit_limb) {
    const std::uint64_t limb = mag_[bit_limb];
    const std::size_t lo_bit = bit_limb * 32;
    if (lo_bit + 32 <= shift) {
      sticky = sticky || limb != 0;
    } else if (lo_bit >= shift) {
      hi |= limb << (lo_bit - shift);
    } else {
      const std::size_t drop = shift - lo_bit;
      sticky = sticky || (limb & ((1ull << drop) - 1)) != 0;
      hi |= limb >> drop;
    }
  }
  if (sticky) hi |= 1;
  const double d = std::ldexp(static_cast<double>(hi), static_cast<int>(shift));
  return neg_ ? -d : d;
}

std::optional<BigInt> BigInt::from_double(double d) {
  if (!std::isfinite(d) || std::trunc(d) != d) return std::nullopt;
  int exp;
  const double frac = std::frexp(std::fabs(d), &exp);  // |d| = frac * 2^exp, frac in [0.5, 1)
  if (frac == 0.0) return BigInt();
  auto mant = static_cast<std::uint64_t>(std::ldexp(frac, 53));  // exact
  int shift = exp - 53;
  BigInt r;
  if (shift < 0) {
    mant >>= -shift;  // exact: d is integral
    shift = 0;
  }
  r = from_uint64(mant);
  // Multiply by 2^shift: whole limbs, then the remaining bits.
  const std::size_t limbs = static_cast<std::size_t>(shift) / 32;
  const int bits = shift % 32;
  if (bits) {
    std::uint32_t carry = 0;
    for (auto& limb : r.mag_) {
      const std::uint64_t v = (static_cast<std::uint64_t>(limb) << bits) | carry;
      limb = static_cast<std::uint32_t>(v);
      carry = static_cast<std::uint32_t>(v >> 32);
    }
    if (carry) r.mag_.push_back(carry);
  }
  r.mag_.insert(r.mag_.begin(), limbs, 0u);
  r.neg_ = d < 0;
  r.trim();
  return r;
}

std::strong_ordering operator<=>(const BigInt& a, const BigInt& b) noexcept {
  if (a.neg_ != b.neg_) return a.neg_ ? std::strong_ordering::less : std::strong_ordering::greater;
  std::strong_ordering mag = a.mag_.size() <=> b.mag_.size();
  if (mag == 0) {
    for (std::size_t i = a.mag_.size(); i-- > 0;) {
      if (a.mag_[i] != b.mag_[i]) {
        mag = a.mag_[i] <=> b.mag_[i];
        break;
      }
    }
  }
  if (!a.neg_) return mag;
  return mag == 0 ? mag : (mag < 0 ? std::strong_ordering::greater : std::strong_ordering::less);
}

std::partial_ordering BigInt::compare(double d) const noexcept {
  if (std::isnan(d)) return std::partial_ordering::unordered;
  if (std::isinf(d)) return d > 0 ? std::partial_ordering::less : std::partial_ordering::greater;
  const double t = std::trunc(d);
  const auto bt = from_double(t);
  const auto c = *this <=> *bt;
  if (c != 0) return c;
  if (d > t) return std::partial_ordering::less;
  if (d < t) return std::partial_ordering::greater;
  return std::partial_ordering::equivalent;
}

std::size_t BigInt::hash() const noexcept {
  std::size_t h = neg_ ? 0x9e3779b97f4a7c15ull : 0;
  for (auto limb : mag_) h = (h ^ limb) * 0x100000001b3ull + (h >> 29);
  return h;
}

}  // namespace hypha
