// The out-of-line storage of terms (private to the term library). Tuples and binaries keep their
// contents in the same allocation as their header: one allocation per value.
#pragma once

#include <new>
#include <variant>
#include <vector>

#include "block_cache.hpp"
#include "hypha/term/term.hpp"

namespace hypha::detail {

struct BigBox : Box {
  BigInt value;
  explicit BigBox(BigInt v) : Box(Kind::Integer), value(std::move(v)) {}
};

struct alignas(8) TupleBox : Box {
  std::uint32_t arity;
  explicit TupleBox(std::uint32_t n) noexcept : Box(Kind::Tuple), arity(n) {}
  Term* elems() noexcept { return reinterpret_cast<Term*>(this + 1); }
  static TupleBox* create(std::size_t n) {  // elements start as nil
    void* mem = ::operator new(sizeof(TupleBox) + n * sizeof(Term));
    auto* b = new (mem) TupleBox(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) new (&b->elems()[i]) Term();
    return b;
  }
};

struct ListBox : Box {
  std::vector<Term> elems;  // never empty
  Term tail;                // never a non-empty list
  ListBox(std::vector<Term> e, Term t) : Box(Kind::List), elems(std::move(e)), tail(std::move(t)) {}
};

struct MapBox : Box {
  std::vector<MapEntry> entries;  // sorted by key, keys unique
  explicit MapBox(std::vector<MapEntry> e) : Box(Kind::Map), entries(std::move(e)) {}
};

struct alignas(8) BinaryBox : Box {
  std::uint8_t bits_in_last;  // 1..8; 8 for a binary (and for the empty binary)
  std::size_t size;
  BinaryBox(std::size_t n, unsigned bits) noexcept
      : Box(Kind::Binary), bits_in_last(static_cast<std::uint8_t>(bits)), size(n) {}
  std::uint8_t* data() noexcept { return reinterpret_cast<std::uint8_t*>(this + 1); }
  static BinaryBox* create(std::size_t n, unsigned bits) {
    void* mem = block_alloc(sizeof(BinaryBox) + n);
    return new (mem) BinaryBox(n, bits);
  }
  static void destroy(BinaryBox* b) noexcept {
    const std::size_t bytes = sizeof(BinaryBox) + b->size;
    b->~BinaryBox();
    block_free(b, bytes);
  }
};

template <Kind K, class T>
struct ValueBox : Box {
  T value;
  explicit ValueBox(T v) : Box(K), value(std::move(v)) {}
};
using PidBox = ValueBox<Kind::Pid, Pid>;
using PortBox = ValueBox<Kind::Port, Port>;
using RefBox = ValueBox<Kind::Reference, Ref>;

struct FunBox : Box {
  std::variant<ExportFun, LocalFun> value;
  explicit FunBox(ExportFun f) : Box(Kind::Fun), value(std::move(f)) {}
  explicit FunBox(LocalFun f) : Box(Kind::Fun), value(std::move(f)) {}
};

}  // namespace hypha::detail

namespace hypha {

// Private constructors the codec uses to build terms in place.
struct TermAccess {
  static Term adopt(detail::Box* b) noexcept { return Term(b); }
  static const detail::Box* box(const Term& t) noexcept {
    return t.rep_ == Term::Rep::Boxed ? t.box_ : nullptr;
  }
  // A tuple of n nils, and where to write its elements.
  static Term make_tuple(std::size_t n, Term*& slots) {
    auto* b = detail::TupleBox::create(n);
    slots = b->elems();
    return Term(b);
  }
  static Term make_binary(std::size_t n, unsigned bits_in_last, std::uint8_t*& data) {
    auto* b = detail::BinaryBox::create(n, bits_in_last);
    data = b->data();
    return Term(b);
  }
  // `entries` must be sorted by key with no duplicates.
  static Term make_sorted_map(std::vector<MapEntry>&& entries) {
    return Term(new detail::MapBox(std::move(entries)));
  }
};

}  // namespace hypha
