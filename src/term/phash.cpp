// erlang:phash2: Bob Jenkins' 96-bit mix folded over the term, as erts computes it (its
// "make_hash2"). Written from the description of the algorithm in OTP's sources and checked
// against a real erl on a corpus of every kind of term (tests/interop/phash2.escript).
//
// The running 32-bit value `h` is threaded through the whole term, depth first, left to right:
// every piece (an integer, an atom, the size of a tuple...) is mixed in with a constant of its
// own kind. Maps are the exception: each key-value pair is hashed from zero on its own and the
// pairs are combined by xor, so the order of the keys does not matter.
#include "hypha/term/phash.hpp"

#include <bit>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <vector>

#include "hypha/term/etf.hpp"

namespace hypha {

namespace {

// The golden ratio times 1..19 (mod 2^32): one constant per kind of thing mixed in.
constexpr std::uint32_t golden(std::uint32_t n) { return 0x9e3779b9u * n; }
constexpr std::uint32_t kInt = golden(1);
constexpr std::uint32_t kNil = golden(2);
constexpr std::uint32_t kAtom = golden(3);
constexpr std::uint32_t kBytes = golden(4);
constexpr std::uint32_t kPid = golden(5);
constexpr std::uint32_t kPort = golden(6);
constexpr std::uint32_t kRef = golden(7);
constexpr std::uint32_t kTuple = golden(9);
constexpr std::uint32_t kNegBig = golden(10);
constexpr std::uint32_t kPosBig = golden(11);
constexpr std::uint32_t kFloat = golden(12);
constexpr std::uint32_t kBinary = golden(13);
constexpr std::uint32_t kFunName = golden(14);
constexpr std::uint32_t kBits = golden(15);
constexpr std::uint32_t kMap = golden(16);
constexpr std::uint32_t kMapPairs = golden(19);
// What [] hashes to when it is the first thing hashed.
constexpr std::uint32_t kFirstNil = 3468870702u;
constexpr std::uint32_t kNilTag = 2;

void mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  a -= b; a -= c; a ^= c >> 13;
  b -= c; b -= a; b ^= a << 8;
  c -= a; c -= b; c ^= b >> 13;
  a -= b; a -= c; a ^= c >> 12;
  b -= c; b -= a; b ^= a << 16;
  c -= a; c -= b; c ^= b >> 5;
  a -= b; a -= c; a ^= c >> 3;
  b -= c; b -= a; b ^= a << 10;
  c -= a; c -= b; c ^= b >> 15;
}

std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}

// Jenkins' lookup2 over `n` bytes, seeded with `seed`.
std::uint32_t block_hash(const std::uint8_t* p, std::size_t n, std::uint32_t seed) {
  std::uint32_t a = golden(1), b = golden(1), c = seed;
  std::size_t left = n;
  for (; left >= 12; left -= 12, p += 12) {
    a += le32(p);
    b += le32(p + 4);
    c += le32(p + 8);
    mix(a, b, c);
  }
  // Sizes over 4 GiB count modulo 2^32, as in erts.
  c += static_cast<std::uint32_t>(n);
  // The low byte of c is the length's: the tail goes into the upper three.
  for (std::size_t i = left; i-- > 0;) {
    const std::uint32_t byte = p[i];
    if (i >= 8) c += byte << (8 * (i - 7));
    else if (i >= 4) b += byte << (8 * (i - 4));
    else a += byte << (8 * i);
  }
  mix(a, b, c);
  return c;
}

// hashpjw over the atom's text, Latin-1 characters taken as one (the hash atoms had when they
// were Latin-1, which phash2 keeps).
std::uint32_t atom_hash(Atom atom) {
  const std::string_view s = atom.text();
  std::uint32_t h = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto v = static_cast<std::uint8_t>(s[i]);
    if (i + 1 < s.size() && (v & 0xFE) == 0xC2 && (static_cast<std::uint8_t>(s[i + 1]) & 0xC0) == 0x80) {
      v = static_cast<std::uint8_t>((v << 6) | (static_cast<std::uint8_t>(s[i + 1]) & 0x3F));
      ++i;
    }
    h = (h << 4) + v;
    if (const std::uint32_t g = h & 0xF0000000u) {
      h ^= g >> 24;
      h ^= g;
    }
  }
  return h;
}

