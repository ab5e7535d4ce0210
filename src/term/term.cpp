// Construction and access of terms, and the destruction of their shared storage.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "atom_table.hpp"
#include "box.hpp"
#include "utf8.hpp"

namespace hypha {

std::string_view kind_name(Kind k) noexcept {
  switch (k) {
    case Kind::Integer: return "integer";
    case Kind::Float: return "float";
    case Kind::Atom: return "atom";
    case Kind::Reference: return "reference";
    case Kind::Fun: return "fun";
    case Kind::Port: return "port";
    case Kind::Pid: return "pid";
    case Kind::Tuple: return "tuple";
    case Kind::Map: return "map";
    case Kind::Nil: return "nil";
    case Kind::List: return "list";
    case Kind::Binary: return "bitstring";
  }
  return "?";
}

namespace detail {
void destroy_box(Box* b) noexcept {
  switch (b->kind) {
    case Kind::Integer: delete static_cast<BigBox*>(b); return;
    case Kind::Tuple: {
      auto* t = static_cast<TupleBox*>(b);
      for (std::uint32_t i = 0; i < t->arity; ++i) t->elems()[i].~Term();
      t->~TupleBox();
      ::operator delete(t);
      return;
    }
    case Kind::Binary: BinaryBox::destroy(static_cast<BinaryBox*>(b)); return;
    case Kind::List: delete static_cast<ListBox*>(b); return;
    case Kind::Map: delete static_cast<MapBox*>(b); return;
    case Kind::Pid: delete static_cast<PidBox*>(b); return;
    case Kind::Port: delete static_cast<PortBox*>(b); return;
    case Kind::Reference: delete static_cast<RefBox*>(b); return;
    case Kind::Fun: delete static_cast<FunBox*>(b); return;
    case Kind::Float: case Kind::Atom: case Kind::Nil: break;  // never boxed
  }
}
}  // namespace detail

using namespace detail;

Term::Term(unsigned long long v) : rep_(Rep::Small), small_(0) {
  if (v <= static_cast<unsigned long long>(INT64_MAX)) {
    small_ = static_cast<std::int64_t>(v);
  } else {
    rep_ = Rep::Boxed;
    box_ = new BigBox(BigInt::from_uint64(v));
  }
}

Term::Term(const BigInt& v) : rep_(Rep::Small), small_(0) {
  if (auto s = v.to_int64()) {
    small_ = *s;
  } else {
    rep_ = Rep::Boxed;
    box_ = new BigBox(v);
  }
}

Term::Term(double v) : rep_(Rep::Float), float_(v) {
  if (!std::isfinite(v)) throw std::invalid_argument("Erlang floats are finite: no NaN or infinity");
}

Term::Term(bool v) noexcept : rep_(Rep::Atom), atom_(entry_of(v ? atoms::true_() : atoms::false_())) {}
Term::Term(const Pid& p) : rep_(Rep::Boxed), box_(new PidBox(p)) {}
Term::Term(const Port& p) : rep_(Rep::Boxed), box_(new PortBox(p)) {}
namespace {
const Ref& checked(const Ref& r) {
  if (r.len < 1 || r.len > Ref::kMaxWords) throw std::invalid_argument("a reference has 1 to 5 words");
  return r;
}
}  // namespace

Term::Term(const Ref& r) : rep_(Rep::Boxed), box_(new RefBox(checked(r))) {}
Term::Term(const ExportFun& f) : rep_(Rep::Boxed), box_(new FunBox(f)) {}
Term::Term(LocalFun f) : rep_(Rep::Boxed), box_(new FunBox(std::move(f))) {}

Term Term::tuple(std::initializer_list<Term> elems) {
  return tuple(std::span<const Term>(elems.begin(), elems.size()));
}

Term Term::tuple(std::span<const Term> elems) {
  Term* slots;
  Term t = TermAccess::make_tuple(elems.size(), slots);
  std::copy(elems.begin(), elems.end(), slots);
  return t;
}

Term Term::tuple(std::vector<Term>&& elems) {
  Term* slots;
  Term t = TermAccess::make_tuple(elems.size(), slots);
  std::move(elems.begin(), elems.end(), slots);
  return t;
}

Term Term::list(std::initializer_list<Term> elems) {
  return list(std::vector<Term>(elems));
}

Term Term::list(std::vector<Term> elems, Term tail) {
  if (elems.empty()) return tail;
  if (tail.kind() == Kind::List) {
    const auto* lb = static_cast<const ListBox*>(tail.box_);
    elems.insert(elems.end(), lb->elems.begin(), lb->elems.end());
    Term rest = lb->tail;
    tail = std::move(rest);
  }
  return Term(new ListBox(std::move(elems), std::move(tail)));
}

Term Term::string(std::string_view utf8) {
  std::vector<Term> cps;
  cps.reserve(utf8.size());
  std::size_t i = 0;
  char32_t cp;
  while (i < utf8.size()) {
    if (!utf8_next(utf8, i, cp)) throw std::invalid_argument("Term::string: malformed UTF-8");
    cps.emplace_back(static_cast<std::int64_t>(cp));
  }
  return list(std::move(cps));
}

Term Term::map(std::initializer_list<MapEntry> entries) {
  return map(std::vector<MapEntry>(entries));
}

Term Term::map(std::vector<MapEntry> entries) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const MapEntry& a, const MapEntry& b) { return a.first < b.first; });
  // Keep the last of each run of equal keys.
  std::vector<MapEntry> unique;
  unique.reserve(entries.size());
  for (auto& e : entries) {
    if (!unique.empty() && unique.back().first == e.first)
      unique.back() = std::move(e);
    else
      unique.push_back(std::move(e));
  }
  return TermAccess::make_sorted_map(std::move(unique));
}

