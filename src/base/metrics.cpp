#include "hypha/base/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <variant>

namespace hypha::metrics {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) noexcept {
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::cumulative() const {
  std::vector<std::uint64_t> out;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    out.push_back(total);
  }
  return out;
}

using Metric = std::variant<std::unique_ptr<Counter>, std::unique_ptr<Gauge>, std::unique_ptr<Histogram>>;

struct Registry::Family {
  Kind kind;
  std::string help;
  std::map<Labels, Metric> series;
};

Registry::Registry() = default;
Registry::~Registry() = default;

namespace {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Counter: return "counter";
    case Kind::Gauge: return "gauge";
    case Kind::Histogram: return "histogram";
  }
  return "untyped";
}

// Label values and help text escaped as the exposition format wants (\\, \" in values, \n).
void escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (quote && c == '"') out += "\\\"";
    else out += c;
  }
}

void labels_text(std::string& out, const Labels& labels, const char* extra_key = nullptr, const std::string& extra = {}) {
  if (labels.empty() && !extra_key) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    escaped(out, v, true);
    out += '"';
  }
  if (extra_key) {
    if (!first) out += ',';
    out += extra_key;
    out += "=\"" + extra + '"';
  }
  out += '}';
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

template <class M, class... A>
M& Registry::get(std::string_view name, std::string_view help, Kind kind, Labels labels, A&&... make) {
  std::sort(labels.begin(), labels.end());
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end())
    it = families_.emplace(std::string(name), std::make_unique<Family>(Family{kind, std::string(help), {}})).first;
  Family& f = *it->second;
  if (f.kind != kind)
    throw std::logic_error("metric " + std::string(name) + " is a " + kind_name(f.kind) + ", not a " + kind_name(kind));
  auto s = f.series.find(labels);
  if (s == f.series.end()) s = f.series.emplace(std::move(labels), std::make_unique<M>(std::forward<A>(make)...)).first;
  return *std::get<std::unique_ptr<M>>(s->second);
}

Counter& Registry::counter(std::string_view name, std::string_view help, Labels labels) {
  return get<Counter>(name, help, Kind::Counter, std::move(labels));
}
Gauge& Registry::gauge(std::string_view name, std::string_view help, Labels labels) {
  return get<Gauge>(name, help, Kind::Gauge, std::move(labels));
}
Histogram& Registry::histogram(std::string_view name, std::string_view help, std::vector<double> bounds, Labels labels) {
  return get<Histogram>(name, help, Kind::Histogram, std::move(labels), std::move(bounds));
}

std::int64_t Registry::value(std::string_view name, const Labels& labels) const {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return -1;
  auto s = it->second->series.find(sorted);
  if (s == it->second->series.end()) return -1;
  if (auto* c = std::get_if<std::unique_ptr<Counter>>(&s->second)) return static_cast<std::int64_t>((*c)->value());
  if (auto* g = std::get_if<std::unique_ptr<Gauge>>(&s->second)) return (*g)->value();
  return static_cast<std::int64_t>(std::get<std::unique_ptr<Histogram>>(s->second)->count());
}

std::string Registry::prometheus() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + ' ';
    escaped(out, f->help, false);
    out += "\n# TYPE " + name + ' ' + kind_name(f->kind) + '\n';
    for (const auto& [labels, m] : f->series) {
      if (auto* c = std::get_if<std::unique_ptr<Counter>>(&m)) {
        out += name;
        labels_text(out, labels);
        out += ' ' + std::to_string((*c)->value()) + '\n';
      } else if (auto* g = std::get_if<std::unique_ptr<Gauge>>(&m)) {
        out += name;
        labels_text(out, labels);
        out += ' ' + std::to_string((*g)->value()) + '\n';
      } else {
        const Histogram& h = *std::get<std::unique_ptr<Histogram>>(m);
        const auto cum = h.cumulative();
        for (std::size_t i = 0; i < cum.size(); ++i) {
          out += name + "_bucket";
          labels_text(out, labels, "le", i < h.bounds().size() ? number(h.bounds()[i]) : "+Inf");
          out += ' ' + std::to_string(cum[i]) + '\n';
        }
        out += name + "_sum";
        labels_text(out, labels);
        out += ' ' + number(h.sum()) + '\n';
        out += name + "_count";
        labels_text(out, labels);
        out += ' ' + std::to_string(cum.back()) + '\n';
      }
    }
  }
  return out;
}

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: metrics outlive every static user
  return *r;
}

}  // namespace hypha::metrics
