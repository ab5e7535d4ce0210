// ETF decoder. Input is untrusted: every read is bounds-checked, every count is checked against
// the bytes that remain before anything is allocated for it, and nesting is limited.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <charconv>
#include <cmath>
#include <cstring>

#include "atom_table.hpp"
#include "box.hpp"
#include "etf_tags.hpp"
#include "hypha/term/etf.hpp"
#include "utf8.hpp"

namespace hypha::etf {

std::string DecodeError::message() const {
  return "at byte " + std::to_string(offset) + ": " + reason;
}

namespace {

struct Failure {
  std::size_t offset;
  std::string reason;
};

class Decoder {
 public:
  Decoder(std::span<const std::uint8_t> in, const DecodeOptions& opts, std::size_t reported_base,
          std::string context)
      : p_(in.data()), end_(in.size()), opts_(opts), base_(reported_base), context_(std::move(context)),
        budget_(std::min(opts.max_memory, in.size() > (SIZE_MAX - kBudgetSlack) / std::max<std::size_t>(opts.memory_per_byte, 1)
                                              ? SIZE_MAX
                                              : in.size() * opts.memory_per_byte + kBudgetSlack)) {}

  std::size_t pos() const { return pos_; }
  std::size_t size() const { return end_; }
  std::size_t new_atoms = 0;

  Term term(std::size_t depth) {
    if (depth > opts_.max_depth)
      fail(pos_, "nesting deeper than " + std::to_string(opts_.max_depth));
    const std::size_t at = pos_;
    const std::uint8_t t = u8();
    switch (t) {
      case tag::kSmallInteger: return Term(static_cast<std::int64_t>(u8()));
      case tag::kInteger: return Term(static_cast<std::int64_t>(static_cast<std::int32_t>(u32())));
      case tag::kSmallBig: { const std::size_t n = u8(); return big(n); }
      case tag::kLargeBig: { const std::size_t n = u32(); return big(n); }
      case tag::kNewFloat: return finite(at, bit_cast_double(u64()));
      case tag::kFloat: return old_float(at);
      case tag::kAtom: case tag::kSmallAtom: case tag::kAtomUtf8: case tag::kSmallAtomUtf8:
      case tag::kAtomCacheRef:
        return Term(atom_body(t, at));
      case tag::kNil: return Term();
      case tag::kSmallTuple: { const std::size_t n = u8(); return tuple(n, depth); }
      case tag::kLargeTuple: { const std::size_t n = u32(); return tuple(n, depth); }
      case tag::kString: case tag::kList: return list(t, depth);
      case tag::kMap: return map(depth);
      case tag::kBinary: return binary(u32(), 8, at);
      case tag::kBitBinary: {
        const std::size_t n = u32();
        const unsigned bits = u8();
        return binary(n, bits, at);
      }
      case tag::kPid: case tag::kNewPid: return Term(pid_body(t));
      case tag::kPort: case tag::kNewPort: case tag::kV4Port: return Term(port_body(t));
      case tag::kReference: case tag::kNewReference: case tag::kNewerReference:
        return Term(ref_body(t, at));
      case tag::kExport: return export_fun(at);
      case tag::kNewFun: return local_fun(at, depth);
      case tag::kFun: fail(at, "FUN_EXT (removed in OTP 23) is not supported");
      case tag::kLocal: fail(at, "LOCAL_EXT can only be decoded by the node that encoded it");
      case tag::kCompressed: fail(at, "compressed term inside a term");
      default: fail(at, "unknown tag " + std::to_string(t));
    }
  }

  [[noreturn]] void fail(std::size_t at, std::string reason) {
    throw Failure{base_ + at, context_.empty() ? std::move(reason) : reason + " " + context_};
  }

