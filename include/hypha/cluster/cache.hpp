// A cache shared by the nodes of a cluster (Nebulex's job, with its known failures fixed):
// keys and values are terms, in one of three modes.
//
//   cache::start(node, {.name = Atom("downloads"), .mode = cache::Mode::Replicated});  // or [[cache]]
//   cache::Cache c(Atom("downloads"));
//   c.put(rt, Term::binary("k"), Term(42), std::chrono::seconds(30));   // ok once 2 nodes hold it
//   std::optional<Term> v = c.get(rt, Term::binary("k")).value();       // 42, from any member
//
// - local: this node only. replicated: every member holds every entry (reads are local, no
//   message). partitioned: a key's partition (one of 256, by a hash of the key) is held by the
//   first `replicas` members of its place on a consistent-hash ring (owner, then replicas): a
//   member joining or leaving moves about 1/N of the keys; reads on a node that holds the key are
//   local, others go to its owner.
// - Members are the nodes that run a cache of that name and mode (a node whose cache has another
//   mode or replica count is refused, and says so in its log).
// - A write goes to the key's owner, which orders it (a hybrid-logical-clock version, ties by
//   node name: last writer wins per key, the same on every replica), applies it and sends it to
//   the key's other holders. It is acknowledged once two nodes hold it (when two exist) and the
//   calling node, when it holds the key, is one of them (read-your-writes): so an acknowledged
//   write survives the death of any one node. Conditional writes (put_new, replace, take, incr)
//   are decided by the owner, one at a time per key.
// - Writes are never blocked by a node joining: a joining node receives writes at once, gets the
//   entries it should hold from the others (anti-entropy: per-partition digests are compared,
//   then only the differing keys' versions, then only the newer entries go), and takes its part
//   of reads and ownership when that is done. A node that no longer holds a partition (after a
//   join) hands it to the nodes that do, then forgets it. Replicas that diverged (a partition
//   of the network, a lost message) converge the same way: every member compares digests with
//   one other every anti-entropy interval.
// - TTLs: an entry expires at an absolute time (the writer's clock plus the TTL), on every replica
//   at once; expired entries are removed by a sweep every 100 ms (the size shrinks without reads).
// - max_entries per node: above it the least recently used entry here is evicted (here only).
// - A delete leaves a tombstone for `tombstone` (10 min): a replica away for longer than that
//   may bring back a key deleted meanwhile.
// - A caller whose owner dies mid-call asks the key's next holder: an incr can then count twice.
// - A node that stops cleanly (cluster::stop) hands its partitions to their next holders first.
//
// Input from peers is untrusted: a malformed message is logged (rate-limited) and dropped.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/otp/supervisor.hpp"
#include "hypha/process/process.hpp"
#include "hypha/term/result.hpp"

namespace hypha::cache {

enum class Mode { Local, Replicated, Partitioned };
std::string_view mode_name(Mode m);
std::optional<Mode> parse_mode(std::string_view s);

struct Options {
  Atom name;
  Mode mode = Mode::Replicated;
  unsigned replicas = 2;                 // partitioned: copies of each key (owner included)
  std::size_t max_entries = 1'000'000;   // per node; 0: no limit
  std::chrono::milliseconds anti_entropy{1000};
  std::chrono::milliseconds tombstone{600'000};
  std::chrono::milliseconds timeout{5000};  // a call to another node
};

// The process of a cache on every member node: registered as hypha_cache_<name>.
Atom process_name(Atom cache);

ChildSpec spec(Node& node, const Options& opts);
Result<Pid, Term> start(Node& node, const Options& opts);

using Ttl = std::optional<std::chrono::milliseconds>;  // none: never expires

struct Stats {
  std::uint64_t hits = 0, misses = 0, writes = 0, evictions = 0, expirations = 0;
  std::size_t local_size = 0;  // live entries this node holds
  std::size_t members = 0;     // member nodes, this one included
  bool ready = false;          // this node has its entries and serves its part
  // #{hits => .., misses => .., writes => .., evictions => .., expirations => .., local_size => ..,
  //   members => .., ready => ..}
  Term to_term() const;
};

// A cache as seen from this node. Errors are terms: {no_such_cache, Name}, timeout, or the
// reason a call to the owner failed. Every call has a blocking form (Runtime&, not from inside a
// process) and a coroutine form (Process&).
class Cache {
 public:
  explicit Cache(Atom name) : name_(name) {}
  Atom name() const noexcept { return name_; }

