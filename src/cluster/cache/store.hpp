// One node's replica of a cache (private to the cluster library), without processes or
// messages, so that its rules are tested on their own.
//
// - Keys fall into kPartitions partitions by a hash of their external format (the same on every
//   node); a partition is what is placed on the ring, compared by digest and handed over.
// - Per key, the last writer wins: the greater Version (hybrid logical clock time, then the
//   writing node's name), the same on every replica whatever the order writes arrive in.
// - A delete leaves a tombstone (the key and the version of the delete) so an older write
//   arriving late cannot bring the key back; tombstones go `tombstone_ms` after they were made.
// - Live entries past their expiry time are gone for reads at once and removed by sweep()
//   (active expiry: the size shrinks without reads). Expiry times are absolute, so every replica
//   expires a key at the same time.
// - Above max_entries live entries, the least recently used (read or written here) is evicted.
//   Eviction is this replica's own decision: the key stays as a ghost (its version, no value)
//   so the partition's digest still matches the replicas that keep it and anti-entropy does not
//   bring it back; a newer write replaces the ghost. Ghosts go like tombstones.
// - digest(p): a sum of one 64-bit hash per entry (key and version; tombstones and ghosts
//   included), kept as entries change: two replicas of a partition with the same entries have
//   the same digest, whatever the order they came in.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <queue>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hypha/base/hlc.hpp"
#include "hypha/term/term.hpp"

namespace hypha::cache::detail {

inline constexpr std::size_t kPartitions = 256;

std::uint64_t key_hash(const Term& key);
inline std::size_t partition_of(std::uint64_t key_hash) { return key_hash % kPartitions; }

struct Version {
  HlcTime ts;
  Atom origin;  // the node that made the write
  friend bool operator==(const Version&, const Version&) = default;
  friend bool operator<(const Version& a, const Version& b) {
    if (a.ts != b.ts) return a.ts < b.ts;
    return a.origin.text() < b.origin.text();
  }
};

enum class Kind : std::uint8_t { Live, Deleted, Evicted };

// What replicas send each other: a live entry or a tombstone (never a ghost).
struct Entry {
  Term value;                    // Live only
  Version version;
  std::uint64_t expires_ms = 0;  // wall-clock ms since the epoch; 0: never (Live only)
  Kind kind = Kind::Live;
};

struct Counters {
  std::uint64_t evictions = 0, expirations = 0;
};

class Store {
 public:
  Store(std::size_t max_entries, std::uint64_t tombstone_ms);

  // The live, unexpired entry of `key`, or null. `touch`: a use, for LRU.
  const Entry* get(const Term& key, std::uint64_t now_ms, bool touch = true);
  const Entry* get(const Term& key, std::uint64_t key_hash, std::uint64_t now_ms, bool touch);  // hash known
  // Any entry held for `key` (tombstones and ghosts too): anti-entropy compares their versions.
  const Entry* raw(const Term& key) const;
  // Merges an entry by last-writer-wins; true when it changed what this replica holds. An entry
  // already expired is not kept (it still removes an older one); a tombstone older than the
  // tombstone horizon removes an older entry but is not kept either.
  bool merge(const Term& key, const Entry& e, std::uint64_t now_ms);
  // Removes expired entries and tombstones and ghosts past their time; returns how many
  // entries expired.
  std::size_t sweep(std::uint64_t now_ms);
  // Forgets a whole partition (handed over to the nodes that hold it now).
  void drop_partition(std::size_t p);

  std::size_t live() const noexcept { return live_; }
  std::size_t live_in(std::size_t p) const { return parts_[p].live; }
  std::size_t held_in(std::size_t p) const { return parts_[p].map.size(); }
  std::uint64_t digest(std::size_t p) const { return parts_[p].digest; }
  const Counters& counters() const noexcept { return counters_; }
  // The earliest expiry time still pending (0: none), so the owner knows when to sweep.
  std::uint64_t next_expiry() const;

  template <class F>  // f(key, entry) for every entry held in p (tombstones and ghosts too)
  void for_each_in(std::size_t p, F&& f) const {
    for (const auto& [k, s] : parts_[p].map) f(k, s.e);
  }

 private:
  struct Slot {
    Entry e;
    std::list<std::pair<std::size_t, Term>>::iterator lru;  // Live only
    std::uint64_t dead_since = 0;                           // Deleted and Evicted: when it became so
  };
  struct Partition {
    std::unordered_map<Term, Slot> map;
    std::uint64_t digest = 0;
    std::size_t live = 0;
  };
  static std::uint64_t entry_hash(std::uint64_t key_hash, const Version& v);
  // Takes the slot out of the counts, the LRU and the digest (before it changes or goes).
  void unaccount(std::size_t p, std::uint64_t kh, Slot& s);
  void account(std::size_t p, std::uint64_t kh, const Term& key, Slot& s, std::uint64_t now_ms);
  void erase(std::size_t p, std::uint64_t kh, const Term& key);
  void evict_over_limit(std::uint64_t now_ms);

  std::size_t max_entries_;
  std::uint64_t tombstone_ms_;
  std::vector<Partition> parts_;
  std::size_t live_ = 0;
  // Most recently used first.
  std::list<std::pair<std::size_t, Term>> lru_;
  // (expiry, key), earliest first; stale items (the key was written again) are skipped.
  std::priority_queue<std::pair<std::uint64_t, Term>, std::vector<std::pair<std::uint64_t, Term>>,
                      std::greater<>>
      expiry_;
  // (dead_since, key) of tombstones and ghosts, oldest first; stale items skipped likewise.
  std::deque<std::pair<std::uint64_t, Term>> dead_;
  Counters counters_;
};

}  // namespace hypha::cache::detail
