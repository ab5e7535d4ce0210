// Metrics: counters, gauges and histograms with labels, one registry per process, read by the
// /metrics endpoint (Prometheus text format) and the dashboard to come, and by tests.
//
//   auto& refused = metrics::counter("hypha_connections_refused_total", "Connections refused",
//                                    {{"node", "a@host"}, {"listener", "distribution"}});
//   refused.add();                      // lock-free; keep the reference, look it up once
//   metrics::registry().prometheus();   // # HELP ... # TYPE ... name{labels} value
//
// A metric lives as long as the process (references stay valid): label sets must be bounded
// (nodes, listeners, routes, reasons), never peer addresses or user input.
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hypha::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class Gauge {
 public:
  void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t n) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

// Observations counted into buckets by upper bound (Prometheus' cumulative `le` buckets), with
// their count and sum.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Observations <= bounds()[i] (cumulative), for i < bounds().size(); then the count of all.
  std::vector<std::uint64_t> cumulative() const;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

enum class Kind { Counter, Gauge, Histogram };

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The metric of that name and labels, made on first use. A name has one kind and one help
  // text: asking for it as another kind is a programmer error (std::logic_error).
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds, Labels labels = {});

  // The value of a counter or gauge, or -1 when there is none (for tests and tools).
  std::int64_t value(std::string_view name, const Labels& labels = {}) const;
  // Every metric, in Prometheus' text exposition format (version 0.0.4), sorted by name.
  std::string prometheus() const;

 private:
  struct Family;
  template <class M, class... A>
  M& get(std::string_view name, std::string_view help, Kind kind, Labels labels, A&&... make);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
};

// The process's registry.
Registry& registry();

inline Counter& counter(std::string_view name, std::string_view help, Labels labels = {}) {
  return registry().counter(name, help, std::move(labels));
}
inline Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {}) {
  return registry().gauge(name, help, std::move(labels));
}
inline Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds, Labels labels = {}) {
  return registry().histogram(name, help, std::move(bounds), std::move(labels));
}

}  // namespace hypha::metrics
