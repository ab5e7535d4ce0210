// The worker threads that run processes (private to the process library).
#pragma once

#include <chrono>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace hypha::detail {

struct ProcessCore;

// Runs processes on N worker threads. A process made runnable by a worker goes into that
// worker's "next" slot (it runs right after the current one: message ping-pong stays on one
// thread); the slot's previous occupant moves to the worker's queue. Idle workers take from the
// shared queue, then steal from the others, then sleep.
class Scheduler {
 public:
  using RunFn = std::function<void(ProcessCore*)>;
  Scheduler(unsigned threads, std::chrono::microseconds idle_spin, RunFn run);
  ~Scheduler();
  void stop();

  void schedule(ProcessCore* p);
  unsigned threads() const noexcept { return static_cast<unsigned>(workers_.size()); }

 private:
  struct Worker {
    std::mutex mu;
    std::deque<ProcessCore*> queue;
    ProcessCore* next = nullptr;  // only touched by the worker itself
    std::thread thread;
  };
  void loop(Worker& w);
  ProcessCore* find_work(Worker& w);
  void wake_one();

  RunFn run_;
  std::chrono::microseconds idle_spin_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex global_mu_;
  std::deque<ProcessCore*> global_;
  std::condition_variable idle_cv_;
  std::atomic<int> sleeping_{0};
  std::atomic<int> spinning_{0};
  std::atomic<std::size_t> queued_{0};  // processes in any queue (not in next slots)
  std::atomic<bool> stop_{false};
};

}  // namespace hypha::detail