Term Term::binary(std::span<const std::uint8_t> bytes) {
  std::uint8_t* data;
  Term t = TermAccess::make_binary(bytes.size(), 8, data);
  if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
  return t;
}

Term Term::binary(std::string_view bytes) {
  return binary(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                              bytes.size()));
}

Term Term::bitstring(std::span<const std::uint8_t> bytes, unsigned bits_in_last_byte) {
  if (bits_in_last_byte < 1 || bits_in_last_byte > 8 || (bytes.empty() && bits_in_last_byte != 8))
    throw std::invalid_argument("Term::bitstring: bits in the last byte must be 1..8");
  std::uint8_t* data;
  Term t = TermAccess::make_binary(bytes.size(), bits_in_last_byte, data);
  if (!bytes.empty()) {
    std::memcpy(data, bytes.data(), bytes.size());
    data[bytes.size() - 1] &= static_cast<std::uint8_t>(0xFF << (8 - bits_in_last_byte));
  }
  return t;
}

Kind Term::kind() const noexcept {
  switch (rep_) {
    case Rep::Nil: return Kind::Nil;
    case Rep::Atom: return Kind::Atom;
    case Rep::Small: return Kind::Integer;
    case Rep::Float: return Kind::Float;
    case Rep::Boxed: break;
  }
  return box_->kind;
}

bool Term::is_binary() const noexcept {
  return kind() == Kind::Binary && static_cast<const BinaryBox*>(box_)->bits_in_last == 8;
}
bool Term::is_export_fun() const noexcept {
  return kind() == Kind::Fun && static_cast<const FunBox*>(box_)->value.index() == 0;
}
bool Term::is_local_fun() const noexcept {
  return kind() == Kind::Fun && static_cast<const FunBox*>(box_)->value.index() == 1;
}
bool Term::is_proper_list() const noexcept {
  if (rep_ == Rep::Nil) return true;
  return kind() == Kind::List && static_cast<const ListBox*>(box_)->tail.is_nil();
}

void Term::bad_access(Kind wanted) const {
  std::string shown = to_string();
  if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
  throw BadTermAccess("expected " + std::string(kind_name(wanted)) + ", found " +
                      std::string(kind_name(kind())) + " " + shown);
}

