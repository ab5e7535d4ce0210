// ETF encoder: one pass to size the output exactly, one pass to write it.
#include <zlib.h>

#include <cstring>

#include "box.hpp"
#include "etf_tags.hpp"
#include "hypha/term/etf.hpp"

namespace hypha::etf {

namespace {

// A proper list of 1..65535 integers in 0..255 goes out as STRING_EXT, as term_to_binary does.
bool is_byte_string(const Term& t) {
  if (!t.is_list() || !t.list_tail().is_nil()) return false;
  const auto elems = t.list_elements();
  if (elems.size() > 0xFFFF) return false;
  for (const auto& e : elems)
    if (!e.is_small_integer() || e.small_integer() < 0 || e.small_integer() > 255) return false;
  return true;
}

std::size_t atom_size(Atom a) {
  const std::size_t n = a.text().size();
  return n <= 255 ? 2 + n : 3 + n;
}

std::size_t big_size(const BigInt& b) {
  const std::size_t n = b.magnitude_byte_count();
  return n <= 255 ? 3 + n : 6 + n;
}

std::size_t size_of(const Term& t) {
  switch (t.kind()) {
    case Kind::Nil: return 1;
    case Kind::Atom: return atom_size(t.atom_value());
    case Kind::Float: return 9;
    case Kind::Integer:
      if (t.is_small_integer()) {
        const std::int64_t v = t.small_integer();
        if (v >= 0 && v <= 255) return 2;
        if (v >= INT32_MIN && v <= INT32_MAX) return 5;
      }
      return big_size(t.big_integer());
    case Kind::Tuple: {
      const auto elems = t.tuple_elements();
      std::size_t n = elems.size() <= 255 ? 2 : 5;
      for (const auto& e : elems) n += size_of(e);
      return n;
    }
    case Kind::List: {
      if (is_byte_string(t)) return 3 + t.list_elements().size();
      std::size_t n = 5;
      for (const auto& e : t.list_elements()) n += size_of(e);
      return n + size_of(t.list_tail());
    }
    case Kind::Map: {
      std::size_t n = 5;
      for (const auto& [k, v] : t.map_entries()) n += size_of(k) + size_of(v);
      return n;
    }
    case Kind::Binary: return (t.bits_in_last_byte() == 8 ? 5 : 6) + t.binary_bytes().size();
    case Kind::Pid: return 13 + atom_size(t.pid().node);
    case Kind::Port: return (t.port().id > 0xFFFFFFFFu ? 13 : 9) + atom_size(t.port().node);
    case Kind::Reference: return 7 + atom_size(t.ref().node) + 4 * t.ref().len;
    case Kind::Fun:
      if (t.is_export_fun())
        return 3 + atom_size(t.export_fun().module) + atom_size(t.export_fun().function);
      return 1 + t.local_fun().encoded.size();
  }
  return 0;
}

// Writes in one pass into `out`, growing it as needed (a separate sizing pass would walk the term
// twice, and large terms are bound by memory traffic, not by arithmetic).
class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(&out) {
    grow(std::max<std::size_t>(64, out.capacity() - out.size()));
  }
  // Into memory already sized with encoded_size(): no checks, no growth.
  explicit Writer(std::uint8_t* dst) : p_(dst) {}
  std::uint8_t* pos() const { return p_; }
  // Trims `out` to what was written.
  void finish() { out_->resize(static_cast<std::size_t>(p_ - out_->data())); }

