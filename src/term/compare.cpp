// Erlang's term order, exact equality and hashing.
#include <cmath>
#include <cstring>

#include "atom_table.hpp"
#include "box.hpp"

namespace hypha {

using namespace detail;
using so = std::strong_ordering;

// The orders of pids, ports and references are OTP's, as observed with lists:sort/1 (the
// interop test term_order checks them): pids by serial, id, node, creation; ports and
// references by node, creation, then their numbers (references from the last word).
std::strong_ordering operator<=>(const Pid& a, const Pid& b) noexcept {
  if (auto c = a.serial <=> b.serial; c != 0) return c;
  if (auto c = a.id <=> b.id; c != 0) return c;
  if (auto c = a.node <=> b.node; c != 0) return c;
  return a.creation <=> b.creation;
}

std::strong_ordering operator<=>(const Port& a, const Port& b) noexcept {
  if (auto c = a.node <=> b.node; c != 0) return c;
  if (auto c = a.creation <=> b.creation; c != 0) return c;
  return a.id <=> b.id;
}

bool operator==(const Ref& a, const Ref& b) noexcept {
  return a.node == b.node && a.creation == b.creation && a.len == b.len &&
         std::equal(a.ids.begin(), a.ids.begin() + a.len, b.ids.begin());
}

std::strong_ordering operator<=>(const Ref& a, const Ref& b) noexcept {
  if (auto c = a.node <=> b.node; c != 0) return c;
  if (auto c = a.creation <=> b.creation; c != 0) return c;
  if (auto c = a.len <=> b.len; c != 0) return c;
  for (std::size_t i = a.len; i-- > 0;)
    if (auto c = a.ids[i] <=> b.ids[i]; c != 0) return c;
  return std::strong_ordering::equal;
}

std::strong_ordering operator<=>(const LocalFun& a, const LocalFun& b) noexcept {
  if (auto c = a.module <=> b.module; c != 0) return c;
  if (auto c = a.index <=> b.index; c != 0) return c;
  if (auto c = a.uniq <=> b.uniq; c != 0) return c;
  return a.encoded <=> b.encoded;
}

namespace {

// Numbers share the first rank.
int rank(Kind k) {
  return k == Kind::Integer ? 0 : static_cast<int>(k) - 1;
}

so from_partial(std::partial_ordering p) {
  if (p == std::partial_ordering::less) return so::less;
  if (p == std::partial_ordering::greater) return so::greater;
  return so::equal;
}

// Integer vs float by value; equal values put the integer first.
so compare_int_float(const Term& i, double d) {
  std::partial_ordering p = std::partial_ordering::equivalent;
  if (i.is_small_integer()) {
    const std::int64_t v = i.small_integer();
    if (d >= 9223372036854775808.0) p = std::partial_ordering::less;
    else if (d < -9223372036854775808.0) p = std::partial_ordering::greater;
    else {
      const double t = std::trunc(d);
      const auto ti = static_cast<std::int64_t>(t);
      if (v != ti) p = v <=> ti;
      else p = 0.0 <=> (d - t);
    }
  } else {
    p = i.big_integer().compare(d);
  }
  if (p == 0) return so::less;
  return from_partial(p);
}

so compare_numbers(const Term& a, const Term& b) {
  const bool af = a.is_float(), bf = b.is_float();
  if (af && bf) {
    const double x = a.float_value(), y = b.float_value();
    if (x < y) return so::less;
    if (x > y) return so::greater;
    return std::signbit(y) <=> std::signbit(x);  // -0.0 before 0.0 (distinct since OTP 27)
  }
  if (!af && !bf) {
    if (a.is_small_integer() && b.is_small_integer()) return a.small_integer() <=> b.small_integer();
    return a.big_integer() <=> b.big_integer();
  }
  if (af) {
    so c = compare_int_float(b, a.float_value());
    return c == so::less ? so::greater : so::less;
  }
  return compare_int_float(a, b.float_value());
}

so compare_bits(const Term& a, const Term& b) {
  const auto x = a.binary_bytes(), y = b.binary_bytes();
  const std::size_t xb = a.bit_size(), yb = b.bit_size();
  const std::size_t common = std::min(xb, yb);
  const std::size_t full = common / 8;
  if (full) {
    if (int c = std::memcmp(x.data(), y.data(), full); c != 0) return c < 0 ? so::less : so::greater;
  }
  if (const unsigned rest = common % 8) {
    const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
    if (auto c = (x[full] & mask) <=> (y[full] & mask); c != 0) return c;
  }
  return xb <=> yb;
}

so compare_fun(const Term& a, const Term& b) {
  if (a.is_export_fun() != b.is_export_fun()) return a.is_export_fun() ? so::greater : so::less;
  if (a.is_export_fun()) return a.export_fun() <=> b.export_fun();
  return a.local_fun() <=> b.local_fun();
}

so compare_lists(const Term& a, const Term& b) {
  const auto x = a.list_elements(), y = b.list_elements();
  const std::size_t n = std::min(x.size(), y.size());
  for (std::size_t i = 0; i < n; ++i)
    if (auto c = x[i] <=> y[i]; c != 0) return c;
  if (x.size() == y.size()) return a.list_tail() <=> b.list_tail();
  // One list ran out: its tail (never a non-empty list) meets the rest of the other, a list.
  if (x.size() < y.size()) return rank(a.list_tail().kind()) <=> rank(Kind::List);
  return rank(Kind::List) <=> rank(b.list_tail().kind());
}

}  // namespace

std::strong_ordering operator<=>(const Term& a, const Term& b) noexcept {
  const Kind ka = a.kind(), kb = b.kind();
  const bool na = ka == Kind::Integer || ka == Kind::Float;
  const bool nb = kb == Kind::Integer || kb == Kind::Float;
  if (na && nb) return compare_numbers(a, b);
  if (ka != kb) return rank(ka) <=> rank(kb);
  switch (ka) {
    case Kind::Atom: return a.atom_value() <=> b.atom_value();
    case Kind::Reference: return a.ref() <=> b.ref();
    case Kind::Fun: return compare_fun(a, b);
    case Kind::Port: return a.port() <=> b.port();
    case Kind::Pid: return a.pid() <=> b.pid();
    case Kind::Tuple: {
      const auto x = a.tuple_elements(), y = b.tuple_elements();
      if (x.size() != y.size()) return x.size() <=> y.size();
      for (std::size_t i = 0; i < x.size(); ++i)
        if (auto c = x[i] <=> y[i]; c != 0) return c;
      return so::equal;
    }
    case Kind::Map: {
      const auto x = a.map_entries(), y = b.map_entries();
      if (x.size() != y.size()) return x.size() <=> y.size();
      for (std::size_t i = 0; i < x.size(); ++i)
        if (auto c = x[i].first <=> y[i].first; c != 0) return c;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (auto c = x[i].second <=> y[i].second; c != 0) return c;
      return so::equal;
    }
    case Kind::Nil: return so::equal;
    case Kind::List: return compare_lists(a, b);
    case Kind::Binary: return compare_bits(a, b);
    case Kind::Integer: case Kind::Float: break;
  }
  return so::equal;
}

bool operator==(const Term& a, const Term& b) noexcept {
  if (a.rep_ != b.rep_) return false;
  switch (a.rep_) {
    case Term::Rep::Nil: return true;
    case Term::Rep::Atom: return a.atom_ == b.atom_;
    case Term::Rep::Small: return a.small_ == b.small_;
    case Term::Rep::Float:
      return a.float_ == b.float_ && std::signbit(a.float_) == std::signbit(b.float_);
    case Term::Rep::Boxed: break;
  }
  if (a.box_ == b.box_) return true;
  if (a.box_->kind != b.box_->kind) return false;
  return (a <=> b) == 0;
}

bool erlang_equal(const Term& a, const Term& b) noexcept {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() == b.is_float()) return a == b || (a.is_float() && a.float_value() == b.float_value());
    const Term& i = a.is_float() ? b : a;
    const double d = a.is_float() ? a.float_value() : b.float_value();
    if (i.is_small_integer()) {
      const auto v = i.small_integer();
      return std::trunc(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
             static_cast<std::int64_t>(d) == v;
    }
    return i.big_integer().compare(d) == 0;
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Tuple: {
      const auto x = a.tuple_elements(), y = b.tuple_elements();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!erlang_equal(x[i], y[i])) return false;
      return true;
    }
    case Kind::List: {
      const auto x = a.list_elements(), y = b.list_elements();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!erlang_equal(x[i], y[i])) return false;
      return erlang_equal(a.list_tail(), b.list_tail());
    }
    case Kind::Map: {  // keys match exactly, values arithmetically
      const auto x = a.map_entries(), y = b.map_entries();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!(x[i].first == y[i].first) || !erlang_equal(x[i].second, y[i].second)) return false;
      return true;
    }
    default: return a == b;
  }
}

