#include "hypha/term/convert.hpp"

#include "hypha/term/match.hpp"
#include "hypha/term/text.hpp"
#include "utf8.hpp"

namespace hypha {

std::string ConversionError::message() const {
  std::string m = "expected " + expected + ", found " + found;
  if (!where.empty()) m += " (at " + where + ")";
  return m;
}

ConversionError conversion_error(std::string expected, const Term& t) {
  return ConversionError{std::move(expected), pattern::detail::shorten(t), {}};
}

ConversionError nest(ConversionError e, std::string step) {
  e.where = e.where.empty() ? std::move(step) : e.where + " of " + step;
  return e;
}

Converted<std::string> TermConverter<std::string>::from_term(const Term& t) {
  if (t.is_binary()) return std::string(t.binary_view());
  if (t.is_proper_list()) {
    std::string out;
    for (const auto& e : t.list_elements()) {
      if (!e.is_small_integer() || !detail::is_unicode_scalar(e.small_integer()))
        return unexpected(conversion_error("binary or charlist", t));
      detail::utf8_append(out, static_cast<char32_t>(e.small_integer()));
    }
    return out;
  }
  return unexpected(conversion_error("binary or charlist", t));
}

namespace {
bool append_chardata_at(std::string& out, const Term& t, int depth) {
  if (depth > 1000) return false;
  if (t.is_binary()) {
    out.append(t.binary_view());
    return true;
  }
  if (t.is_small_integer()) {
    const auto c = t.small_integer();
    if (c < 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
    detail::utf8_append(out, static_cast<char32_t>(c));
    return true;
  }
  if (t.is_nil()) return true;
  if (!t.is_list()) return false;
  for (const Term& e : t.list_elements())
    if (!append_chardata_at(out, e, depth + 1)) return false;
  return t.list_tail().is_nil() || (t.list_tail().is_binary() && append_chardata_at(out, t.list_tail(), depth + 1));
}
}  // namespace

bool append_chardata(std::string& out, const Term& t) { return append_chardata_at(out, t, 0); }

}  // namespace hypha