  void term(const Term& t) {
    ensure(kMaxHeader);
    switch (t.kind()) {
      case Kind::Nil: u8(tag::kNil); return;
      case Kind::Atom: atom(t.atom_value()); return;
      case Kind::Float: {
        u8(tag::kNewFloat);
        std::uint64_t bits;
        const double d = t.float_value();
        std::memcpy(&bits, &d, sizeof bits);
        u64(bits);
        return;
      }
      case Kind::Integer: integer(t); return;
      case Kind::Tuple: {
        const auto elems = t.tuple_elements();
        if (elems.size() <= 255) { u8(tag::kSmallTuple); u8(static_cast<std::uint8_t>(elems.size())); }
        else { u8(tag::kLargeTuple); u32(static_cast<std::uint32_t>(elems.size())); }
        for (const auto& e : elems) term(e);
        return;
      }
      case Kind::List: {
        const auto elems = t.list_elements();
        if (is_byte_string(t)) {
          ensure(3 + elems.size());
          u8(tag::kString);
          u16(static_cast<std::uint16_t>(elems.size()));
          for (const auto& e : elems) u8(static_cast<std::uint8_t>(e.small_integer()));
          return;
        }
        u8(tag::kList);
        u32(static_cast<std::uint32_t>(elems.size()));
        for (const auto& e : elems) term(e);
        term(t.list_tail());
        return;
      }
      case Kind::Map: {
        const auto entries = t.map_entries();
        u8(tag::kMap);
        u32(static_cast<std::uint32_t>(entries.size()));
        for (const auto& [k, v] : entries) { term(k); term(v); }
        return;
      }
      case Kind::Binary: {
        const auto bytes = t.binary_bytes();
        const unsigned bits = t.bits_in_last_byte();
        u8(bits == 8 ? tag::kBinary : tag::kBitBinary);
        u32(static_cast<std::uint32_t>(bytes.size()));
        if (bits != 8) u8(static_cast<std::uint8_t>(bits));
        ensure(bytes.size());
        raw(bytes.data(), bytes.size());
        return;
      }
      case Kind::Pid: {
        const Pid& p = t.pid();
        u8(tag::kNewPid); atom(p.node); u32(p.id); u32(p.serial); u32(p.creation);
        return;
      }
      case Kind::Port: {
        const Port& p = t.port();
        if (p.id > 0xFFFFFFFFu) { u8(tag::kV4Port); atom(p.node); u64(p.id); }
        else { u8(tag::kNewPort); atom(p.node); u32(static_cast<std::uint32_t>(p.id)); }
        u32(p.creation);
        return;
      }
      case Kind::Reference: {
        const Ref& r = t.ref();
        u8(tag::kNewerReference); u16(r.len); atom(r.node); u32(r.creation);
        for (auto w : r.words()) u32(w);
        return;
      }
      case Kind::Fun:
        if (t.is_export_fun()) {
          const ExportFun& f = t.export_fun();
          u8(tag::kExport); atom(f.module); atom(f.function); u8(tag::kSmallInteger); u8(f.arity);
        } else {
          u8(tag::kNewFun);
          ensure(t.local_fun().encoded.size());
          raw(t.local_fun().encoded.data(), t.local_fun().encoded.size());
        }
        return;
    }
  }

 private:
  // The largest fixed part written before ensure() is called again: a V4 port or a pid with
  // its header, excluding its atom (atom() ensures its own room).
  static constexpr std::size_t kMaxHeader = 32;

  void ensure(std::size_t n) {
    if (out_ && static_cast<std::size_t>(end_ - p_) < n) grow(n);
  }
  void grow(std::size_t n) {
    const std::size_t used = p_ ? static_cast<std::size_t>(p_ - out_->data()) : out_->size();
    out_->resize(std::max(used + n, out_->size() * 2));
    p_ = out_->data() + used;
    end_ = out_->data() + out_->size();
  }

  void u8(std::uint8_t v) { *p_++ = v; }
  void u16(std::uint16_t v) { p_[0] = static_cast<std::uint8_t>(v >> 8); p_[1] = static_cast<std::uint8_t>(v); p_ += 2; }
  void u32(std::uint32_t v) {
    p_[0] = static_cast<std::uint8_t>(v >> 24); p_[1] = static_cast<std::uint8_t>(v >> 16);
    p_[2] = static_cast<std::uint8_t>(v >> 8); p_[3] = static_cast<std::uint8_t>(v);
    p_ += 4;
  }
  void u64(std::uint64_t v) { u32(static_cast<std::uint32_t>(v >> 32)); u32(static_cast<std::uint32_t>(v)); }
  void raw(const std::uint8_t* d, std::size_t n) { if (n) std::memcpy(p_, d, n); p_ += n; }

