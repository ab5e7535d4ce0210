// Character classes of Erlang's atom syntax (io_lib:quote_atom, erl_scan), shared by the printer
// and the parser so that what one prints unquoted the other reads as an atom. Private.
#pragma once

namespace hypha::detail {

// A character that may start an unquoted atom: a-z and the Latin-1 lowercase letters.
inline bool is_atom_start(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 0xDF && c <= 0xFF && c != 0xF7); }

// A character that may continue an unquoted atom.
inline bool is_atom_char(char32_t c) {
  return is_atom_start(c) || (c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7) ||
         (c >= '0' && c <= '9') || c == '_' || c == '@';
}

}  // namespace hypha::detail
