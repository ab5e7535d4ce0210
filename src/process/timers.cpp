#include "timers.hpp"

namespace hypha::detail {

Timers::Timers(std::shared_ptr<Clock> clock) : clock_(clock ? std::move(clock) : steady_clock()) {
  if (clock_->manual()) {
    manual_ = static_cast<ManualClock*>(clock_.get());
    manual_now_ = manual_->now();
    manual_->attach(this);
  }
  thread_ = std::thread([this] { loop(); });
}

Timers::~Timers() { stop(); }

void Timers::stop() {
  if (manual_) manual_->detach(this);
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  fired_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Clock::time_point Timers::now_locked() const { return manual_ ? manual_now_ : clock_->now(); }

std::uint64_t Timers::start(std::chrono::milliseconds delay, std::function<void()> fire) {
  std::lock_guard lock(mu_);
  const std::uint64_t id = next_id_++;
  auto it = by_deadline_.emplace(now_locked() + delay, id);
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

void Timers::on_time(time_point now) {
  std::unique_lock lock(mu_);
  if (now > manual_now_) manual_now_ = now;
  cv_.notify_one();
  fired_.wait(lock, [&] {
    return stop_ || (!firing_ && (by_deadline_.empty() || by_deadline_.begin()->first > manual_now_));
  });
}

Clock::time_point Timers::next_deadline() const {
  std::lock_guard lock(mu_);
  return by_deadline_.empty() ? time_point::max() : by_deadline_.begin()->first;
}

void Timers::loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const time_point now = now_locked();
    if (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
      auto first = by_deadline_.begin();
      auto node = by_id_.find(first->second);
      std::function<void()> fire = std::move(node->second.second);
      by_id_.erase(node);
      by_deadline_.erase(first);
      firing_ = true;
      lock.unlock();
      fire();
      lock.lock();
      firing_ = false;
      continue;
    }
    if (manual_) {
      fired_.notify_all();  // nothing is due: a waiting on_time() may return
      armed_ = time_point::max();
      cv_.wait(lock);
      continue;
    }
    // Sleep until the first deadline, or until the wake-up already planned when that is earlier
    // (its timer was cancelled): waking then for nothing is cheaper than start() waking us.
    time_point until = by_deadline_.empty() ? time_point::max() : by_deadline_.begin()->first;
    if (armed_ > now && armed_ < until) until = armed_;
    armed_ = until;
    if (until == time_point::max())
      cv_.wait(lock);
    else
      cv_.wait_until(lock, until);
  }
}

}  // namespace hypha::detail
