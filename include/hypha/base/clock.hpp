// Clock: where the runtime's timers (send_after, receive timeouts) and the simulated network
// (node/sim.hpp) read the time. Programs run on the real steady clock; deterministic tests give
// every node of a test one ManualClock, and time moves only when the test moves it:
//
//   auto clock = std::make_shared<hypha::ManualClock>();
//   hypha::Runtime rt({.clock = clock});
//   rt.send_after(std::chrono::seconds(5), pid, msg);   // nothing happens ...
//   clock->advance(std::chrono::seconds(5));            // ... until now: fired before this returns
//
// What waits on a ManualClock (the timers of each runtime on it, the simulated network's delayed
// frames) is one of its observers: advance() and set() tell each one the new time and return once
// every observer has done what was due by then. next_deadline() is the earliest thing any of them
// waits for, so a harness can move time from one event to the next (SimNetwork::advance).
//
// Thread-safety: every member may be called from any thread. Observers must not call set(),
// advance(), next_deadline() or detach() from their callbacks; they may call now().
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

namespace hypha {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
  // True when time moves only when told (ManualClock): waiting is then for a notification, not
  // for a deadline of the real clock.
  virtual bool manual() const noexcept { return false; }
};

// std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

// The process-wide real clock (what a runtime without a clock option uses).
std::shared_ptr<Clock> steady_clock();

class ManualClock final : public Clock {
 public:
  class Observer {
   public:
    virtual ~Observer() = default;
    // Time moved to `now`: do what was due by then, and return once it is done.
    virtual void on_time(time_point now) = 0;
    // The earliest time something waits for (time_point::max(): nothing).
    virtual time_point next_deadline() const = 0;
  };

  // Starts at an arbitrary fixed point (one hour after the steady clock's epoch), the same in
  // every run, so that simulated runs are repeatable.
  ManualClock();
  time_point now() const override;
  bool manual() const noexcept override { return true; }

  // Moves time forward (never back: an earlier `t` is ignored) and tells every observer.
  void set(time_point t);
  void advance(duration d);
  time_point next_deadline() const;

  void attach(Observer* o);
  void detach(Observer* o);  // returns once no on_time() of `o` is running

 private:
  mutable std::mutex mu_;       // now_ and observers_
  mutable std::mutex moving_;   // one set() at a time, held while observers run
  time_point now_;
  std::vector<Observer*> observers_;
};

}  // namespace hypha
