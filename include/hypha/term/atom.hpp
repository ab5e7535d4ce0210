// Atom: an interned Erlang atom. Its text is UTF-8 of at most 255 characters (code points), as
// in OTP. Atoms live in one process-wide table and are never freed, as in the BEAM; an Atom is a
// pointer into that table, so copying and == are one machine word, and it is valid forever.
//
// Thread-safety: creating and reading atoms is safe from any thread without external locking.
// The table holds at most kMaxAtoms atoms (the BEAM default); past that, make() fails rather
// than grow without bound, so untrusted input cannot exhaust memory through atoms.
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

  // The empty atom ''.
  Atom() noexcept;

  // Interns `utf8`. Throws std::invalid_argument when it is not valid UTF-8, is longer than 255
  // characters, or the table is full: use make() for text that comes from outside the program.
  explicit Atom(std::string_view utf8);

  // Interns `utf8`, or says why it cannot be an atom.
  static Result<Atom, std::string> make(std::string_view utf8);

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

  // Atoms in the table right now.
  static std::size_t count() noexcept;

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
