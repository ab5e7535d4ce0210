#include "timers.hpp"

namespace hypha::detail {

Timers::Timers() : thread_([this] { loop(); }) {}
Timers::~Timers() { stop(); }

void Timers::stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t Timers::start(std::chrono::milliseconds delay, std::function<void()> fire) {
  std::lock_guard lock(mu_);
  const std::uint64_t id = next_id_++;
  auto it = by_deadline_.emplace(Clock::now() + delay, id);
  by_id_.emplace(id, std::make_pair(it, std::move(fire)));
  // Wake the thread only when it would sleep past this deadline: with calls starting and
  // cancelling their timeouts at a high rate, the thread is not woken for each of them.
  if (it->first < armed_) cv_.notify_one();
  return id;
}

bool Timers::cancel(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  by_deadline_.erase(it->second.first);
  by_id_.erase(it);
  return true;
}

void Timers::loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const Clock::time_point now = Clock::now();
    if (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
      auto first = by_deadline_.begin();
      auto node = by_id_.find(first->second);
      std::function<void()> fire = std::move(node->second.second);
      by_id_.erase(node);
      by_deadline_.erase(first);
      lock.unlock();
      fire();
      lock.lock();
      continue;
    }
    // Sleep until the first deadline, or until the wake-up already planned when that is earlier
    // (its timer was cancelled): waking then for nothing is cheaper than start() waking us.
    Clock::time_point until = by_deadline_.empty() ? Clock::time_point::max() : by_deadline_.begin()->first;
    if (armed_ > now && armed_ < until) until = armed_;
    armed_ = until;
    if (until == Clock::time_point::max())
      cv_.wait(lock);
    else
      cv_.wait_until(lock, until);
  }
}

}  // namespace hypha::detail
