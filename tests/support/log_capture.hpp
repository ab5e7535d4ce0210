// Captures the log lines written while it lives, for tests that check what an operator sees.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hypha/base/log.hpp"

namespace hypha::testing {

struct LogCapture {
  struct Shared {
    std::mutex mu;
    std::condition_variable changed;
    std::vector<std::string> lines;
  };
  std::shared_ptr<Shared> s = std::make_shared<Shared>();

  explicit LogCapture(log::Level level = log::Level::Warn) {
    log::set_level(level);
    log::set_limit_period(std::chrono::seconds(10));  // what earlier tests logged is not held against this one
    log::set_sink([s = s](const std::string& l) {
      std::lock_guard lock(s->mu);
      s->lines.push_back(l);
      s->changed.notify_all();
    });
  }
  ~LogCapture() {
    log::set_sink(nullptr);
    log::set_level(log::Level::Warn);
  }
  // The lines that contain every one of `parts`.
  std::size_t count(std::initializer_list<std::string_view> parts) const {
    std::lock_guard lock(s->mu);
    return count_locked(parts);
  }
  // Waits until at least `n` lines contain every one of `parts`; false on timeout.
  bool wait_for(std::initializer_list<std::string_view> parts, std::chrono::milliseconds timeout, std::size_t n = 1) {
    std::unique_lock lock(s->mu);
    return s->changed.wait_for(lock, timeout, [&] { return count_locked(parts) >= n; });
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(s->mu);
    return s->lines;
  }

 private:
  std::size_t count_locked(std::initializer_list<std::string_view> parts) const {
    return static_cast<std::size_t>(std::count_if(s->lines.begin(), s->lines.end(), [&](const std::string& l) {
      return std::all_of(parts.begin(), parts.end(), [&](std::string_view p) { return l.find(p) != std::string::npos; });
    }));
  }
};

}  // namespace hypha::testing
