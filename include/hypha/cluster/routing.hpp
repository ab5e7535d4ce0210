// Routing tables: which node owns a key.
//
// RangeTable maps the first byte of a bucket name to a node, as in Elixir's KV guide:
// entries "a-m" -> foo@host and "n-z" -> bar@host (a single "a" is a one-byte range). Tables may
// differ per node; the router forwards to the owner, which routes again with its own table.
//
// HashRing is consistent hashing with virtual nodes, as Riak places keys: each node owns
// `vnodes * weight` points on a 64-bit ring, a key belongs to the first point at or after its
// hash. Adding or removing one of N nodes moves about 1/N of the keys, and only to or from that
// node.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hypha/term/result.hpp"
#include "hypha/term/term.hpp"

namespace hypha {

class RangeTable {
 public:
  struct Entry {
    unsigned char first, last;  // inclusive
    Atom node;
  };
  // From (range, node) pairs: "a-m" or "a"; errors name the bad entry.
  static Result<RangeTable, std::string> parse(const std::vector<std::pair<std::string, std::string>>& entries);
  std::optional<Atom> lookup(std::string_view bucket) const;
  const std::vector<Entry>& entries() const noexcept { return entries_; }
  // [{"a-m", 'foo@host'}, ...]: how error messages and logs show the table.
  std::string describe() const;
  std::vector<Atom> nodes() const;

 private:
  std::vector<Entry> entries_;
};

class HashRing {
 public:
  explicit HashRing(unsigned vnodes = 128) : vnodes_(vnodes) {}
  void add(Atom node, unsigned weight = 1);
  void remove(Atom node);
  std::optional<Atom> lookup(std::string_view key) const;
  // The first `n` distinct nodes at or after the key's hash (fewer when the ring has fewer): a
  // key's preference list, its owner first, then its replicas (as Dynamo and Riak place copies).
  std::vector<Atom> lookup_n(std::string_view key, std::size_t n) const;
  std::size_t points() const noexcept { return ring_.size(); }
  std::vector<Atom> nodes() const;
  std::string describe() const;

 // The ring's hash (FNV-1a with a 64-bit finalizer), for callers that bucket keys the same way.
  static std::uint64_t hash(std::string_view s) noexcept;
  // Its finalizer (splitmix64's): spreads the bits of a 64-bit value.
  static std::uint64_t mix(std::uint64_t x) noexcept;

 private:
  unsigned vnodes_;
  std::map<std::uint64_t, Atom> ring_;
  std::map<Atom, unsigned> weights_;
};

}  // namespace hypha