  Task<Result<std::optional<Term>, Term>> get(Process& self, Term key) const;
  Task<Result<bool, Term>> has_key(Process& self, Term key) const;
  // nullopt: no such key; else its TTL left (none: it never expires).
  Task<Result<std::optional<Ttl>, Term>> ttl(Process& self, Term key) const;
  Task<Result<bool, Term>> put(Process& self, Term key, Term value, Ttl ttl = {}) const;
  // True when the key was absent and is now set.
  Task<Result<bool, Term>> put_new(Process& self, Term key, Term value, Ttl ttl = {}) const;
  // True when the key was present and now has `value` (and `ttl` if given; else its old expiry).
  Task<Result<bool, Term>> replace(Process& self, Term key, Term value, Ttl ttl = {}) const;
  // The value removed, or nullopt when there was none.
  Task<Result<std::optional<Term>, Term>> take(Process& self, Term key) const;
  Task<Result<bool, Term>> del(Process& self, Term key) const;
  // Adds `by` to the integer under key (`initial` when absent); the new value. A value that is
  // not an integer: the error not_an_integer.
  Task<Result<std::int64_t, Term>> incr(Process& self, Term key, std::int64_t by = 1, std::int64_t initial = 0) const;
  // Sets the key's TTL (none: never expires); false when there is no such key.
  Task<Result<bool, Term>> expire(Process& self, Term key, Ttl ttl) const;
  Task<Result<std::map<Term, Term>, Term>> get_all(Process& self, std::vector<Term> keys) const;
  Task<Result<bool, Term>> put_all(Process& self, std::vector<std::pair<Term, Term>> entries, Ttl ttl = {}) const;
  // The number of keys in the whole cache (partitioned: each member counts the partitions it owns).
  Task<Result<std::size_t, Term>> size(Process& self) const;

  Result<std::optional<Term>, Term> get(Runtime& rt, const Term& key) const;
  Result<bool, Term> has_key(Runtime& rt, const Term& key) const;
  Result<std::optional<Ttl>, Term> ttl(Runtime& rt, const Term& key) const;
  Result<bool, Term> put(Runtime& rt, const Term& key, const Term& value, Ttl ttl = {}) const;
  Result<bool, Term> put_new(Runtime& rt, const Term& key, const Term& value, Ttl ttl = {}) const;
  Result<bool, Term> replace(Runtime& rt, const Term& key, const Term& value, Ttl ttl = {}) const;
  Result<std::optional<Term>, Term> take(Runtime& rt, const Term& key) const;
  Result<bool, Term> del(Runtime& rt, const Term& key) const;
  Result<std::int64_t, Term> incr(Runtime& rt, const Term& key, std::int64_t by = 1, std::int64_t initial = 0) const;
  Result<bool, Term> expire(Runtime& rt, const Term& key, Ttl ttl) const;
  Result<std::map<Term, Term>, Term> get_all(Runtime& rt, const std::vector<Term>& keys) const;
  Result<bool, Term> put_all(Runtime& rt, const std::vector<std::pair<Term, Term>>& entries, Ttl ttl = {}) const;
  Result<std::size_t, Term> size(Runtime& rt) const;

  // What this node holds and counted (no message): live entries here, hits and misses of the
  // reads made here, writes made here, evictions and expirations of this replica.
  std::optional<Stats> stats(const Runtime& rt) const;
  std::size_t local_size(const Runtime& rt) const;

 private:
  Atom name_;
};

// hypha_cache:get/2 ({ok, Value} | not_found), put/3 (ok), put/4 (Opts: a TTL in ms, or
// [{ttl, Ms}] or #{ttl => Ms}), delete/2 (ok), put_new/3,4 and replace/3,4 (true | false),
// take/2 ({ok, V} | not_found), incr/2,3 ({ok, N}), has_key/2, ttl/2 (Ms | infinity |
// not_found), expire/3, size/1, local_size/1, stats/1 (the map above). The cache is an atom or a
// binary; one this node does not run: {error, {no_such_cache, Name}}.
void add_exports(Exports& exports, Node& node);

}  // namespace hypha::cache
