#include "hypha/base/hlc.hpp"

#include <algorithm>

namespace hypha {

HybridClock::HybridClock(WallMs wall, std::chrono::milliseconds max_drift)
    : wall_(wall ? std::move(wall)
                 : WallMs([] {
                     return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                           std::chrono::system_clock::now().time_since_epoch())
                                                           .count());
                   })),
      max_drift_ms_(static_cast<std::uint64_t>(max_drift.count())) {}

HlcTime HybridClock::now() {
  const std::uint64_t pt = wall_();
  std::lock_guard lock(mu_);
  if (pt > last_.wall_ms) last_ = {pt, 0};
  else ++last_.logical;
  return last_;
}

std::optional<HlcTime> HybridClock::observe(HlcTime remote) {
  const std::uint64_t pt = wall_();
  if (remote.wall_ms > pt + max_drift_ms_) return std::nullopt;
  std::lock_guard lock(mu_);
  const std::uint64_t w = std::max({pt, last_.wall_ms, remote.wall_ms});
  std::uint32_t l = 0;
  if (w == last_.wall_ms && w == remote.wall_ms) l = std::max(last_.logical, remote.logical) + 1;
  else if (w == last_.wall_ms) l = last_.logical + 1;
  else if (w == remote.wall_ms) l = remote.logical + 1;
  last_ = {w, l};
  return last_;
}

HlcTime HybridClock::last() const {
  std::lock_guard lock(mu_);
  return last_;
}

}  // namespace hypha
