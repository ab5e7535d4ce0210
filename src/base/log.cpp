#include "hypha/base/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

namespace hypha::log {

namespace {
Level from_env() {
  const char* env = std::getenv("HYPHA_LOG");
  const std::string v = env ? env : "warn";
  if (v == "error") return Level::Error;
  if (v == "info") return Level::Info;
  if (v == "debug") return Level::Debug;
  return Level::Warn;
}

std::atomic<int>& level() {
  static std::atomic<int> l{static_cast<int>(from_env())};
  return l;
}

void append_value(std::string& out, std::string_view v) {
  const bool plain = !v.empty() && v.find_first_of(" \"=\n\t") == std::string_view::npos;
  if (plain) {
    out += v;
    return;
  }
  out.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c == '\n' ? ' ' : c);
  }
  out.push_back('"');
}

std::mutex sink_mu;
std::function<void(const std::string&)> sink;  // under sink_mu; empty: stderr
}  // namespace

bool enabled(Level l) { return static_cast<int>(l) <= level().load(std::memory_order_relaxed); }

void set_level(Level l) { level().store(static_cast<int>(l), std::memory_order_relaxed); }

void set_sink(std::function<void(const std::string& line)> s) {
  std::lock_guard lock(sink_mu);
  sink = std::move(s);
}

namespace {
void write_line(Level l, std::string_view node, std::string_view name, Fields fields, std::string_view extra_key,
                std::string_view extra_value) {
  static const char* kNames[] = {"error", "warn", "info", "debug"};
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line = std::string(stamp) + " " + kNames[static_cast<int>(l)] + " node=";
  append_value(line, node);
  line += " event=";
  line += name;
  for (const auto& [k, v] : fields) {
    line.push_back(' ');
    line += k;
    line.push_back('=');
    append_value(line, v);
  }
  if (!extra_key.empty()) {
    line.push_back(' ');
    line += extra_key;
    line.push_back('=');
    append_value(line, extra_value);
  }
  line.push_back('\n');
  std::lock_guard lock(sink_mu);
  if (sink)
    sink(line);
  else
    std::fwrite(line.data(), 1, line.size(), stderr);
}

// limited(): per key, when its period began and how many events it held back since.
struct Window {
  Level level = Level::Warn;
  std::chrono::steady_clock::time_point start;
  std::size_t held = 0;
};
struct Limiter {
  std::mutex mu;
  std::map<std::tuple<std::string, std::string, std::string>, Window> windows;
  std::chrono::milliseconds period{10000};
  std::chrono::steady_clock::time_point last_sweep{};
};
Limiter& limiter() {
  static Limiter* l = new Limiter();  // used by threads that may outlive statics
  return *l;
}
// Keys tracked at once; past it, new keys share one overflow key (memory stays bounded in a flood
// from many sources).
constexpr std::size_t kMaxKeys = 4096;

struct Summary {
  Level level;
  std::string node, name, key;
  std::size_t held;
};

// Under lim.mu: summaries of windows that ended, idle windows dropped.
std::vector<Summary> sweep_locked(Limiter& lim, std::chrono::steady_clock::time_point now) {
  std::vector<Summary> out;
  lim.last_sweep = now;
  for (auto it = lim.windows.begin(); it != lim.windows.end();) {
    Window& w = it->second;
    if (now - w.start < lim.period) {
      ++it;
      continue;
    }
    if (w.held == 0) {
      it = lim.windows.erase(it);
      continue;
    }
    const auto& [node, name, key] = it->first;
    out.push_back({w.level, node, name, key, w.held});
    w.held = 0;
    w.start = now;
    ++it;
  }
  return out;
}

void write_summaries(const std::vector<Summary>& all) {
  for (const auto& s : all) {
    const std::string held = std::to_string(s.held);
    write_line(s.level, s.node, s.name, {{"key", s.key}}, "suppressed", held);
  }
}
}  // namespace

void event(Level l, std::string_view node, std::string_view name, Fields fields) {
  if (!enabled(l)) return;
  write_line(l, node, name, fields, {}, {});
}

void limited(Level l, std::string_view node, std::string_view name, std::string_view key, Fields fields) {
  if (!enabled(l)) return;
  Limiter& lim = limiter();
  const auto now = std::chrono::steady_clock::now();
  std::vector<Summary> ended;
  std::size_t held_before = 0;
  {
    std::lock_guard lock(lim.mu);
    if (now - lim.last_sweep >= lim.period) ended = sweep_locked(lim, now);
    std::tuple<std::string, std::string, std::string> k{std::string(node), std::string(name), std::string(key)};
    auto it = lim.windows.find(k);
    if (it == lim.windows.end() && lim.windows.size() >= kMaxKeys) {
      std::get<2>(k) = "(other sources)";
      it = lim.windows.find(k);
    }
    if (it != lim.windows.end() && now - it->second.start < lim.period) {
      ++it->second.held;
      write_summaries(ended);
      return;
    }
    if (it == lim.windows.end()) it = lim.windows.emplace(std::move(k), Window{}).first;
    held_before = std::exchange(it->second.held, 0);
    it->second.start = now;
    it->second.level = l;
  }
  write_summaries(ended);
  const std::string held = std::to_string(held_before);
  write_line(l, node, name, fields, held_before ? "suppressed" : "", held);
}

void flush_suppressed() {
  Limiter& lim = limiter();
  std::vector<Summary> ended;
  {
    std::lock_guard lock(lim.mu);
    ended = sweep_locked(lim, std::chrono::steady_clock::now());
  }
  write_summaries(ended);
}

void set_limit_period(std::chrono::milliseconds period) {
  Limiter& lim = limiter();
  std::lock_guard lock(lim.mu);
  lim.period = period;
  lim.windows.clear();
}

}  // namespace hypha::log

std::string hypha::log::reason_class(std::string_view reason) {
  reason = reason.substr(0, reason.find(':'));
  std::string out;
  for (char c : reason.substr(0, 48))
    if (c < '0' || c > '9') out.push_back(c == ' ' ? '_' : c);
  return out;
}
