// io_lib:format/2 as OTP 25's io_lib_format does it (see text.hpp for what differs).
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "hypha/term/text.hpp"
#include "utf8.hpp"

namespace hypha {

namespace {

enum class Adjust { Right, Left };

constexpr long long kMaxField = 1 << 20;  // the largest field width or precision accepted

struct Spec {
  std::optional<long long> width;
  Adjust adjust = Adjust::Right;
  std::optional<long long> precision;
  char32_t pad = U' ';
  bool unicode = false;  // the t modifier
  bool strings = true;   // cleared by the l modifier
};

std::size_t chars_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The first `n` characters of UTF-8 text.
std::string_view first_chars(std::string_view s, std::size_t n) {
  std::size_t i = 0;
  for (; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n-- == 0) break;
  return s.substr(0, i);
}

std::string chars(char32_t c, long long n) {
  std::string one, out;
  detail::utf8_append(one, c);
  for (long long i = 0; i < n; ++i) out += one;
  return out;
}

void adjust(std::string& out, std::string_view data, const std::string& padding, Adjust a) {
  if (a == Adjust::Left) {
    out += data;
    out += padding;
  } else {
    out += padding;
    out += data;
  }
}

// io_lib_format:term/5: `t` in a field of F characters, precision P; too long becomes asterisks.
void term_field(std::string& out, std::string_view t, std::optional<long long> f, Adjust a,
                std::optional<long long> p0, char32_t pad) {
  if (!f && !p0) {
    out += t;
    return;
  }
  if (!f) f = p0;
  const auto len = static_cast<long long>(chars_length(t));
  const long long p = std::min(len, p0 ? std::min(*p0, *f) : *f);
  if (len > p)
    adjust(out, chars(U'*', p), chars(pad, *f - p), a);
  else
    adjust(out, t, chars(pad, *f - len), a);
}

// io_lib_format:string/6: a field of F, at most P characters of `s`.
bool string_field(std::string& out, std::string_view s, const Spec& sp) {
  const auto n = static_cast<long long>(chars_length(s));
  auto field = [&](long long f, Adjust a) {
    if (n > f)
      out += first_chars(s, static_cast<std::size_t>(f));
    else
      adjust(out, s, chars(sp.pad, f - n), a);
  };
  if (!sp.width && !sp.precision) {
    out += s;
  } else if (!sp.precision) {
    field(*sp.width, sp.adjust);
  } else if (!sp.width) {
    field(*sp.precision, Adjust::Left);
  } else {
    const long long f = *sp.width, p = *sp.precision;
    if (f < p) return false;
    if (f == p) {
      field(f, sp.adjust);
    } else {
      std::string inner(n > p ? first_chars(s, static_cast<std::size_t>(p)) : s);
      if (n < p) inner += chars(sp.pad, p - n);
      adjust(out, inner, chars(sp.pad, f - p), sp.adjust);
    }
  }
  return true;
}

// float_data/1: the 21 significant digits of printf's %.20e and the exponent + 1.
std::pair<std::string, int> float_data(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.20e", d < 0 ? -d : d);
  std::string digits;
  const char* p = buf;
  for (; *p && *p != 'e'; ++p)
    if (*p >= '0' && *p <= '9') digits.push_back(*p);
  return {digits, std::atoi(p + 1) + 1};
}

// Rounds a digit string to `keep` digits, half up as io_lib_format's float_man; true on carry
// out of the first digit (the digits are then all zeros). Pads with zeros when short.
bool round_digits(std::string& ds, std::size_t keep) {
  if (ds.size() <= keep) {
    ds.append(keep - ds.size(), '0');
    return false;
  }
  const bool up = ds[keep] >= '5';
  ds.resize(keep);
  if (!up) return false;
  for (std::size_t i = keep; i-- > 0;) {
    if (ds[i] != '9') {
      ++ds[i];
      return false;
    }
    ds[i] = '0';
  }
  return true;
}

std::string sign_of(double d) { return std::signbit(d) ? "-" : ""; }

// ~e with P significant digits: d.ddde+X
std::string float_e(double d, long long p) {
  auto [ds, e] = float_data(d);
  const bool carry = round_digits(ds, static_cast<std::size_t>(p));
  std::string out = sign_of(d);
  if (carry) {
    out += "1." + ds.substr(1);
  } else {
    out += ds.substr(0, 1) + "." + ds.substr(1);
    --e;
  }
  out += e >= 0 ? "e+" + std::to_string(e) : "e" + std::to_string(e);
  return out;
}

// ~f with P decimals.
std::string float_f(double d, long long p) {
  auto [ds, e] = float_data(d);
  if (e <= 0) {
    ds.insert(0, static_cast<std::size_t>(-e + 1), '0');
    e = 1;
  }
  const bool carry = round_digits(ds, static_cast<std::size_t>(e + p));
  std::string out = sign_of(d);
  if (carry) out += "1";
  out += ds.substr(0, static_cast<std::size_t>(e)) + "." + ds.substr(static_cast<std::size_t>(e));
  return out;
}

// ~g: ~f for 0.1 <= |d| < 10^4 with P significant digits, else ~e.
std::string float_g(double d, long long p) {
  const double a = std::fabs(d);
  std::optional<int> e;  // none: 10000 and above
  if (a < 1.0e-1) e = -2;
  else if (a < 1.0) e = -1;
  else if (a < 1.0e1) e = 0;
  else if (a < 1.0e2) e = 1;
  else if (a < 1.0e3) e = 2;
  else if (a < 1.0e4) e = 3;
  if ((p <= 1 && e == -1) || (e && p - 1 > *e && *e >= -1)) return float_f(d, p - 1 - *e);
  return float_e(d, p <= 1 ? 2 : p);
}

std::string integer_text(const Term& t, int base, bool lowercase) {
  std::string s;
  if (t.is_small_integer()) {
    char buf[72];
    auto r = std::to_chars(buf, buf + sizeof buf, t.small_integer(), base);  // lowercase letters
    s.assign(buf, r.ptr);
  } else {
    s = t.big_integer().to_string(base);  // uppercase letters
  }
  for (char& c : s) c = static_cast<char>(lowercase ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// ~s's argument as text: an atom, or chardata; without the t modifier every character must be
// Latin-1 and a binary's bytes are characters (as io_lib does it).
bool string_arg(std::string& out, const Term& a, bool unicode) {
  if (a.is_atom()) {
    out += a.atom_value().text();
    return true;
  }
  if (unicode) return append_chardata(out, a);
  if (a.is_binary()) {
    if (a.bits_in_last_byte() != 8) return false;
    std::string scratch;
    out += detail::latin1_as_utf8(a.binary_view(), scratch);
    return true;
  }
  if (a.is_integer()) {
    if (!a.is_small_integer() || a.small_integer() < 0 || a.small_integer() > 255) return false;
    detail::utf8_append(out, static_cast<char32_t>(a.small_integer()));
    return true;
  }
  if (a.is_nil()) return true;
  if (!a.is_list() || !a.is_proper_list()) return false;
  for (const Term& e : a.list_elements())
    if (!string_arg(out, e, false)) return false;
  return true;
}

}  // namespace

Result<std::string, std::string> io_lib_format(std::string_view f, std::span<const Term> args) {
  std::string out;
  std::size_t next = 0, i = 0;
  auto fail = [&](const std::string& why) -> Result<std::string, std::string> {
    return unexpected("io_lib:format: " + why);
  };
  auto take = [&]() -> const Term* { return next < args.size() ? &args[next++] : nullptr; };
  // A field value: digits, or * taking an integer argument; nullopt when absent. Widths come
  // from other nodes' io requests, so they are bounded (a width of 10^12 is refused, not padded).
  auto field_value = [&](std::optional<long long>& v) -> bool {
    if (i < f.size() && f[i] == '*') {
      ++i;
      const Term* a = take();
      if (!a || !a->is_small_integer() || std::llabs(a->small_integer()) > kMaxField) return false;
      v = a->small_integer();
      return true;
    }
    if (i < f.size() && f[i] >= '0' && f[i] <= '9') {
      long long n = 0;
      while (i < f.size() && f[i] >= '0' && f[i] <= '9') n = std::min<long long>(n * 10 + (f[i++] - '0'), kMaxField + 1);
      if (n > kMaxField) return false;
      v = n;
    }
    return true;
  };
  while (i < f.size()) {
    if (f[i] != '~') {
      out.push_back(f[i++]);
      continue;
    }
    const std::size_t at = i++;
    const auto where = [&] { return "in \"" + std::string(f.substr(at, i - at + 1)) + "\" at byte " + std::to_string(at); };
    Spec sp;
    bool minus = false;
    if (i < f.size() && f[i] == '-') {
      minus = true;
      ++i;
    }
    if (!field_value(sp.width)) return fail("bad field width " + where());
    if (sp.width && (minus ? -*sp.width : *sp.width) < 0) sp.adjust = Adjust::Left;
    if (sp.width) sp.width = std::llabs(*sp.width);
    if (i < f.size() && f[i] == '.') {
      ++i;
      if (!field_value(sp.precision)) return fail("bad precision " + where());
      if (i < f.size() && f[i] == '.') {
        ++i;
        if (i < f.size() && f[i] == '*') {
          ++i;
          const Term* a = take();
          if (!a || !a->is_small_integer() || !detail::is_unicode_scalar(a->small_integer()))
            return fail("bad pad character " + where());
          sp.pad = static_cast<char32_t>(a->small_integer());
        } else {
          char32_t c;
          if (i >= f.size() || !detail::utf8_next(f, i, c)) return fail("missing pad character " + where());
          sp.pad = c;
        }
      }
    }
    for (; i < f.size() && (f[i] == 't' || f[i] == 'l'); ++i) {
      if (f[i] == 't') sp.unicode = true;
      else sp.strings = false;
    }
    if (i >= f.size()) return fail("format ends inside a control sequence at byte " + std::to_string(at));
    const char c = f[i];
    const Term* a = nullptr;
    const Term* b = nullptr;
    if (c != '~' && c != 'n') {
      a = take();
      if (!a) return fail("no argument left for " + where());
      if (c == 'W' || c == 'P' || c == 'x' || c == 'X') {
        b = take();
        if (!b) return fail("no second argument left for " + where());
      }
    }
    // Made only on failure: printing the argument may be costly.
    const auto bad_arg = [&] { return "bad argument " + (a ? a->to_string().substr(0, 100) : std::string()) + " for " + where(); };
    switch (c) {
      case 'n': out += sp.width ? chars(U'\n', *sp.width) : std::string("\n"); break;
      case '~': case 'c': {
        char32_t ch = U'~';
        if (c == 'c') {
          if (!a->is_small_integer() || a->small_integer() < 0) return fail(bad_arg());
          ch = static_cast<char32_t>(a->small_integer());
          if (!sp.unicode) ch &= 0xFF;
          if (!detail::is_unicode_scalar(ch)) return fail(bad_arg());
        }
        if (!sp.width && !sp.precision) {
          out += chars(ch, 1);
        } else if (!sp.precision) {
          out += chars(ch, *sp.width);
        } else if (!sp.width) {
          out += chars(ch, *sp.precision);
        } else {
          if (*sp.width < *sp.precision) return fail(bad_arg());
          adjust(out, chars(ch, *sp.precision), chars(sp.pad, *sp.width - *sp.precision), sp.adjust);
        }
        break;
      }
      case 'e': case 'f': case 'g': {
        if (!a->is_float()) return fail(bad_arg());
        const double d = a->float_value();
        const long long p = sp.precision.value_or(6);
        if ((c == 'e' && p < 2) || (c != 'e' && p < 1)) return fail("precision too small " + where());
        const std::string text = c == 'e' ? float_e(d, p) : c == 'f' ? float_f(d, p) : float_g(d, p);
        term_field(out, text, sp.width, sp.adjust, sp.width, sp.pad);
        break;
      }
      case 's': {
        std::string s;
        if (!string_arg(s, *a, sp.unicode)) return fail(bad_arg());
        if (!string_field(out, s, sp)) return fail("field width below precision " + where());
        break;
      }
      case 'w': case 'p': case 'W': case 'P': {
        long long depth = -1;
        if (b) {
          if (!b->is_small_integer()) return fail("bad depth for " + where());
          depth = b->small_integer();
        }
        const bool pretty = c == 'p' || c == 'P';
        std::string text;
        format_term(text, *a, PrintOptions{.depth = depth, .strings = pretty && sp.strings});
        if (pretty)
          out += text;  // ~p's field width is a line length and its precision an indentation
        else
          term_field(out, text, sp.width, sp.adjust, sp.precision, sp.pad);
        break;
      }
      case 'b': case 'B': case 'x': case 'X': case '+': case '#': {
        if (!a->is_integer()) return fail(bad_arg());
        const long long base = sp.precision.value_or(10);
        if (base < 2 || base > 36) return fail("base out of range " + where());
        const bool lower = c == 'b' || c == 'x' || c == '+';
        std::string digits = integer_text(*a, static_cast<int>(base), lower);
        std::string prefix;
        if (c == 'x' || c == 'X') {
          if (!string_arg(prefix, *b, true)) return fail("bad prefix for " + where());
        } else if (c == '+' || c == '#') {
          prefix = std::to_string(base) + "#";
        }
        if (digits.front() == '-') digits = "-" + prefix + digits.substr(1);
        else digits = prefix + digits;
        term_field(out, digits, sp.width, sp.adjust, std::nullopt, sp.pad);
        break;
      }
      case 'i': break;
      default: return fail("unknown control " + where());
    }
    ++i;
  }
  if (next != args.size()) return fail(std::to_string(args.size() - next) + " argument(s) left over");
  return out;
}

}  // namespace hypha
