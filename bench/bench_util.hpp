// Small timing helpers shared by the benchmarks: run a body repeatedly for a time budget, several
// rounds, keep the best round (least disturbed by the machine), print machine-readable lines.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace hypha::bench {

struct Rate {
  double ops_per_s = 0;
  double seconds_per_op = 0;
};

// Calls body() in batches until `budget` has passed, `rounds` times; returns the best round.
template <class F>
Rate measure(F&& body, double budget_s = 0.3, int rounds = 5) {
  using clock = std::chrono::steady_clock;
  Rate best;
  for (int r = 0; r < rounds; ++r) {
    long n = 0;
    const auto start = clock::now();
    double elapsed = 0;
    while (elapsed < budget_s) {
      body();
      ++n;
      elapsed = std::chrono::duration<double>(clock::now() - start).count();
    }
    const double rate = static_cast<double>(n) / elapsed;
    if (rate > best.ops_per_s) best = {rate, elapsed / static_cast<double>(n)};
  }
  return best;
}

// A `serve` mode: SIGINT and SIGTERM are blocked before the node starts (so none of its threads
// takes them); serve_until_signalled() then prints `ready` (what bench/run.sh waits for) and
// returns when one arrives.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&sigs_);
    sigaddset(&sigs_, SIGINT);
    sigaddset(&sigs_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs_, nullptr);
  }
  void serve_until_signalled() {
    std::printf("ready\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&sigs_, &sig);
  }

 private:
  sigset_t sigs_;
};

inline void print_metric(const std::string& side, const std::string& metric, double value, const char* unit) {
  std::printf("side=%s metric=%s value=%.6g unit=%s\n", side.c_str(), metric.c_str(), value, unit);
  std::fflush(stdout);
}

}  // namespace hypha::bench
