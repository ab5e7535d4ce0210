// The worker threads that run processes (private to the process library).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "hypha/process/io_poller.hpp"

namespace hypha::detail {

using hypha::IoPoller;

struct ProcessCore;


// Runs processes on N worker threads. A process made runnable by a worker goes into that
// worker's "next" slot (it runs right after the current one: message ping-pong stays on one
// thread); the slot's previous occupant moves to the worker's queue. Idle workers take from the
// shared queue, then steal from the others, then sleep.
//
// With an I/O poller attached, idle workers also run the node's network I/O, as BEAM's
// schedulers do: one idle worker at a time holds the poll token and blocks in the poller's wait()
// (epoll) instead of sleeping, so a message that arrives is decoded, delivered and its receiver
// run on that same thread, with no hand-off between an I/O thread and a worker. When every
// worker stays busy, a watchdog thread polls every millisecond, so I/O (ticks, replies, connection
// handling) never waits on long-running processes for more than that.
class Scheduler {
 public:
  using RunFn = std::function<void(ProcessCore*)>;
  // `track_busy`: count processes scheduled and not yet run to the end of their turn, for busy()
  // (deterministic tests wait for a runtime to go quiet; production runs skip the counting).
  Scheduler(unsigned threads, std::chrono::microseconds idle_spin, RunFn run, bool track_busy = false);
  ~Scheduler();
  void stop();

  void schedule(ProcessCore* p);
  // Several at once (a fan-out): one lock and one wake-up for all of them. From a worker they go
  // to its queue (the next slot is left to what the current process sends itself).
  void schedule_many(std::span<ProcessCore* const> ps);
  unsigned threads() const noexcept { return static_cast<unsigned>(workers_.size()); }
  // Processes runnable or running now (0 when tracking is off).
  std::size_t busy() const noexcept { return busy_.load(std::memory_order_acquire); }
  // Attaches (or, with nullptr, detaches) the poller; detaching returns once no thread is inside it.
  void set_poller(IoPoller* poller);

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
  void wake_for_queued();
  // Idle path with a poller: true when this worker polled (work may have come).
  bool poll_io(Worker& w);
  void watchdog();
  void run_one(ProcessCore* p);

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
  bool track_busy_;
  std::atomic<std::size_t> busy_{0};

  std::atomic<IoPoller*> poller_{nullptr};
  std::mutex poll_token_;                      // held by the thread running the poller
  std::atomic<bool> poller_waiting_{false};    // a worker is blocked in poller->wait()
  std::atomic<std::int64_t> last_poll_{0};     // steady-clock ticks of the last poll
  std::mutex wd_mu_;
  std::condition_variable wd_cv_;
  std::atomic<bool> wd_parked_{false};
  bool poller_wanted_ = false;  // under global_mu_: the watchdog asks a sleeper to take the poll role
  std::thread watchdog_;
};

}  // namespace hypha::detail
