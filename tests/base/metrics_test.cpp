#include "hypha/base/metrics.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

namespace hypha::metrics {
namespace {

TEST(Metrics, CountersAndGaugesByNameAndLabels) {
  Registry r;
  Counter& a = r.counter("t_requests_total", "Requests", {{"node", "a@h"}, {"route", "/x"}});
  Counter& same = r.counter("t_requests_total", "Requests", {{"route", "/x"}, {"node", "a@h"}});  // label order is not identity
  Counter& other = r.counter("t_requests_total", "Requests", {{"node", "b@h"}, {"route", "/x"}});
  EXPECT_EQ(&a, &same);
  EXPECT_NE(&a, &other);
  a.add();
  same.add(2);
  EXPECT_EQ(a.value(), 3u);
  EXPECT_EQ(r.value("t_requests_total", {{"node", "a@h"}, {"route", "/x"}}), 3);
  EXPECT_EQ(r.value("t_requests_total", {{"node", "b@h"}, {"route", "/x"}}), 0);
  EXPECT_EQ(r.value("t_requests_total", {{"node", "c@h"}}), -1);
  Gauge& q = r.gauge("t_queue_bytes", "Queued");
  q.set(10);
  q.add(-4);
  EXPECT_EQ(r.value("t_queue_bytes"), 6);
  EXPECT_THROW(r.gauge("t_requests_total", "Requests"), std::logic_error);  // one kind per name
}

TEST(Metrics, CountsFromManyThreadsAddUp) {
  Registry r;
  Counter& c = r.counter("t_total", "");
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int j = 0; j < 100000; ++j) c.add();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.value(), 400000u);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  Histogram& h = r.histogram("t_seconds", "Durations", {1, 0.1, 10});  // sorted on creation
  for (double v : {0.05, 0.1, 0.5, 3.0, 30.0}) h.observe(v);
  EXPECT_EQ(h.bounds(), (std::vector<double>{0.1, 1, 10}));
  EXPECT_EQ(h.cumulative(), (std::vector<std::uint64_t>{2, 3, 4, 5}));  // le 0.1, 1, 10, +Inf
  EXPECT_EQ(h.count(), 5u);
  EXPECT_DOUBLE_EQ(h.sum(), 33.65);
}

TEST(Metrics, PrometheusTextFormat) {
  Registry r;
  r.counter("t_b_total", "B things", {{"peer", "a@h"}}).add(7);
  r.gauge("t_a", "Line one\nline \\two").set(-2);
  r.counter("t_b_total", "B things", {{"peer", "q\"uote"}}).add();
  r.histogram("t_c_seconds", "C", {0.5}).observe(0.25);
  EXPECT_EQ(r.prometheus(),
            "# HELP t_a Line one\\nline \\\\two\n"
            "# TYPE t_a gauge\n"
            "t_a -2\n"
            "# HELP t_b_total B things\n"
            "# TYPE t_b_total counter\n"
            "t_b_total{peer=\"a@h\"} 7\n"
            "t_b_total{peer=\"q\\\"uote\"} 1\n"
            "# HELP t_c_seconds C\n"
            "# TYPE t_c_seconds histogram\n"
            "t_c_seconds_bucket{le=\"0.5\"} 1\n"
            "t_c_seconds_bucket{le=\"+Inf\"} 1\n"
            "t_c_seconds_sum 0.25\n"
            "t_c_seconds_count 1\n");
}

}  // namespace
}  // namespace hypha::metrics
