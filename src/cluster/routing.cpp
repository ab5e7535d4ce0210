#include "hypha/cluster/routing.hpp"

#include <algorithm>

namespace hypha {

Result<RangeTable, std::string> RangeTable::parse(const std::vector<std::pair<std::string, std::string>>& entries) {
  RangeTable t;
  for (const auto& [range, node] : entries) {
    const bool single = range.size() == 1;
    const bool span = range.size() == 3 && range[1] == '-';
    if (!single && !span) return unexpected("routing entry \"" + range + "\": expected a byte such as \"a\" or a range such as \"a-m\"");
    const auto first = static_cast<unsigned char>(range[0]);
    const auto last = static_cast<unsigned char>(single ? range[0] : range[2]);
    if (first > last) return unexpected("routing entry \"" + range + "\": the range is empty");
    auto name = Atom::make(node);
    if (!name || node.find('@') == std::string::npos)
      return unexpected("routing entry \"" + range + "\": \"" + node + "\" is not a node name (alive@host)");
    t.entries_.push_back({first, last, *name});
  }
  return t;
}

std::optional<Atom> RangeTable::lookup(std::string_view bucket) const {
  if (bucket.empty()) return std::nullopt;
  const auto b = static_cast<unsigned char>(bucket[0]);
  for (const Entry& e : entries_)
    if (b >= e.first && b <= e.last) return e.node;
  return std::nullopt;
}

std::string RangeTable::describe() const {
  std::string out = "[";
  for (const Entry& e : entries_) {
    if (out.size() > 1) out += ", ";
    out += "{\"";
    out.push_back(static_cast<char>(e.first));
    if (e.last != e.first) {
      out.push_back('-');
      out.push_back(static_cast<char>(e.last));
    }
    out += "\", " + Term(e.node).to_string() + "}";
  }
  return out + "]";
}

std::vector<Atom> RangeTable::nodes() const {
  std::vector<Atom> out;
  for (const Entry& e : entries_)
    if (std::find(out.begin(), out.end(), e.node) == out.end()) out.push_back(e.node);
  return out;
}

// FNV-1a, then a 64-bit finalizer (splitmix64's) so that near keys land far apart.
std::uint64_t HashRing::hash(std::string_view s) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return mix(h);
}

std::uint64_t HashRing::mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

void HashRing::add(Atom node, unsigned weight) {
  remove(node);
  weights_[node] = weight;
  const std::string base(node.text());
  for (unsigned i = 0; i < vnodes_ * weight; ++i) ring_.emplace(hash(base + "#" + std::to_string(i)), node);
}

void HashRing::remove(Atom node) {
  if (weights_.erase(node) == 0) return;
  std::erase_if(ring_, [&](const auto& p) { return p.second == node; });
}

std::optional<Atom> HashRing::lookup(std::string_view key) const {
  if (ring_.empty()) return std::nullopt;
  auto it = ring_.lower_bound(hash(key));
  if (it == ring_.end()) it = ring_.begin();
  return it->second;
}

std::vector<Atom> HashRing::lookup_n(std::string_view key, std::size_t n) const {
  std::vector<Atom> out;
  n = std::min(n, weights_.size());
  if (n == 0) return out;
  auto it = ring_.lower_bound(hash(key));
  for (std::size_t seen = 0; out.size() < n && seen < ring_.size(); ++seen, ++it) {
    if (it == ring_.end()) it = ring_.begin();
    if (std::find(out.begin(), out.end(), it->second) == out.end()) out.push_back(it->second);
  }
  return out;
}

std::vector<Atom> HashRing::nodes() const {
  std::vector<Atom> out;
  for (const auto& [n, _] : weights_) out.push_back(n);
  return out;
}

std::string HashRing::describe() const {
  std::string out = "hash ring [";
  for (const auto& [n, w] : weights_) {
    if (out.back() != '[') out += ", ";
    out += Term(n).to_string() + " x" + std::to_string(w);
  }
  return out + "] (" + std::to_string(vnodes_) + " points per weight)";
}

}  // namespace hypha
