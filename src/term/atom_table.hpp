// The process-wide atom table (private to the term library).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hypha/term/atom.hpp"

namespace hypha {
namespace detail {

struct AtomEntry {
  std::string text;
  std::size_t hash = 0;
  std::uint32_t index = 0;
  std::uint32_t length = 0;  // code points
  bool latin1 = true;
};

enum class InternStatus { Found, Created, Invalid, TableFull, Missing };

// Looks up (and, when allowed, creates) the atom for valid UTF-8 `text`; a new atom is made only
// while the table holds fewer than Atom::limit(source). Sets *status.
const AtomEntry* intern(std::string_view text, bool may_create, InternStatus* status,
                        Atom::Source source = Atom::Source::Input);

}  // namespace detail

struct AtomAccess {
  static Atom from(const detail::AtomEntry* e) noexcept { return Atom(e); }
  static const detail::AtomEntry* entry(Atom a) noexcept { return a.e_; }
};

}  // namespace hypha
