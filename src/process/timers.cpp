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
  if (it == by_deadline_.begin()) cv_.notify_one();
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
    if (by_deadline_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = by_deadline_.begin();
    // A copy: wait_until reads the deadline again after waking, and cancel() may have erased
    // the map node meanwhile.
    const Clock::time_point deadline = first->first;
    if (deadline > Clock::now()) {
      cv_.wait_until(lock, deadline);
      continue;
    }
    auto node = by_id_.find(first->second);
    std::function<void()> fire = std::move(node->second.second);
    by_id_.erase(node);
    by_deadline_.erase(first);
    lock.unlock();
    fire();
    lock.lock();
  }
}

}  // namespace hypha::detail
