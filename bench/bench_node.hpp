// The node every distribution benchmark starts: cookie "bench", and the experiment knobs
// HYPHA_BENCH_THREADS (workers) and HYPHA_BENCH_SPIN_US (idle spin). Exits on failure.
#pragma once

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "hypha/node/node.hpp"
#include "hypha/otp/kernel.hpp"

namespace hypha::bench {

inline std::unique_ptr<Node> start_node(const std::string& name, std::shared_ptr<Exports> exports = nullptr) {
  NodeOptions o;
  o.name = name;
  o.cookie = "bench";
  if (const char* t = std::getenv("HYPHA_BENCH_THREADS")) o.threads = static_cast<unsigned>(std::atoi(t));
  if (const char* s = std::getenv("HYPHA_BENCH_SPIN_US")) o.idle_spin = std::chrono::microseconds(std::atoi(s));
  auto n = hypha::start_node(o, {.exports = std::move(exports)});
  if (!n) {
    std::cerr << "bench: " << n.error() << "\n";
    std::exit(2);
  }
  return std::move(*n);
}

}  // namespace hypha::bench
