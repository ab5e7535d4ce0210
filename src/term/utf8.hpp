// UTF-8 helpers shared by atoms, the printer and the parser (private to the term library).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace hypha::detail {

// Decodes the code point at s[i], advancing i. Strict: no overlong forms, no surrogates, nothing
// above U+10FFFF. Returns false (i unchanged) on malformed input.
inline bool utf8_next(std::string_view s, std::size_t& i, char32_t& cp) noexcept {
  if (i >= s.size()) return false;
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    ++i;
    return true;
  }
  std::size_t n;
  char32_t c;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) { n = 1; c = b0 & 0x1F; min = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { n = 2; c = b0 & 0x0F; min = 0x800; }
  else if ((b0 & 0xF8) == 0xF0) { n = 3; c = b0 & 0x07; min = 0x10000; }
  else return false;
  if (s.size() - i <= n) return false;
  for (std::size_t k = 1; k <= n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return false;
    c = (c << 6) | (b & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
  cp = c;
  i += n + 1;
  return true;
}

inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// `text` as UTF-8 when it is Latin-1 with bytes above 127; otherwise it is already UTF-8 and
// `scratch` is left alone. Returns a view of whichever holds the UTF-8 text.
inline std::string_view latin1_as_utf8(std::string_view text, std::string& scratch) {
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return text;
  scratch.clear();
  scratch.reserve(text.size() * 2);
  for (char c : text) utf8_append(scratch, static_cast<unsigned char>(c));
  return scratch;
}

// Number of code points, or nullopt when `s` is not valid UTF-8.
inline std::optional<std::size_t> utf8_length(std::string_view s) noexcept {
  std::size_t i = 0, n = 0;
  char32_t cp;
  while (i < s.size()) {
    if (!utf8_next(s, i, cp)) return std::nullopt;
    ++n;
  }
  return n;
}

inline bool is_unicode_scalar(long long cp) noexcept {
  return cp >= 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

}  // namespace hypha::detail
