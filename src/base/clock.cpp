#include "hypha/base/clock.hpp"

#include <algorithm>

namespace hypha {

std::shared_ptr<Clock> steady_clock() {
  static const std::shared_ptr<Clock> real = std::make_shared<SteadyClock>();
  return real;
}

ManualClock::ManualClock() : now_(time_point(std::chrono::hours(1))) {}

Clock::time_point ManualClock::now() const {
  std::lock_guard lock(mu_);
  return now_;
}

void ManualClock::set(time_point t) {
  std::lock_guard moving(moving_);
  std::vector<Observer*> observers;
  {
    std::lock_guard lock(mu_);
    if (t > now_) now_ = t;
    t = now_;
    observers = observers_;
  }
  for (Observer* o : observers) o->on_time(t);
}

void ManualClock::advance(duration d) { set(now() + d); }

// Observers are asked without mu_ held (they take their own locks, and may read now() under
// them); moving_ keeps them attached meanwhile.
Clock::time_point ManualClock::next_deadline() const {
  std::lock_guard moving(moving_);
  std::vector<Observer*> observers;
  {
    std::lock_guard lock(mu_);
    observers = observers_;
  }
  time_point next = time_point::max();
  for (const Observer* o : observers) next = std::min(next, o->next_deadline());
  return next;
}

void ManualClock::attach(Observer* o) {
  std::lock_guard lock(mu_);
  observers_.push_back(o);
}

void ManualClock::detach(Observer* o) {
  std::lock_guard moving(moving_);
  std::lock_guard lock(mu_);
  observers_.erase(std::remove(observers_.begin(), observers_.end(), o), observers_.end());
}

}  // namespace hypha