namespace {
inline std::size_t mix(std::size_t h, std::size_t v) {
  return (h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)));
}
}  // namespace

std::size_t Term::hash() const noexcept {
  switch (rep_) {
    case Rep::Nil: return 0x6e696c;
    case Rep::Atom: return atom_->hash;
    case Rep::Small: return std::hash<std::int64_t>{}(small_) * 0x9e3779b97f4a7c15ull;
    case Rep::Float: {
      std::uint64_t bits;
      std::memcpy(&bits, &float_, sizeof bits);
      return mix(0xf10a7, bits);
    }
    case Rep::Boxed: break;
  }
  std::size_t h = static_cast<std::size_t>(box_->kind) * 0x100000001b3ull;
  switch (box_->kind) {
    case Kind::Integer: return mix(h, static_cast<const BigBox*>(box_)->value.hash());
    case Kind::Tuple:
      for (const auto& e : tuple_elements()) h = mix(h, e.hash());
      return h;
    case Kind::List:
      for (const auto& e : list_elements()) h = mix(h, e.hash());
      return mix(h, list_tail().hash());
    case Kind::Map:
      for (const auto& [k, v] : map_entries()) h = mix(mix(h, k.hash()), v.hash());
      return h;
    case Kind::Binary:
      return mix(mix(h, std::hash<std::string_view>{}(binary_view())), bit_size());
    case Kind::Pid: {
      const auto& p = pid();
      return mix(mix(mix(h, p.node.hash()), p.id), (std::size_t{p.serial} << 32) | p.creation);
    }
    case Kind::Port: return mix(mix(mix(h, port().node.hash()), port().id), port().creation);
    case Kind::Reference: {
      const auto& r = ref();
      h = mix(mix(h, r.node.hash()), r.creation);
      for (auto w : r.words()) h = mix(h, w);
      return h;
    }
    case Kind::Fun:
      if (is_export_fun()) {
        const auto& f = export_fun();
        return mix(mix(mix(h, f.module.hash()), f.function.hash()), f.arity);
      }
      return mix(h, std::hash<std::string_view>{}(std::string_view(
                        reinterpret_cast<const char*>(local_fun().encoded.data()), local_fun().encoded.size())));
    default: return h;
  }
}

}  // namespace hypha
