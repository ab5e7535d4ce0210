// Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014): timestamps that follow
// wall-clock time, never go backwards on a node, and are greater than every timestamp the node has
// seen from others, so "older" means the same thing on every node. The cluster registry (issue 14)
// orders registrations of one name by it (the older wins, ties by node name).
//
//   HybridClock hlc;                       // the system's wall clock
//   HlcTime t = hlc.now();                 // for a local event (a registration)
//   auto merged = hlc.observe(remote_t);   // for a remote one: after it, or an error
//
// A peer's timestamp more than `max_drift` ahead of our wall clock is refused, not adopted: one
// broken or hostile clock must not drag every node's timestamps into the future.
// Thread-safety: every member may be called from any thread.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

namespace hypha {

struct HlcTime {
  std::uint64_t wall_ms = 0;  // milliseconds since the Unix epoch
  std::uint32_t logical = 0;  // events within one wall_ms
  auto operator<=>(const HlcTime&) const = default;
};

class HybridClock {
 public:
  using WallMs = std::function<std::uint64_t()>;
  // `wall`: the physical clock in ms since the epoch (default: std::chrono::system_clock).
  explicit HybridClock(WallMs wall = {}, std::chrono::milliseconds max_drift = std::chrono::seconds(60));

  HlcTime now();
  // Merges a remote timestamp: the result is after it and after everything this clock gave;
  // nullopt (and no change) when `remote` is more than max_drift ahead of the wall clock.
  std::optional<HlcTime> observe(HlcTime remote);
  HlcTime last() const;

 private:
  WallMs wall_;
  std::uint64_t max_drift_ms_;
  mutable std::mutex mu_;
  HlcTime last_;
};

}  // namespace hypha
