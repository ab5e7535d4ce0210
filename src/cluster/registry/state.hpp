// The cluster registry's replicated state (private to the cluster library), without processes or
// messages, so that its rules are tested on their own.
//
// Every member (a registry process) is the only writer of the entries it registered: its
// "origin". A replica holds, per origin, that origin's entries and how far into its changes it
// has seen (a counter); the changes of an origin arrive in its order (deltas: the counter range
// they cover), or as the whole of its entries (a snapshot, when the replica joins, falls behind,
// or misses a delta). A member that goes is forgotten with its entries; when it comes back it
// sends a snapshot again. So the state is a map of per-origin registers, merged by the union of
// the origins: a delta-state CRDT whose tombstones live only in the writer's log of changes not
// yet sent to every member (see Registry in registry.cpp), never in the replicas.
//
// Names held by more than one origin (registered at once on two nodes, or on both sides of a
// partition) resolve the same way everywhere: the older registration wins (hybrid logical clock
// time, then the origin's node name, then the origin pid). The losing origin is told (a Conflict)
// and removes its entry; every replica answers with the winner meanwhile.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hypha/base/hlc.hpp"
#include "hypha/term/term.hpp"

namespace hypha::registry::detail {

struct Entry {
  Pid pid;
  Term meta;
  HlcTime ts;  // when it was registered (update_meta keeps it)
  friend bool operator==(const Entry&, const Entry&) = default;
};

// One change of an origin: the name's entry put, or (no entry) removed.
struct Change {
  Term name;
  std::optional<Entry> entry;
};

// An entry of ours that an older registration elsewhere beat.
struct Conflict {
  Term name;
  Pid loser, winner;
};

class State {
 public:
  explicit State(Pid self);

  const Pid& self() const noexcept { return self_; }

  // --- reads (of the winners)
  const Entry* winner(const Term& name) const;
  const Pid* winner_origin(const Term& name) const;
  std::size_t size() const noexcept { return holders_.size(); }
  std::vector<Term> names_of(const Pid& pid) const;
  template <class F>  // f(name, entry) for every name's winner
  void for_each(F&& f) const {
    for (const auto& [name, hs] : holders_) f(name, *entry_of(hs.front(), name));
  }

  // --- our own entries
  const Entry* own(const Term& name) const;
  std::uint64_t counter() const noexcept { return origins_.at(self_).counter; }
  // Puts or removes our entry for `name`, as the next change in the log; the conflicts it makes
  // (none for a name we may take) go to `out`.
  void put_own(const Term& name, Entry e);
  bool remove_own(const Term& name);
  std::vector<std::pair<Term, Entry>> own_entries() const;
  // The names our entries give `pid` (winning or not).
  std::vector<Term> own_names_of(const Pid& pid) const;
  // Our changes after `since`, or nullopt when the log was cut before it (send a snapshot).
  std::optional<std::vector<Change>> changes_since(std::uint64_t since) const;
  // Forgets the logged changes up to `upto` (every member has been sent them).
  void truncate_log(std::uint64_t upto);
  std::size_t log_size() const noexcept { return log_.size(); }

  // --- other origins
  // The changes (from, to] of `origin`; false, and nothing applied, when `from` is not where
  // this replica is with it (a gap: ask for a snapshot).
  bool apply(const Pid& origin, std::uint64_t from, std::uint64_t to, const std::vector<Change>& changes,
             std::vector<Conflict>& out);
  // All of `origin`'s entries as of `counter`.
  void replace(const Pid& origin, std::uint64_t counter, const std::vector<std::pair<Term, Entry>>& entries,
               std::vector<Conflict>& out);
  // `origin` is gone: its entries leave with it.
  void forget(const Pid& origin);
  std::optional<std::uint64_t> version(const Pid& origin) const;
  std::vector<Pid> origins() const;

 private:
  struct Origin {
    std::uint64_t counter = 0;
    std::unordered_map<Term, Entry> names;
  };
  // Orders two holders of one name: true when `a`'s registration is older (wins).
  bool older(const Pid& a, const Pid& b, const Term& name) const;
  const Entry* entry_of(const Pid& origin, const Term& name) const;
  // The names `pid` holds: as the winner, or (own_only) in our own entries, winning or not.
  std::vector<Term> names_where(const Pid& pid, bool own_only) const;
  void add_holder(const Pid& origin, const Term& name);
  void drop_holder(const Pid& origin, const Term& name);
  // Sets (or removes) `origin`'s entry for `name` and keeps the indexes.
  void set(const Pid& origin, const Term& name, const std::optional<Entry>& e);
  void check_conflict(const Term& name, std::vector<Conflict>& out) const;

  Pid self_;
  std::map<Pid, Origin> origins_;
  // Per name, its holders (origins), the winner first.
  std::unordered_map<Term, std::vector<Pid>> holders_;
  // Per registered pid, its names (of any holder).
  std::map<Pid, std::unordered_set<Term>> by_pid_;
  // Our changes not yet sent to every member: (counter, change), in order.
  std::vector<std::pair<std::uint64_t, Change>> log_;
  std::uint64_t log_start_ = 0;  // changes up to this one are no longer in the log
};

}  // namespace hypha::registry::detail
