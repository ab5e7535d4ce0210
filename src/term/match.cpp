#include "hypha/term/match.hpp"

#include <vector>

namespace hypha::pattern::detail {

namespace {
constexpr std::size_t kElements = 8;  // per tuple, list or map
constexpr std::size_t kDepth = 4;
constexpr std::size_t kBytes = 32;    // of a binary
constexpr std::size_t kChars = 120;

// A copy of `t` cut to a few elements per level and a few levels, so that printing a huge term
// (what a hostile peer sends) costs little: what is left out shows as '...'.
Term cut(const Term& t, std::size_t depth) {
  const Term more = Term::atom("...");
  if (t.is_tuple() || t.is_list() || t.is_map()) {
    if (depth == 0) return more;
  }
  if (t.is_tuple()) {
    std::vector<Term> out;
    for (const Term& e : t.tuple_elements()) {
      if (out.size() == kElements) {
        out.push_back(more);
        break;
      }
      out.push_back(cut(e, depth - 1));
    }
    return Term::tuple(std::move(out));
  }
  if (t.is_list()) {
    std::vector<Term> out;
    const auto items = t.list_elements();
    for (const Term& e : items) {
      if (out.size() == kElements) break;
      out.push_back(cut(e, depth - 1));
    }
    if (items.size() > kElements) {
      out.push_back(more);
      return Term::list(std::move(out));
    }
    return Term::list(std::move(out), cut(t.list_tail(), depth - 1));
  }
  if (t.is_map()) {
    std::vector<MapEntry> out;
    for (const MapEntry& e : t.map_entries()) {
      if (out.size() == kElements) {
        out.push_back({more, more});
        break;
      }
      out.push_back({cut(e.first, depth - 1), cut(e.second, depth - 1)});
    }
    return Term::map(std::move(out));
  }
  if (t.is_bitstring() && t.binary_bytes().size() > kBytes) return Term::binary(t.binary_bytes().first(kBytes));
  return t;
}
}  // namespace

std::string shorten(const Term& t) {
  std::string s = cut(t, kDepth).to_string();
  if (s.size() > kChars) s = s.substr(0, kChars - 3) + "...";
  return s;
}

}  // namespace hypha::pattern::detail
