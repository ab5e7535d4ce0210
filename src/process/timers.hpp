// Timers (private to the process library): one thread that fires callbacks at their deadlines,
// read on the runtime's clock. On a ManualClock the thread waits for the clock to move instead
// of for a deadline, and the clock's set() returns once the timers due by then have fired.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "hypha/base/clock.hpp"

namespace hypha::detail {

class Timers final : ManualClock::Observer {
 public:
  using time_point = Clock::time_point;
  explicit Timers(std::shared_ptr<Clock> clock);
  ~Timers() override;
  void stop();
  // Runs `fire` on the timer thread after `delay`; returns an id for cancel().
  std::uint64_t start(std::chrono::milliseconds delay, std::function<void()> fire);
  bool cancel(std::uint64_t id);
  const std::shared_ptr<Clock>& clock() const noexcept { return clock_; }

 private:
  void loop();
  time_point now_locked() const;
  void on_time(time_point now) override;
  time_point next_deadline() const override;

  std::shared_ptr<Clock> clock_;
  ManualClock* manual_ = nullptr;  // clock_, when it is one
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable fired_;  // a manual clock's on_time() waits on it for the due timers
  std::multimap<time_point, std::uint64_t> by_deadline_;
  std::unordered_map<std::uint64_t, std::pair<std::multimap<time_point, std::uint64_t>::iterator,
                                               std::function<void()>>> by_id_;
  std::uint64_t next_id_ = 1;
  // When the thread wakes by itself (max: it waits for a notify); start() notifies only earlier.
  time_point armed_ = time_point::min();
  // A manual clock's time as the thread sees it (under mu_: the clock is never read under mu_,
  // since the clock calls next_deadline() under its own lock).
  time_point manual_now_{};
  bool firing_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace hypha::detail