bool is_byte(const Term& t) {
  return t.is_small_integer() && t.small_integer() >= 0 && t.small_integer() <= 255;
}

class Hasher {
 public:
  std::uint32_t run(const Term& root) {
    todo_.push_back({Step::Value, &root});
    while (!todo_.empty()) {
      const Step s = todo_.back();
      todo_.pop_back();
      switch (s.kind) {
        case Step::Value: value(*s.term); break;
        case Step::ListFrom: list_from(*s.term, s.index); break;
        case Step::PairDone:
          pairs_ ^= h_;
          h_ = 0;
          break;
        case Step::MapDone: {
          const std::uint32_t pairs = pairs_;
          h_ = s.saved_h;
          pairs_ = s.saved_pairs;
          one(pairs, kMapPairs);
          break;
        }
      }
    }
    return h_;
  }

 private:
  struct Step {
    enum Kind : std::uint8_t { Value, ListFrom, PairDone, MapDone } kind;
    const Term* term = nullptr;
    std::size_t index = 0;
    std::uint32_t saved_h = 0, saved_pairs = 0;
  };

  void two(std::uint32_t x, std::uint32_t y, std::uint32_t k) {
    std::uint32_t a = k + x, b = k + y;
    mix(a, b, h_);
  }
  void one(std::uint32_t x, std::uint32_t k) { two(x, 0, k); }

  // An integer by its 64-bit limbs, least significant first, each as two 32-bit halves.
  void magnitude(const std::vector<std::uint8_t>& le_bytes, bool negative) {
    const std::uint32_t k = negative ? kNegBig : kPosBig;
    for (std::size_t i = 0; i < le_bytes.size(); i += 8) {
      std::uint64_t limb = 0;
      for (std::size_t j = 0; j < 8 && i + j < le_bytes.size(); ++j) limb |= std::uint64_t{le_bytes[i + j]} << (8 * j);
      two(static_cast<std::uint32_t>(limb), static_cast<std::uint32_t>(limb >> 32), k);
    }
  }

  void integer(const Term& t) {
    if (t.is_small_integer()) {
      const std::int64_t v = t.small_integer();
      if (v >= -(std::int64_t{1} << 27) && v < (std::int64_t{1} << 27)) {
        const auto y = static_cast<std::int32_t>(v);
        if (y < 0) one(static_cast<std::uint32_t>(-y), kInt);  // negatives are mixed twice
        one(static_cast<std::uint32_t>(y), kInt);
        return;
      }
      const std::uint64_t mag = v < 0 ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
      two(static_cast<std::uint32_t>(mag), static_cast<std::uint32_t>(mag >> 32), v < 0 ? kNegBig : kPosBig);
      return;
    }
    const BigInt big = t.big_integer();
    magnitude(big.magnitude_bytes(), big.negative());
  }

  void bits(const Term& t) {
    const auto bytes = t.binary_bytes();
    const std::uint32_t seed = kBinary + h_;
    if (bytes.empty()) {
      h_ = seed;
      return;
    }
    const unsigned last_bits = t.bits_in_last_byte();
    const std::size_t whole = last_bits == 8 ? bytes.size() : bytes.size() - 1;
    h_ = block_hash(bytes.data(), whole, seed);
    if (last_bits != 8) two(last_bits, static_cast<std::uint32_t>(bytes.back() >> (8 - last_bits)), kBits);
  }

  // A fun's free variables, read back from the bytes it came in.
  void fun_env(const LocalFun& f) {
    if (f.num_free == 0) return;
    // Size, Arity, Uniq, Index, NumFree; then Module, OldIndex, OldUniq and Pid come before them.
    constexpr std::size_t kFixed = 4 + 1 + 16 + 4 + 4;
    if (f.encoded.size() < kFixed) return;
    std::span<const std::uint8_t> rest(f.encoded.data() + kFixed, f.encoded.size() - kFixed);
    std::vector<Term> env;
    for (std::uint32_t i = 0; i < 4 + f.num_free; ++i) {
      auto d = etf::decode_prefix(rest);
      if (!d) return;  // hashed without them: cannot happen for bytes the decoder accepted
      if (i >= 4) env.push_back(std::move(d->term));
      rest = rest.subspan(d->consumed);
    }
    kept_.emplace_back(Term::tuple(std::move(env)));
    const auto elems = kept_.back().tuple_elements();
    for (std::size_t i = elems.size(); i-- > 0;) todo_.push_back({Step::Value, &elems[i]});
  }

