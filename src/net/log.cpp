#include "hypha/net/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <mutex>

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

void event(Level l, std::string_view node, std::string_view name,
           std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  if (!enabled(l)) return;
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
  line.push_back('\n');
  std::lock_guard lock(sink_mu);
  if (sink)
    sink(line);
  else
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace hypha::log
