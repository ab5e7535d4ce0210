// Timers (private to the process library): one thread that fires callbacks at their deadlines.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace hypha::detail {

class Timers {
 public:
  using Clock = std::chrono::steady_clock;
  Timers();
  ~Timers();
  void stop();
  // Runs `fire` on the timer thread after `delay`; returns an id for cancel().
  std::uint64_t start(std::chrono::milliseconds delay, std::function<void()> fire);
  bool cancel(std::uint64_t id);

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, std::uint64_t> by_deadline_;
  std::unordered_map<std::uint64_t, std::pair<std::multimap<Clock::time_point, std::uint64_t>::iterator,
                                               std::function<void()>>> by_id_;
  std::uint64_t next_id_ = 1;
  // When the thread wakes by itself (max: it waits for a notify); start() notifies only earlier.
  Clock::time_point armed_ = Clock::time_point::min();
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace hypha::detail