  void list_from(const Term& list, std::size_t from) {
    const auto elems = list.list_elements();
    std::uint32_t packed = 0;
    int count = 0;
    std::size_t i = from;
    for (; i < elems.size() && is_byte(elems[i]); ++i) {
      packed = (packed << 8) + static_cast<std::uint32_t>(elems[i].small_integer());
      if (count == 3) {
        one(packed, kBytes);
        packed = 0;
        count = 0;
      } else {
        ++count;
      }
    }
    if (count > 0) one(packed, kBytes);
    if (i < elems.size()) {
      todo_.push_back({Step::ListFrom, &list, i + 1});
      todo_.push_back({Step::Value, &elems[i]});
    } else {
      todo_.push_back({Step::Value, &list.list_tail()});
    }
  }

  void value(const Term& t) {
    switch (t.kind()) {
      case Kind::Integer: integer(t); break;
      case Kind::Float: {
        const double d = t.float_value() == 0.0 ? 0.0 : t.float_value();
        const auto w = std::bit_cast<std::uint64_t>(d);
        two(static_cast<std::uint32_t>(w >> 32), static_cast<std::uint32_t>(w), kFloat);
        break;
      }
      case Kind::Atom: {
        const std::uint32_t a = atom_hash(t.atom_value());
        if (h_ == 0) h_ = a;
        else one(a, kAtom);
        break;
      }
      case Kind::Nil:
        if (h_ == 0) h_ = kFirstNil;
        else one(kNilTag, kNil);
        break;
      case Kind::Binary: bits(t); break;
      case Kind::List: list_from(t, 0); break;
      case Kind::Tuple: {
        const auto elems = t.tuple_elements();
        one(static_cast<std::uint32_t>(elems.size()), kTuple);
        for (std::size_t i = elems.size(); i-- > 0;) todo_.push_back({Step::Value, &elems[i]});
        break;
      }
      case Kind::Map: {
        const auto entries = t.map_entries();
        one(static_cast<std::uint32_t>(entries.size()), kMap);
        if (entries.empty()) break;
        todo_.push_back({Step::MapDone, nullptr, 0, h_, pairs_});
        h_ = 0;
        pairs_ = 0;
        for (const MapEntry& e : entries) {
          todo_.push_back({Step::PairDone});
          todo_.push_back({Step::Value, &e.second});
          todo_.push_back({Step::Value, &e.first});
        }
        break;
      }
      case Kind::Pid: one(t.pid().id, kPid); break;
      case Kind::Port: two(static_cast<std::uint32_t>(t.port().id), static_cast<std::uint32_t>(t.port().id >> 32), kPort); break;
      case Kind::Reference: one(t.ref().len > 0 ? t.ref().ids[0] : 0, kRef); break;
      case Kind::Fun:
        if (t.is_export_fun()) {
          const ExportFun& f = t.export_fun();
          two(f.arity, atom_hash(f.module), kInt);
          one(atom_hash(f.function), kFunName);
        } else {
          const LocalFun& f = t.local_fun();
          two(f.num_free, atom_hash(f.module), kInt);
          two(f.index, f.old_uniq, kInt);
          fun_env(f);
        }
        break;
    }
  }

  std::uint32_t h_ = 0;
  std::uint32_t pairs_ = 0;
  std::vector<Step> todo_;
  std::deque<Term> kept_;  // decoded fun environments, alive while their elements are queued
};

}  // namespace

std::uint32_t phash2_full(const Term& t) { return Hasher().run(t); }

std::uint32_t phash2(const Term& t, std::uint64_t range) {
  if (range == 0 || range > (std::uint64_t{1} << 32)) throw std::invalid_argument("phash2: range must be 1..2^32");
  return static_cast<std::uint32_t>(phash2_full(t) % range);
}

}  // namespace hypha