  void atom(Atom a) {
    const auto text = a.text();
    ensure(3 + text.size() + kMaxHeader);  // and room for the fixed fields that follow a node atom
    if (text.size() <= 255) { u8(tag::kSmallAtomUtf8); u8(static_cast<std::uint8_t>(text.size())); }
    else { u8(tag::kAtomUtf8); u16(static_cast<std::uint16_t>(text.size())); }
    raw(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  }

  void integer(const Term& t) {
    if (t.is_small_integer()) {
      const std::int64_t v = t.small_integer();
      if (v >= 0 && v <= 255) { u8(tag::kSmallInteger); u8(static_cast<std::uint8_t>(v)); return; }
      if (v >= INT32_MIN && v <= INT32_MAX) { u8(tag::kInteger); u32(static_cast<std::uint32_t>(v)); return; }
      // 64-bit value that needs a bignum: write its magnitude directly.
      const bool neg = v < 0;
      std::uint64_t m = neg ? ~static_cast<std::uint64_t>(v) + 1 : static_cast<std::uint64_t>(v);
      std::uint8_t bytes[8];
      std::size_t n = 0;
      while (m) { bytes[n++] = static_cast<std::uint8_t>(m); m >>= 8; }
      u8(tag::kSmallBig); u8(static_cast<std::uint8_t>(n)); u8(neg ? 1 : 0); raw(bytes, n);
      return;
    }
    const BigInt b = t.big_integer();
    const auto mag = b.magnitude_bytes();
    ensure(6 + mag.size());
    if (mag.size() <= 255) { u8(tag::kSmallBig); u8(static_cast<std::uint8_t>(mag.size())); }
    else { u8(tag::kLargeBig); u32(static_cast<std::uint32_t>(mag.size())); }
    u8(b.negative() ? 1 : 0);
    raw(mag.data(), mag.size());
  }

  std::vector<std::uint8_t>* out_ = nullptr;  // null: writing into fixed memory
  std::uint8_t* p_ = nullptr;
  std::uint8_t* end_ = nullptr;
};

}  // namespace

std::size_t encoded_size(const Term& t) { return size_of(t); }

std::uint8_t* encode_into(std::uint8_t* dst, const Term& t) {
  Writer w(dst);
  w.term(t);
  return w.pos();
}

void encode_append(std::vector<std::uint8_t>& out, const Term& t) {
  Writer w(out);
  w.term(t);
  w.finish();
}

// A first guess at the output size, from the top level only, to spare most of the regrowth
// of large terms; being wrong costs only a reallocation.
std::size_t size_hint(const Term& t) {
  switch (t.kind()) {
    case Kind::List: return 8 + t.list_elements().size() * 24;
    case Kind::Tuple: return 8 + t.tuple_size() * 24;
    case Kind::Map: return 8 + t.map_size() * 48;
    case Kind::Binary: return 8 + t.binary_bytes().size();
    default: return 64;
  }
}

std::vector<std::uint8_t> encode(const Term& t, const EncodeOptions& opts) {
  std::vector<std::uint8_t> out;
  out.reserve(1 + size_hint(t));
  out.push_back(kVersion);
  encode_append(out, t);
  if (opts.compression <= 0) return out;
  const std::size_t body = out.size() - 1;
  uLongf bound = compressBound(static_cast<uLong>(body));
  std::vector<std::uint8_t> z(6 + bound);
  z[0] = kVersion;
  z[1] = tag::kCompressed;
  z[2] = static_cast<std::uint8_t>(body >> 24); z[3] = static_cast<std::uint8_t>(body >> 16);
  z[4] = static_cast<std::uint8_t>(body >> 8); z[5] = static_cast<std::uint8_t>(body);
  if (compress2(z.data() + 6, &bound, out.data() + 1, static_cast<uLong>(body),
                std::min(opts.compression, 9)) != Z_OK)
    return out;
  z.resize(6 + bound);
  return z.size() < out.size() ? z : out;
}

}  // namespace hypha::etf
