// Atom: an interned Erlang atom. Its text is UTF-8 of at most 255 characters (code points), as
// in OTP. Atoms live in one process-wide table and are never freed, as in the BEAM; an Atom is a
// pointer into that table, so copying and == are one machine word, and it is valid forever.
//
// Thread-safety: creating and reading atoms is safe from any thread without external locking.
// The table holds at most kMaxAtoms atoms (the BEAM default); past that, creation fails rather
// than grow without bound. Atoms made from outside input (make(), decoding) stop kReserve below
// that limit, and those an authenticated peer's name needs stop half as far below: however full
// other nodes fill the table, the program's own atoms (the constructor) still get made, and a
// peer that proved the cookie can still connect.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hypha/term/result.hpp"

namespace hypha {

namespace detail {
struct AtomEntry;
}

class Atom {
 public:
  static constexpr std::size_t kMaxChars = 255;
  static constexpr std::size_t kMaxAtoms = 1u << 20;
  static constexpr std::size_t kReserve = 1u << 16;

  // Who asks for a new atom, which decides how close to kMaxAtoms it may be made.
  enum class Source {
    Input,  // text from outside the program: stops at kMaxAtoms - kReserve
    Peer,   // the name of a node that proved the cookie: stops at kMaxAtoms - kReserve / 2
    Program // the program's own text: may use the whole table
  };

  // The empty atom ''.
  Atom() noexcept;

  // Interns `utf8` (Source::Program). Throws std::invalid_argument when it is not valid UTF-8, is
  // longer than 255 characters, or the table is full: use make() for text from outside.
  explicit Atom(std::string_view utf8);

  // Interns `utf8`, or says why it cannot be an atom (not UTF-8, too long, "atom table full").
  static Result<Atom, std::string> make(std::string_view utf8, Source source = Source::Input);

  // The atom if it exists already; never creates one (binary_to_existing_atom).
  static Result<Atom, std::string> existing(std::string_view utf8);

  // Interns Latin-1 text (legacy ATOM_EXT), converting it to UTF-8.
  static Result<Atom, std::string> from_latin1(std::string_view latin1);

  std::string_view text() const noexcept;
  // Number of characters (code points), not bytes.
  std::size_t length() const noexcept;
  // True when every character is below 256, so the atom can be written in Latin-1.
  bool is_latin1() const noexcept;
  // Stable for the life of the process; the order of creation.
  std::uint32_t index() const noexcept;
  std::size_t hash() const noexcept;

  // Atoms in the table right now (lock-free).
  static std::size_t count() noexcept;
  // How many atoms `source` may make in all (the table size it stops at).
  static constexpr std::size_t limit(Source source) noexcept {
    return source == Source::Input ? kMaxAtoms - kReserve
           : source == Source::Peer ? kMaxAtoms - kReserve / 2
                                    : kMaxAtoms;
  }

  friend bool operator==(Atom a, Atom b) noexcept { return a.e_ == b.e_; }
  // Erlang orders atoms by their text, code point by code point (= UTF-8 byte order).
  friend std::strong_ordering operator<=>(Atom a, Atom b) noexcept;

 private:
  explicit Atom(const detail::AtomEntry* e) noexcept : e_(e) {}
  friend class Term;
  friend struct AtomAccess;
  const detail::AtomEntry* e_;
};

// Common atoms, created once.
namespace atoms {
Atom ok();
Atom error();
Atom true_();
Atom false_();
Atom undefined();
Atom nonode_nohost();
}  // namespace atoms

}  // namespace hypha

template <>
struct std::hash<hypha::Atom> {
  std::size_t operator()(hypha::Atom a) const noexcept { return a.hash(); }
};
