// Term: one Erlang value. Every kind an Erlang term can have is here: integers of any size,
// floats, atoms, binaries and bitstrings, lists (proper and improper), tuples, maps, pids,
// references, ports, and funs (export funs by name; local funs as opaque bytes that round-trip).
//
// A Term is immutable and cheap to copy: small values (nil, atoms, 64-bit integers, floats) are
// stored inline, everything else lives in shared storage with an atomic reference count. A Term
// may be shared between threads freely; nothing inside it ever changes.
//
// Equality (==) is Erlang's exact equality (=:=): 1 and 1.0 differ. Ordering (<=>) is Erlang's
// term order: number < atom < reference < fun < port < pid < tuple < map < nil < list < bitstring,
// with numbers compared by value; where an integer and a float are equal by value (1 == 1.0) the
// integer sorts first, so the order is total and consistent with ==, as map keys need.
// erlang_equal() is Erlang's arithmetic equality (==).
//
// Reading a term as the wrong kind (tuple_size() of an atom, ...) is a programmer error and throws
// BadTermAccess; check kind() or is_*() first, or use the conversions in convert.hpp, which return
// errors instead.
#pragma once

#include <array>
#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hypha/term/atom.hpp"
#include "hypha/term/bigint.hpp"

namespace hypha {

// In Erlang's term order.
enum class Kind : std::uint8_t {
  Integer, Float, Atom, Reference, Fun, Port, Pid, Tuple, Map, Nil, List, Binary
};
std::string_view kind_name(Kind k) noexcept;

struct Pid {
  Atom node;
  std::uint32_t id = 0;
  std::uint32_t serial = 0;
  std::uint32_t creation = 0;
  friend bool operator==(const Pid&, const Pid&) = default;
  friend std::strong_ordering operator<=>(const Pid& a, const Pid& b) noexcept;
};

struct Port {
  Atom node;
  std::uint64_t id = 0;
  std::uint32_t creation = 0;
  friend bool operator==(const Port&, const Port&) = default;
  friend std::strong_ordering operator<=>(const Port& a, const Port& b) noexcept;
};

struct Ref {
  static constexpr std::size_t kMaxWords = 5;
  Atom node;
  std::uint32_t creation = 0;
  std::uint8_t len = 0;  // words used in `ids`, 1..5 (OTP uses 3, and 4 or 5 for some)
  std::array<std::uint32_t, kMaxWords> ids{};
  std::span<const std::uint32_t> words() const noexcept { return {ids.data(), len}; }
  friend bool operator==(const Ref& a, const Ref& b) noexcept;
  friend std::strong_ordering operator<=>(const Ref& a, const Ref& b) noexcept;
};

// fun Module:Function/Arity.
struct ExportFun {
  Atom module;
  Atom function;
  std::uint8_t arity = 0;
  friend bool operator==(const ExportFun&, const ExportFun&) = default;
  friend auto operator<=>(const ExportFun&, const ExportFun&) = default;
};

// A fun defined in Erlang code (NEW_FUN_EXT). It can only run on a node that has its module's
// code, so hypha keeps it as the exact bytes it came in (`encoded`: everything after the tag) and
// reads out what it needs to print and compare it.
struct LocalFun {
  Atom module;
  std::uint32_t arity = 0;
  std::uint32_t index = 0;
  std::uint32_t old_uniq = 0;
  std::array<std::uint8_t, 16> uniq{};
  std::uint32_t num_free = 0;
  std::vector<std::uint8_t> encoded;
  friend bool operator==(const LocalFun& a, const LocalFun& b) noexcept { return a.encoded == b.encoded; }
  friend std::strong_ordering operator<=>(const LocalFun& a, const LocalFun& b) noexcept;
};

class BadTermAccess : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class Term;
using MapEntry = std::pair<Term, Term>;

namespace detail {
// The header shared by every out-of-line term value; the rest is private to the term library.
struct Box {
  std::atomic<std::uint32_t> refs{1};
  Kind kind;
  explicit Box(Kind k) noexcept : kind(k) {}
};
void destroy_box(Box* b) noexcept;
struct AtomEntry;
}  // namespace detail

class Term {
 public:
  // The empty list [] (nil).
  Term() noexcept : rep_(Rep::Nil), small_(0) {}
  Term(const Term& o) noexcept : rep_(o.rep_), small_(o.small_) { retain(); }
  Term(Term&& o) noexcept : rep_(o.rep_), small_(o.small_) { o.rep_ = Rep::Nil; }
  Term& operator=(const Term& o) noexcept {
    Term(o).swap(*this);
    return *this;
  }
  Term& operator=(Term&& o) noexcept {
    Term(std::move(o)).swap(*this);
    return *this;
  }
  ~Term() { release(); }
  void swap(Term& o) noexcept {
    std::swap(rep_, o.rep_);
    std::swap(small_, o.small_);
  }

  // Integers of every C++ width; bool becomes the atom true/false.
  Term(int v) noexcept : rep_(Rep::Small), small_(v) {}
  Term(long v) noexcept : rep_(Rep::Small), small_(v) {}
  Term(long long v) noexcept : rep_(Rep::Small), small_(v) {}
  Term(unsigned v) noexcept : rep_(Rep::Small), small_(v) {}
  Term(unsigned long v) : Term(static_cast<unsigned long long>(v)) {}
  Term(unsigned long long v);
  Term(const BigInt& v);
  Term(double v);  // throws std::invalid_argument for NaN and infinities: Erlang has none
  Term(bool v) noexcept;
  Term(Atom a) noexcept : rep_(Rep::Atom), atom_(entry_of(a)) {}
  Term(const Pid& p);
  Term(const Port& p);
  Term(const Ref& r);
  Term(const ExportFun& f);
  Term(LocalFun f);
  // A C string is ambiguous (atom? binary? charlist?): say which with atom(), binary() or string().
  Term(const char*) = delete;

