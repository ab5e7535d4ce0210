// The wall clock of the cluster services (private to the cluster library): the system clock, or
// the simulated one when the runtime runs on a manual clock (a SimNetwork test: every node of it
// reads the same time). What hybrid logical clocks and absolute expiry times are read from.
#pragma once

#include <chrono>
#include <cstdint>

#include "hypha/base/hlc.hpp"
#include "hypha/process/runtime.hpp"

namespace hypha::cluster::detail {

// For HybridClock: empty (the system clock) unless the runtime's clock is manual.
inline HybridClock::WallMs wall_of(const Runtime& rt) {
  const auto clock = rt.clock();
  if (clock && clock->manual())
    return [clock] {
      return static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(clock->now().time_since_epoch()).count());
    };
  return {};
}

// The same clock as a function that is never empty.
inline HybridClock::WallMs wall_ms_of(const Runtime& rt) {
  if (auto w = wall_of(rt)) return w;
  return [] {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
  };
}

}  // namespace hypha::cluster::detail