 private:
  void need(std::size_t n) {
    if (end_ - pos_ < n) [[unlikely]] truncated(n);
  }
  [[noreturn, gnu::noinline]] void truncated(std::size_t n) {
    fail(pos_, "truncated: " + std::to_string(n) + " bytes needed, " + std::to_string(end_ - pos_) + " left");
  }
  // Each of `count` items takes at least `min_bytes`: refuse counts the input cannot hold before
  // allocating anything for them.
  void need_items(std::size_t count, std::size_t min_bytes, std::size_t at) {
    if (count > (end_ - pos_) / min_bytes)
      fail(at, "count " + std::to_string(count) + " exceeds the " + std::to_string(end_ - pos_) +
                   " bytes left");
  }
  std::uint8_t u8() { need(1); return p_[pos_++]; }
  std::uint16_t u16() {
    need(2);
    const std::uint16_t v = static_cast<std::uint16_t>((p_[pos_] << 8) | p_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    need(4);
    const std::uint32_t v = (std::uint32_t{p_[pos_]} << 24) | (std::uint32_t{p_[pos_ + 1]} << 16) |
                            (std::uint32_t{p_[pos_ + 2]} << 8) | p_[pos_ + 3];
    pos_ += 4;
    return v;
  }
  std::uint64_t u64() {
    const std::uint64_t hi = u32();
    return (hi << 32) | u32();
  }
  static double bit_cast_double(std::uint64_t bits) {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  Term finite(std::size_t at, double d) {
    if (!std::isfinite(d)) fail(at, "float is NaN or infinite");
    return Term(d);
  }

  Term big(std::size_t n) {
    const std::size_t at = pos_;
    if (n > opts_.max_bignum_bytes)
      fail(at, "big integer of " + std::to_string(n) + " bytes exceeds the limit of " +
                   std::to_string(opts_.max_bignum_bytes));
    const bool negative = u8() != 0;
    need(n);
    const std::uint8_t* d = p_ + pos_;
    pos_ += n;
    if (n <= 8) {
      std::uint64_t m = 0;
      for (std::size_t i = n; i-- > 0;) m = (m << 8) | d[i];
      if (!negative && m <= static_cast<std::uint64_t>(INT64_MAX)) return Term(static_cast<std::int64_t>(m));
      if (negative && m <= (1ull << 63)) return Term(static_cast<std::int64_t>(~m + 1));
    }
    return Term(BigInt::from_bytes(negative, {d, n}));
  }

  Term old_float(std::size_t at) {
    need(31);
    const char* s = reinterpret_cast<const char*>(p_ + pos_);
    const std::size_t len = strnlen(s, 31);
    pos_ += 31;
    std::size_t skip = 0;
    while (skip < len && s[skip] == ' ') ++skip;
    double d = 0;
    const char* first = s + skip;
    if (first < s + len && *first == '+') ++first;
    auto [ptr, ec] = std::from_chars(first, s + len, d);
    if (ec != std::errc() || ptr != s + len) fail(at, "malformed FLOAT_EXT text");
    return finite(at, d);
  }

  Atom atom_body(std::uint8_t t, std::size_t at) {
    if (t == tag::kAtomCacheRef) {
      const std::size_t i = u8();
      if (i >= opts_.atom_cache.size()) fail(at, "atom cache reference " + std::to_string(i) + " not in the cache");
      return opts_.atom_cache[i];
    }
    const std::size_t n = (t == tag::kSmallAtom || t == tag::kSmallAtomUtf8) ? u8() : u16();
    need(n);
    std::string_view text(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    std::string converted;
    if (t == tag::kAtom || t == tag::kSmallAtom) {
      if (n > Atom::kMaxChars) fail(at, "atom longer than 255 characters");
      text = detail::latin1_as_utf8(text, converted);
    }
    // Messages repeat their atoms: a few recent ones are matched on their bytes, without hashing.
    auto& slot = recent_[(text.size() ^ (text.empty() ? 0 : static_cast<unsigned char>(text.back()))) % kRecent];
    if (slot && slot->text == text) return AtomAccess::from(slot);
    detail::InternStatus st;
    const bool budget_spent = opts_.atom_budget && *opts_.atom_budget == 0;
    const auto* e = detail::intern(text, opts_.allow_new_atoms && !budget_spent, &st);
    slot = e;
    switch (st) {
      case detail::InternStatus::Found: break;
      case detail::InternStatus::Created:
        if (++new_atoms > opts_.max_new_atoms)
          fail(at, "more than " + std::to_string(opts_.max_new_atoms) + " new atoms in one term");
        if (opts_.atom_budget) --*opts_.atom_budget;
        break;
      case detail::InternStatus::Invalid: fail(at, "atom is not valid UTF-8 or longer than 255 characters");
      case detail::InternStatus::TableFull: fail(at, "atom table full");
      case detail::InternStatus::Missing:
        fail(at, budget_spent ? "new-atom budget of this connection spent" : "unknown atom (new atoms not allowed)");
    }
    return AtomAccess::from(e);
  }

  Atom atom_term() {
    const std::size_t at = pos_;
    const std::uint8_t t = u8();
    if (t != tag::kAtom && t != tag::kSmallAtom && t != tag::kAtomUtf8 && t != tag::kSmallAtomUtf8 &&
        t != tag::kAtomCacheRef)
      fail(at, "expected an atom, found tag " + std::to_string(t));
    return atom_body(t, at);
  }

  Term tuple(std::size_t n, std::size_t depth) {
    need_items(n, 1, pos_);
    charge(kBox + n * kSlot, pos_);
    Term* slots;
    Term t = TermAccess::make_tuple(n, slots);
    for (std::size_t i = 0; i < n; ++i) slots[i] = term(depth + 1);
    return t;
  }

  // A list and any list tails that follow it are read into one element vector, so a chain of
  // nested tails costs no recursion.
  Term list(std::uint8_t t, std::size_t depth) {
    std::vector<Term> elems;
    for (;;) {
      const std::size_t at = pos_;
      if (t == tag::kString) {
        const std::size_t n = u16();
        need(n);
        charge(kBox + n * kSlot, at);
        elems.reserve(elems.size() + n);
        for (std::size_t i = 0; i < n; ++i) elems.emplace_back(static_cast<std::int64_t>(p_[pos_ + i]));
        pos_ += n;
        return Term::list(std::move(elems));
      }
      const std::size_t n = u32();
      need_items(n, 1, at);
      charge(kBox + n * kSlot, at);
      elems.reserve(elems.size() + n);
      for (std::size_t i = 0; i < n; ++i) elems.push_back(term(depth + 1));
      need(1);
      t = p_[pos_];
      if (t == tag::kList || t == tag::kString) {
        ++pos_;
        continue;
      }
      if (t == tag::kNil) {
        ++pos_;
        return Term::list(std::move(elems));
      }
      Term tail = term(depth + 1);
      return Term::list(std::move(elems), std::move(tail));
    }
  }

  Term map(std::size_t depth) {
    const std::size_t at = pos_;
    const std::size_t n = u32();
    need_items(n, 2, at);
    charge(kBox + n * 2 * kSlot, at);
    std::vector<MapEntry> entries;
    entries.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      Term k = term(depth + 1);
      Term v = term(depth + 1);
      entries.emplace_back(std::move(k), std::move(v));
    }
    auto by_key = [](const MapEntry& a, const MapEntry& b) { return a.first < b.first; };
    if (!std::is_sorted(entries.begin(), entries.end(), by_key))
      std::sort(entries.begin(), entries.end(), by_key);
    for (std::size_t i = 1; i < entries.size(); ++i)
      if (entries[i - 1].first == entries[i].first) fail(at, "duplicate key in map");
    return TermAccess::make_sorted_map(std::move(entries));
  }

  Term binary(std::size_t n, unsigned bits, std::size_t at) {
    if (n == 0) {
      if (bits != 8 && bits != 0) fail(at, "empty bitstring with " + std::to_string(bits) + " bits in its last byte");
      std::uint8_t* unused;
      return TermAccess::make_binary(0, 8, unused);
    }
    if (bits < 1 || bits > 8) fail(at, "bits in the last byte must be 1..8, found " + std::to_string(bits));
    need(n);
    charge(kBox + n, at);
    std::uint8_t* data;
    Term t = TermAccess::make_binary(n, bits, data);
    std::memcpy(data, p_ + pos_, n);
    data[n - 1] &= static_cast<std::uint8_t>(0xFF << (8 - bits));
    pos_ += n;
    return t;
  }

  Pid pid_body(std::uint8_t t) {
    Pid p;
    p.node = atom_term();
    p.id = u32();
    p.serial = u32();
    p.creation = t == tag::kPid ? u8() : u32();
    return p;
  }

  Port port_body(std::uint8_t t) {
    Port p;
    p.node = atom_term();
    p.id = t == tag::kV4Port ? u64() : u32();
    p.creation = t == tag::kPort ? u8() : u32();
    return p;
  }

  Ref ref_body(std::uint8_t t, std::size_t at) {
    Ref r;
    if (t == tag::kReference) {
      r.node = atom_term();
      r.len = 1;
      r.ids[0] = u32();
      r.creation = u8();
      return r;
    }
    const std::size_t len = u16();
    if (len < 1 || len > Ref::kMaxWords) fail(at, "reference with " + std::to_string(len) + " words (1..5 allowed)");
    r.len = static_cast<std::uint8_t>(len);
    r.node = atom_term();
    r.creation = t == tag::kNewReference ? u8() : u32();
    for (std::size_t i = 0; i < len; ++i) r.ids[i] = u32();
    return r;
  }

  Term export_fun(std::size_t at) {
    ExportFun f;
    f.module = atom_term();
    f.function = atom_term();
    if (u8() != tag::kSmallInteger) fail(at, "export fun arity is not a small integer");
    f.arity = u8();
    return Term(f);
  }

  std::uint32_t small_int_field(std::size_t at) {
    const std::uint8_t t = u8();
    if (t == tag::kSmallInteger) return u8();
    if (t == tag::kInteger) return u32();
    fail(at, "fun field is not an integer");
  }

  Term local_fun(std::size_t at, std::size_t depth) {
    const std::size_t start = pos_;
    const std::size_t size = u32();
    if (size < 4) fail(at, "NEW_FUN_EXT size too small");
    need(size - 4);
    const std::size_t stop = start + size;
    LocalFun f;
    f.arity = u8();
    need(16);
    std::memcpy(f.uniq.data(), p_ + pos_, 16);
    pos_ += 16;
    f.index = u32();
    f.num_free = u32();
    f.module = atom_term();
    small_int_field(pos_);  // OldIndex
    f.old_uniq = small_int_field(pos_);
    const std::size_t pid_at = pos_;
    const std::uint8_t pt = u8();
    if (pt != tag::kPid && pt != tag::kNewPid) fail(pid_at, "fun creator is not a pid");
    pid_body(pt);
    need_items(f.num_free, 1, pos_);
    for (std::uint32_t i = 0; i < f.num_free; ++i) term(depth + 1);
    if (pos_ != stop) fail(at, "NEW_FUN_EXT size field disagrees with its contents");
    f.encoded.assign(p_ + start, p_ + stop);
    return Term(std::move(f));
  }

  static constexpr std::size_t kRecent = 16;
  const detail::AtomEntry* recent_[kRecent] = {};
  const std::uint8_t* p_;
  // What the term built so far takes (estimated), against the budget (DecodeOptions).
  void charge(std::size_t bytes, std::size_t at) {
    used_ += bytes;
    if (used_ > budget_) [[unlikely]] over_budget(at);
  }
  [[noreturn, gnu::noinline]] void over_budget(std::size_t at) {
    fail(at, "decoded term would take more than its memory budget of " + std::to_string(budget_) + " bytes");
  }
  static constexpr std::size_t kBudgetSlack = 64 * 1024;
  static constexpr std::size_t kSlot = sizeof(Term);
  static constexpr std::size_t kBox = 32;

  std::size_t pos_ = 0;
  std::size_t end_;
  const DecodeOptions& opts_;
  std::size_t base_;
  std::string context_;
  std::size_t budget_;
  std::size_t used_ = 0;
};

Result<Term, DecodeError> decompress_and_decode(std::span<const std::uint8_t> bytes,
                                                const DecodeOptions& opts) {
  // bytes: 131 80 Size(4) zlib-data
  if (bytes.size() < 6) return unexpected(DecodeError{bytes.size(), "truncated compressed term"});
  const std::size_t size = (std::size_t{bytes[2]} << 24) | (std::size_t{bytes[3]} << 16) |
                           (std::size_t{bytes[4]} << 8) | bytes[5];
  if (size > opts.max_bytes)
    return unexpected(DecodeError{2, "uncompressed size " + std::to_string(size) + " exceeds the limit of " +
                                         std::to_string(opts.max_bytes)});
  std::vector<std::uint8_t> out(size);
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return unexpected(DecodeError{6, "zlib initialisation failed"});
  zs.next_in = const_cast<Bytef*>(bytes.data() + 6);
  zs.avail_in = static_cast<uInt>(bytes.size() - 6);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(size);
  const int rc = inflate(&zs, Z_FINISH);
  const std::size_t used = 6 + (bytes.size() - 6 - zs.avail_in);
  const std::size_t produced = size - zs.avail_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END)
    return unexpected(DecodeError{used, rc == Z_BUF_ERROR && zs.avail_out == 0
                                            ? "compressed data larger than its stated size"
                                            : "corrupt or truncated compressed data"});
  if (produced != size) return unexpected(DecodeError{used, "compressed data smaller than its stated size"});
  if (used != bytes.size())
    return unexpected(DecodeError{used, std::to_string(bytes.size() - used) + " trailing bytes after the term"});
  try {
    Decoder d(out, opts, 0, "(in the decompressed data)");
    Term t = d.term(0);
    if (d.pos() != d.size()) d.fail(d.pos(), "trailing bytes inside the compressed term");
    return t;
  } catch (Failure& f) {
    return unexpected(DecodeError{f.offset, std::move(f.reason)});
  }
}

}  // namespace

Result<Term, DecodeError> decode(std::span<const std::uint8_t> bytes, const DecodeOptions& opts) {
  if (bytes.empty()) return unexpected(DecodeError{0, "empty input"});
  if (bytes.size() > opts.max_bytes)
    return unexpected(DecodeError{0, "input of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                                         std::to_string(opts.max_bytes)});
  if (bytes[0] != kVersion)
    return unexpected(DecodeError{0, "bad version byte " + std::to_string(bytes[0]) + " (expected 131)"});
  if (bytes.size() >= 2 && bytes[1] == tag::kCompressed) return decompress_and_decode(bytes, opts);
  try {
    Decoder d(bytes.subspan(1), opts, 1, "");
    Term t = d.term(0);
    if (d.pos() != d.size())
      d.fail(d.pos(), std::to_string(d.size() - d.pos()) + " trailing bytes after the term");
    return t;
  } catch (Failure& f) {
    return unexpected(DecodeError{f.offset, std::move(f.reason)});
  }
}

Result<Decoded, DecodeError> decode_prefix(std::span<const std::uint8_t> bytes, const DecodeOptions& opts) {
  if (bytes.size() > opts.max_bytes) bytes = bytes.first(opts.max_bytes);
  try {
    Decoder d(bytes, opts, 0, "");
    Term t = d.term(0);
    return Decoded{std::move(t), d.pos()};
  } catch (Failure& f) {
    return unexpected(DecodeError{f.offset, std::move(f.reason)});
  }
}

}  // namespace hypha::etf
