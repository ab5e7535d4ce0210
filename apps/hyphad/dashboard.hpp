// The live dashboard's feed (private to apps/hyphad; docs/apps.md "Dashboard").
//
// Every hyphad node runs a reporter process that, every second, publishes its own figures on the
// cluster's events pubsub (cluster/events.hpp) as #{kind => stats, ...}: its processes, run
// queue and memory, each link's traffic and round-trip time (an is_auth call to the peer's
// net_kernel, timed), its caches' counters; and the nodes it sees come and go as
// #{kind => node, status => up | down, peer => P}. The reporter of a node that serves the HTTP
// API also relays every event it hears (these, and the tasks' and supervisor's) to a Hub, and
// adds the cluster's pg groups and registry names whenever they change (both replicated on every
// node already). The Hub keeps what a page that connects needs first (the last figures of each
// node, the groups and names, the recent history) and serves the events after that, by number,
// to the pages' event streams (GET /api/events).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hypha/cluster/cache.hpp"
#include "hypha/node/node.hpp"

namespace hypha::http::detail {

using json = nlohmann::json;

// Processes alive on this node, and those runnable (waiting for a worker thread).
std::pair<std::uint64_t, std::uint64_t> count_processes(Node& node);

// An event map (atom keys) as JSON: integers as numbers, true/false as booleans, undefined as
// null, atoms and readable binaries as strings, `started`/`ended`/`at` (Unix ms) as RFC 3339,
// lists as arrays, nested maps as objects, anything else in Erlang syntax.
json event_json(const Term& t);

class Hub {
 public:
  static constexpr std::size_t kRecent = 4096;  // events kept for the streams
  static constexpr std::size_t kHistory = 200;  // events other than figures (a task's progress updating
                                                // its line in place), for a page's history

  // An event from the reporter: numbered ("seq"), stamped ("at", when it has none), kept.
  void push(json event);

  // What the Hub keeps for a new page: {"seq", "stats":[last of each node], "groups",
  // "names", "history":[...]}.
  json state() const;

  struct Batch {
    std::vector<std::pair<std::uint64_t, std::string>> events;  // (seq, JSON text)
    bool lost = false;    // events after `after` were dropped (a stream too slow): start again
    bool closed = false;  // the API is stopping
  };
  // The events after `after`, waiting up to `wait` for one.
  Batch wait(std::uint64_t after, std::chrono::milliseconds wait);
  std::uint64_t seq() const;
  void close();

  // Event streams being served (a cap keeps them from taking every HTTP thread).
  std::atomic<int> streams{0};

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::uint64_t, std::string>> recent_;
  std::uint64_t seq_ = 0;
  std::map<std::string, json> stats_;  // by node
  json groups_ = nullptr, names_ = nullptr;
  std::deque<json> history_;
  bool closed_ = false;
};

struct ReporterOptions {
  Atom pubsub;                       // the events pubsub (cluster::Options::events)
  std::shared_ptr<Hub> hub;          // null: publish only (hyphad without [http])
  std::vector<cache::Options> caches;
  std::optional<Atom> registry;      // whose names the Hub gets
  std::vector<Atom> pg_scopes;       // whose groups the Hub gets
  std::chrono::milliseconds every{1000};
};

// Spawns the reporter (registered hypha_dashboard) and subscribes it to the events.
Pid start_reporter(Node& node, ReporterOptions opts);

}  // namespace hypha::http::detail