  static Term nil() noexcept { return Term(); }
  static Term atom(std::string_view utf8) { return Term(Atom(utf8)); }
  static Term tuple(std::initializer_list<Term> elems);
  static Term tuple(std::span<const Term> elems);
  static Term tuple(std::vector<Term>&& elems);
  // [e1, e2, ... | tail]. A list tail is flattened, so equal lists are equal whatever way they
  // were built. An empty `elems` gives `tail` itself.
  static Term list(std::initializer_list<Term> elems);
  static Term list(std::vector<Term> elems, Term tail = Term());
  // A charlist: the Unicode code points of `utf8` (what Erlang calls a string). Throws
  // std::invalid_argument on malformed UTF-8.
  static Term string(std::string_view utf8);
  // A map; for duplicate keys the last one wins, as in #{k => 1, k => 2}.
  static Term map(std::initializer_list<MapEntry> entries);
  static Term map(std::vector<MapEntry> entries);
  static Term binary(std::span<const std::uint8_t> bytes);
  static Term binary(std::string_view bytes);
  // A bitstring whose last byte holds `bits_in_last_byte` (1..8) significant high-order bits;
  // the unused low-order bits are cleared.
  static Term bitstring(std::span<const std::uint8_t> bytes, unsigned bits_in_last_byte);

  Kind kind() const noexcept;
  bool is_integer() const noexcept { return kind() == Kind::Integer; }
  bool is_small_integer() const noexcept { return rep_ == Rep::Small; }
  bool is_float() const noexcept { return rep_ == Rep::Float; }
  bool is_number() const noexcept { return is_integer() || is_float(); }
  bool is_atom() const noexcept { return rep_ == Rep::Atom; }
  bool is_atom(Atom a) const noexcept { return rep_ == Rep::Atom && atom_ == entry_of(a); }
  bool is_nil() const noexcept { return rep_ == Rep::Nil; }
  bool is_list() const noexcept { return kind() == Kind::List; }  // non-empty list
  bool is_tuple() const noexcept { return kind() == Kind::Tuple; }
  bool is_map() const noexcept { return kind() == Kind::Map; }
  bool is_binary() const noexcept;  // whole bytes
  bool is_bitstring() const noexcept { return kind() == Kind::Binary; }
  bool is_pid() const noexcept { return kind() == Kind::Pid; }
  bool is_ref() const noexcept { return kind() == Kind::Reference; }
  bool is_port() const noexcept { return kind() == Kind::Port; }
  bool is_fun() const noexcept { return kind() == Kind::Fun; }
  bool is_export_fun() const noexcept;
  bool is_local_fun() const noexcept;
  bool is_proper_list() const noexcept;  // nil, or a list whose tail is nil

  // Integers.
  std::int64_t small_integer() const;       // only when is_small_integer()
  BigInt big_integer() const;               // any integer, as a BigInt
  double float_value() const;
  Atom atom_value() const;

  // Tuples.
  std::size_t tuple_size() const;
  std::span<const Term> tuple_elements() const;
  const Term& operator[](std::size_t i) const;  // tuple element, bounds-checked

  // Lists: elements before the tail, and the tail (nil for a proper list). Nil has no elements.
  std::span<const Term> list_elements() const;
  const Term& list_tail() const;

  // Maps, in key order.
  std::size_t map_size() const;
  std::span<const MapEntry> map_entries() const;
  const Term* map_find(const Term& key) const;  // nullptr when absent

  // Binaries and bitstrings. bit_size() = 8 * bytes - unused bits in the last byte.
  std::span<const std::uint8_t> binary_bytes() const;
  std::string_view binary_view() const;
  std::size_t bit_size() const;
  unsigned bits_in_last_byte() const;  // 8 for a binary

  const Pid& pid() const;
  const Port& port() const;
  const Ref& ref() const;
  const ExportFun& export_fun() const;
  const LocalFun& local_fun() const;

  friend bool operator==(const Term& a, const Term& b) noexcept;
  friend std::strong_ordering operator<=>(const Term& a, const Term& b) noexcept;
  std::size_t hash() const noexcept;

  // Erlang syntax, as io_lib:format("~tp") prints it, on one line.
  std::string to_string() const;

 private:
  enum class Rep : std::uint8_t { Nil, Atom, Small, Float, Boxed };
  friend struct TermAccess;

  explicit Term(detail::Box* b) noexcept : rep_(Rep::Boxed), box_(b) {}
  static const detail::AtomEntry* entry_of(Atom a) noexcept { return a.e_; }
  void retain() const noexcept {
    if (rep_ == Rep::Boxed) box_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (rep_ == Rep::Boxed && box_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
      detail::destroy_box(box_);
  }
  [[noreturn]] void bad_access(Kind wanted) const;

  Rep rep_;
  union {
    std::int64_t small_;
    double float_;
    const detail::AtomEntry* atom_;
    detail::Box* box_;
  };
};

// Erlang's == : numbers compare by value (1 == 1.0), everything else as =:=.
bool erlang_equal(const Term& a, const Term& b) noexcept;

std::ostream& operator<<(std::ostream& os, const Term& t);

namespace literals {
// "ok"_atom is Term::atom("ok"); "ok"_a is Atom("ok").
inline Term operator""_atom(const char* s, std::size_t n) { return Term::atom(std::string_view(s, n)); }
inline Atom operator""_a(const char* s, std::size_t n) { return Atom(std::string_view(s, n)); }
}  // namespace literals

}  // namespace hypha

template <>
struct std::hash<hypha::Term> {
  std::size_t operator()(const hypha::Term& t) const noexcept { return t.hash(); }
};
