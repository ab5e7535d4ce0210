#include "hypha/base/log.hpp"

#include <algorithm>
#include "hypha/base/utf8.hpp"

#include <atomic>
#include <cctype>
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
  return parse_level(env ? env : "warn").value_or(Level::Warn);
}

std::atomic<int> format_now{static_cast<int>(Format::Human)};
thread_local bool tl_in_process = false;
thread_local std::uint32_t tl_number = 0, tl_serial = 0;

std::mutex secrets_mu;
std::vector<std::string>& secrets() {  // under secrets_mu
  static auto* v = new std::vector<std::string>();
  return *v;
}
std::atomic<bool> have_secrets{false};

// A secret shorter than this is redacted only where it stands alone (not inside a longer word):
// a cookie "abc" must not turn every "abc" of a peer's name into [redacted].
constexpr std::size_t kWordSecret = 8;

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

void redact(std::string& line) {
  std::lock_guard lock(secrets_mu);
  for (const std::string& secret : secrets())
    for (std::size_t at = line.find(secret); at != std::string::npos;) {
      const std::size_t end = at + secret.size();
      const bool alone = (at == 0 || !word_char(line[at - 1])) && (end == line.size() || !word_char(line[end]));
      if (secret.size() >= kWordSecret || alone) {
        line.replace(at, secret.size(), "[redacted]");
        at = line.find(secret, at + 10);
      } else {
        at = line.find(secret, at + 1);
      }
    }
}

// A JSON string: quotes, backslashes and control characters escaped; bytes that are not UTF-8
// written as the Latin-1 characters they would be, so the line is always valid JSON.
void append_json(std::string& out, std::string_view v) {
  out.push_back('"');
  for (std::size_t i = 0; i < v.size();) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (const std::size_t n = utf8::sequence_at(v, i)) {
      out.append(v.substr(i, n));
      i += n;
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      ++i;
    }
  }
  out.push_back('"');
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
Level level_now() { return static_cast<Level>(level().load(std::memory_order_relaxed)); }

std::string_view level_name(Level l) {
  static constexpr std::string_view kNames[] = {"error", "warn", "info", "debug"};
  return kNames[static_cast<int>(l)];
}

std::optional<Level> parse_level(std::string_view s) {
  for (Level l : {Level::Error, Level::Warn, Level::Info, Level::Debug})
    if (s == level_name(l)) return l;
  return std::nullopt;
}

void set_format(Format f) { format_now.store(static_cast<int>(f), std::memory_order_relaxed); }

void add_secret(std::string secret) {
  if (secret.empty()) return;
  std::lock_guard lock(secrets_mu);
  if (std::find(secrets().begin(), secrets().end(), secret) == secrets().end()) secrets().push_back(std::move(secret));
  have_secrets.store(true, std::memory_order_release);
}

void enter_process(std::uint32_t number, std::uint32_t serial) noexcept {
  tl_in_process = true;
  tl_number = number;
  tl_serial = serial;
}
void leave_process() noexcept { tl_in_process = false; }

void set_sink(std::function<void(const std::string& line)> s) {
  std::lock_guard lock(sink_mu);
  sink = std::move(s);
}

namespace {
void write_line(Level l, std::string_view node, std::string_view name, Fields fields, std::string_view extra_key,
                std::string_view extra_value) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  char pid[32] = "";
  if (tl_in_process) std::snprintf(pid, sizeof pid, "<0.%u.%u>", tl_number, tl_serial);
  std::string line;
  if (static_cast<Format>(format_now.load(std::memory_order_relaxed)) == Format::Json) {
    const auto pair = [&line](std::string_view k, std::string_view v) {
      line.push_back(line.empty() ? '{' : ',');
      append_json(line, k);
      line.push_back(':');
      append_json(line, v);
    };
    pair("time", stamp);
    pair("level", level_name(l));
    pair("node", node);
    if (*pid) pair("pid", pid);
    pair("event", name);
    for (const auto& [k, v] : fields) pair(k, v);
    if (!extra_key.empty()) pair(extra_key, extra_value);
    line.push_back('}');
  } else {
    line = std::string(stamp) + " " + std::string(level_name(l)) + " node=";
    append_value(line, node);
    if (*pid) {
      line += " pid=";
      line += pid;
    }
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
  }
  if (have_secrets.load(std::memory_order_acquire)) redact(line);
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