std::int64_t Term::small_integer() const {
  if (rep_ != Rep::Small) bad_access(Kind::Integer);
  return small_;
}

BigInt Term::big_integer() const {
  if (rep_ == Rep::Small) return BigInt(small_);
  if (kind() != Kind::Integer) bad_access(Kind::Integer);
  return static_cast<const BigBox*>(box_)->value;
}

double Term::float_value() const {
  if (rep_ != Rep::Float) bad_access(Kind::Float);
  return float_;
}

Atom Term::atom_value() const {
  if (rep_ != Rep::Atom) bad_access(Kind::Atom);
  return AtomAccess::from(atom_);
}

std::size_t Term::tuple_size() const { return tuple_elements().size(); }

std::span<const Term> Term::tuple_elements() const {
  if (kind() != Kind::Tuple) bad_access(Kind::Tuple);
  auto* t = static_cast<TupleBox*>(box_);
  return {t->elems(), t->arity};
}

const Term& Term::operator[](std::size_t i) const {
  auto elems = tuple_elements();
  if (i >= elems.size())
    throw BadTermAccess("tuple index " + std::to_string(i) + " out of range for a tuple of " +
                        std::to_string(elems.size()));
  return elems[i];
}

std::span<const Term> Term::list_elements() const {
  if (rep_ == Rep::Nil) return {};
  if (kind() != Kind::List) bad_access(Kind::List);
  return static_cast<const ListBox*>(box_)->elems;
}

const Term& Term::list_tail() const {
  if (rep_ == Rep::Nil) return *this;
  if (kind() != Kind::List) bad_access(Kind::List);
  return static_cast<const ListBox*>(box_)->tail;
}

std::size_t Term::map_size() const { return map_entries().size(); }

std::span<const MapEntry> Term::map_entries() const {
  if (kind() != Kind::Map) bad_access(Kind::Map);
  return static_cast<const MapBox*>(box_)->entries;
}

const Term* Term::map_find(const Term& key) const {
  auto entries = map_entries();
  auto it = std::lower_bound(entries.begin(), entries.end(), key,
                             [](const MapEntry& e, const Term& k) { return e.first < k; });
  return it != entries.end() && it->first == key ? &it->second : nullptr;
}

std::span<const std::uint8_t> Term::binary_bytes() const {
  if (kind() != Kind::Binary) bad_access(Kind::Binary);
  auto* b = static_cast<BinaryBox*>(box_);
  return {b->data(), b->size};
}

std::string_view Term::binary_view() const {
  auto bytes = binary_bytes();
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::size_t Term::bit_size() const {
  auto bytes = binary_bytes();
  if (bytes.empty()) return 0;
  return bytes.size() * 8 - (8 - static_cast<const BinaryBox*>(box_)->bits_in_last);
}

unsigned Term::bits_in_last_byte() const {
  if (kind() != Kind::Binary) bad_access(Kind::Binary);
  return static_cast<const BinaryBox*>(box_)->bits_in_last;
}

const Pid& Term::pid() const {
  if (kind() != Kind::Pid) bad_access(Kind::Pid);
  return static_cast<const PidBox*>(box_)->value;
}
const Port& Term::port() const {
  if (kind() != Kind::Port) bad_access(Kind::Port);
  return static_cast<const PortBox*>(box_)->value;
}
const Ref& Term::ref() const {
  if (kind() != Kind::Reference) bad_access(Kind::Reference);
  return static_cast<const RefBox*>(box_)->value;
}
const ExportFun& Term::export_fun() const {
  if (!is_export_fun()) bad_access(Kind::Fun);
  return std::get<0>(static_cast<const FunBox*>(box_)->value);
}
const LocalFun& Term::local_fun() const {
  if (!is_local_fun()) bad_access(Kind::Fun);
  return std::get<1>(static_cast<const FunBox*>(box_)->value);
}

}  // namespace hypha
