// Erlang-syntax printing, as io_lib:format("~tp") prints on one line (OTP 25, default
// printable_range latin1).
#include <charconv>
#include <cmath>
#include <cstring>
#include <ostream>
#include <vector>

#include "hypha/term/text.hpp"
#include "syntax.hpp"
#include "utf8.hpp"

namespace hypha {

namespace {

bool is_reserved_word(std::string_view s) {
  static constexpr std::string_view kWords[] = {
      "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
      "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
      "rem", "try", "when", "xor"};
  for (auto w : kWords)
    if (w == s) return true;
  return false;
}

using detail::is_atom_char;
using detail::is_atom_start;

bool atom_needs_quotes(std::string_view text) {
  if (text.empty() || is_reserved_word(text)) return true;
  std::size_t i = 0;
  char32_t c;
  detail::utf8_next(text, i, c);
  if (!is_atom_start(c)) return true;
  while (i < text.size()) {
    detail::utf8_next(text, i, c);
    if (!is_atom_char(c)) return true;
  }
  return false;
}

// One character inside quotes, as io_lib:write_string escapes it (unicode_as_unicode).
void string_char(std::string& out, char32_t c, char quote) {
  if (c == static_cast<char32_t>(quote) || c == '\\') {
    out.push_back('\\');
    out.push_back(static_cast<char>(c));
    return;
  }
  if ((c >= ' ' && c <= '~') || c >= 0xA0) {
    detail::utf8_append(out, c);
    return;
  }
  switch (c) {
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '\v': out += "\\v"; return;
    case '\b': out += "\\b"; return;
    case '\f': out += "\\f"; return;
    case 27: out += "\\e"; return;
    case 127: out += "\\d"; return;
    default: break;
  }
  out.push_back('\\');
  out.push_back(static_cast<char>('0' + ((c >> 6) & 7)));
  out.push_back(static_cast<char>('0' + ((c >> 3) & 7)));
  out.push_back(static_cast<char>('0' + (c & 7)));
}

void write_atom(std::string& out, Atom a) {
  const auto text = a.text();
  if (!atom_needs_quotes(text)) {
    out += text;
    return;
  }
  out.push_back('\'');
  std::size_t i = 0;
  char32_t c;
  while (i < text.size() && detail::utf8_next(text, i, c)) string_char(out, c, '\'');
  out.push_back('\'');
}

bool printable_latin1(char32_t c) {
  return (c >= 32 && c <= 126) || (c >= 0xA0 && c <= 0xFF) || c == '\n' || c == '\r' || c == '\t' ||
         c == '\v' || c == '\b' || c == '\f' || c == 27;
}

bool is_printable_list(const Term& t) {
  if (!t.list_tail().is_nil()) return false;
  for (const auto& e : t.list_elements()) {
    if (!e.is_small_integer()) return false;
    const auto v = e.small_integer();
    if (v < 0 || v > 0xFF || !printable_latin1(static_cast<char32_t>(v))) return false;
  }
  return true;
}

void write_float(std::string& out, double d) {
  // Shortest round-trip digits, laid out the way OTP's float_to_list(F, [short]) lays them out
  // (fixed notation only where it is not longer than scientific, and only within 2^53).
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  const bool neg = !sci.empty() && sci[0] == '-';
  if (neg) sci.remove_prefix(1);
  const auto e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits.push_back(c);
  int sci_exp = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+' ? 1 : 0), sci.data() + sci.size(), sci_exp);
  const int olength = static_cast<int>(digits.size());
  const int exp = sci_exp - (olength - 1);  // value = digits * 10^exp
  std::uint64_t mantissa = 0;
  for (char c : digits) mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');

  int lower, upper;
  if (olength == 1) { lower = -4; upper = 2; }
  else if (sci_exp >= 10) { lower = -(olength + 2); upper = 2; }
  else { lower = -(olength + 2); upper = 1; }
  bool fixed = lower <= exp && exp <= upper;
  if (fixed && ((mantissa >= (1ull << 53) && exp == 0) || (mantissa > (1ull << 52) / 5 && exp == 1) ||
                (mantissa > (1ull << 51) / 25 && exp == 2)))
    fixed = false;

  if (neg) out.push_back('-');
  if (fixed) {
    const int whole = olength + exp;
    if (exp >= 0) {
      out += digits;
      out.append(static_cast<std::size_t>(exp), '0');
      out += ".0";
    } else if (whole > 0) {
      out.append(digits, 0, static_cast<std::size_t>(whole));
      out.push_back('.');
      out.append(digits, static_cast<std::size_t>(whole));
    } else {
      out += "0.";
      out.append(static_cast<std::size_t>(-whole), '0');
      out += digits;
    }
    return;
  }
  out.push_back(digits[0]);
  out.push_back('.');
  if (olength > 1) out.append(digits, 1);
  else out.push_back('0');
  out.push_back('e');
  out += std::to_string(sci_exp);
}

void write_binary(std::string& out, const Term& t, const PrintOptions& o, long long depth) {
  const auto bytes = t.binary_bytes();
  const unsigned bits = t.bits_in_last_byte();
  if (bytes.empty()) {
    out += "<<>>";
    return;
  }
  if (bits == 8 && o.strings) {
    const std::string_view s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    // Valid UTF-8 whose characters are all printable: a string, marked /utf8 when not all ASCII.
    std::vector<char32_t> chars;
    std::size_t i = 0;
    char32_t c;
    bool utf8_ok = true, printable = true;
    while (i < s.size()) {
      if (!detail::utf8_next(s, i, c)) { utf8_ok = false; break; }
      if (!printable_latin1(c)) { printable = false; break; }
      chars.push_back(c);
    }
    if (!utf8_ok) {  // OTP then tries the bytes as Latin-1
      chars.clear();
      printable = true;
      for (auto b : bytes) {
        if (!printable_latin1(b)) { printable = false; break; }
        chars.push_back(b);
      }
    }
    if (printable) {
      out += "<<\"";
      for (auto ch : chars) string_char(out, ch, '"');
      out += utf8_ok && chars.size() != bytes.size() ? "\"/utf8>>" : "\">>";
      return;
    }
  }
  // The bytes, as io_lib:write writes them: the depth counts down per byte.
  out += "<<";
  const std::size_t full = bits == 8 ? bytes.size() : bytes.size() - 1;
  char num[8];
  long long d = depth;
  for (std::size_t i = 0; i < bytes.size(); ++i, --d) {
    if (i) out.push_back(',');
    if (d == 1) {
      out += "...";
      break;
    }
    const unsigned v = i < full ? bytes[i] : static_cast<unsigned>(bytes.back() >> (8 - bits));
    auto r = std::to_chars(num, num + sizeof num, v);
    out.append(num, r.ptr);
    if (i == full) out += ":" + std::to_string(bits);
  }
  out += ">>";
}

void print(std::string& out, const Term& t, const PrintOptions& o, long long depth);

// io_lib:write's depth rule: each element gets one level less than the one before it, and the
// rest is "..." once the count reaches 1 (`depth` is this list's; negative: no limit).
void write_list(std::string& out, const Term& t, const PrintOptions& o, long long depth) {
  if (o.strings && is_printable_list(t)) {  // a string prints whole, as io_lib_pretty does
    out.push_back('"');
    for (const auto& e : t.list_elements()) string_char(out, static_cast<char32_t>(e.small_integer()), '"');
    out.push_back('"');
    return;
  }
  if (depth == 1) {
    out += "[...]";
    return;
  }
  out.push_back('[');
  const auto elems = t.list_elements();
  long long d = depth - 1;
  print(out, elems[0], o, d);
  std::size_t i = 1;
  for (; i < elems.size(); ++i) {
    if (d == 1) {
      out += "|...";
      break;
    }
    out.push_back(',');
    print(out, elems[i], o, --d);
  }
  if (i == elems.size() && !t.list_tail().is_nil()) {
    out.push_back('|');
    if (d == 1)
      out += "...";
    else
      print(out, t.list_tail(), o, d - 1);
  }
  out.push_back(']');
}

void write_tuple(std::string& out, const Term& t, const PrintOptions& o, long long depth) {
  const auto elems = t.tuple_elements();
  if (elems.empty()) {
    out += "{}";
    return;
  }
  if (depth == 1) {
    out += "{...}";
    return;
  }
  out.push_back('{');
  long long d = depth - 1;
  print(out, elems[0], o, d);
  for (std::size_t i = 1; i < elems.size(); ++i) {
    if (d == 1) {
      out += ",...";
      break;
    }
    out.push_back(',');
    print(out, elems[i], o, --d);
  }
  out.push_back('}');
}

// Every key and value one level down; the entries after the first count down as list elements.
void write_map(std::string& out, const Term& t, const PrintOptions& o, long long depth) {
  if (depth == 1 || t.map_entries().empty()) {
    out += "#{}";
    return;
  }
  out += "#{";
  const long long d0 = depth - 1;
  long long d = d0;
  bool first = true;
  for (const auto& [k, v] : t.map_entries()) {
    if (!first && d == 1) {
      out += ",...";
      break;
    }
    if (!first) {
      out.push_back(',');
      --d;
    }
    first = false;
    print(out, k, o, d0);
    out += " => ";
    print(out, v, o, d0);
  }
  out.push_back('}');
}

void print(std::string& out, const Term& t, const PrintOptions& o, long long depth) {
  if (depth == 0) {
    out += "...";
    return;
  }
  switch (t.kind()) {
    case Kind::Integer:
      if (t.is_small_integer()) {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, t.small_integer());
        out.append(buf, r.ptr);
      } else {
        out += t.big_integer().to_string();
      }
      return;
    case Kind::Float: write_float(out, t.float_value()); return;
    case Kind::Atom: write_atom(out, t.atom_value()); return;
    case Kind::Nil: out += "[]"; return;
    case Kind::List: write_list(out, t, o, depth); return;
    case Kind::Tuple: write_tuple(out, t, o, depth); return;
    case Kind::Map: write_map(out, t, o, depth); return;
    case Kind::Binary: write_binary(out, t, o, depth); return;
    case Kind::Pid: {
      const Pid& p = t.pid();
      out.push_back('<');
      write_atom(out, p.node);
      out += "." + std::to_string(p.id) + "." + std::to_string(p.serial) + ">";
      return;
    }
    case Kind::Reference: {
      const Ref& r = t.ref();
      out += "#Ref<";
      write_atom(out, r.node);
      for (std::size_t i = r.len; i-- > 0;) out += "." + std::to_string(r.ids[i]);
      out.push_back('>');
      return;
    }
    case Kind::Port: {
      out += "#Port<";
      write_atom(out, t.port().node);
      out += "." + std::to_string(t.port().id) + ">";
      return;
    }
    case Kind::Fun:
      if (t.is_export_fun()) {
        const ExportFun& f = t.export_fun();
        out += "fun ";
        write_atom(out, f.module);
        out.push_back(':');
        write_atom(out, f.function);
        out += "/" + std::to_string(f.arity);
      } else {
        const LocalFun& f = t.local_fun();
        out += "#Fun<";
        write_atom(out, f.module);
        out += "." + std::to_string(f.index) + "." + std::to_string(f.old_uniq) + ">";
      }
      return;
  }
}

}  // namespace

void format_term(std::string& out, const Term& t) { print(out, t, PrintOptions{}, -1); }
void format_term(std::string& out, const Term& t, const PrintOptions& opts) { print(out, t, opts, opts.depth); }

std::string Term::to_string() const {
  std::string out;
  format_term(out, *this);
  return out;
}

std::ostream& operator<<(std::ostream& os, const Term& t) { return os << t.to_string(); }

}  // namespace hypha
