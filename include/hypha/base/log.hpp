// Structured, quiet-by-default logging: one event per line on stderr,
//   2026-11-23T18:20:01.123Z warn node=a@host pid=<0.85.0> event=handshake_failed peer=b@host reason="wrong cookie"
// or, with set_format(Format::Json), one JSON object per line:
//   {"time":"2026-11-23T18:20:01.123Z","level":"warn","node":"a@host","pid":"<0.85.0>","event":"handshake_failed","peer":"b@host",...}
// pid is the process the logging thread runs at that moment (absent outside processes). The
// level comes from HYPHA_LOG (error, warn, info, debug; default warn) until set_level. Never log
// cookies; as a second line of defence, every secret given to add_secret is replaced by
// "[redacted]" wherever it would appear in a line.
//
// Events that outsiders can cause at will (refused connections, bad handshakes, floods) go
// through limited(): per (node, event, key) the first line goes out at once, later ones within
// the period are counted, and one summary line per period says how many were held back
// (`suppressed=N`), so an attacker cannot flood the log and an operator still sees every kind.
//
// Thread-safe: any thread may log at any time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace hypha::log {

enum class Level { Error = 0, Warn = 1, Info = 2, Debug = 3 };

using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

bool enabled(Level l);
// Overrides HYPHA_LOG from now on (an application's own setting, a test that waits for an event).
void set_level(Level l);
Level level_now();
// "error", "warn", "info", "debug".
std::string_view level_name(Level l);
std::optional<Level> parse_level(std::string_view s);

enum class Format { Human, Json };
void set_format(Format f);
// A cookie, token or key: never written (replaced by [redacted]). Empty strings are ignored.
void add_secret(std::string secret);

// The process this thread runs now (its pid's number and serial), for the pid field: the
// runtime sets it around each run of a process. A thread outside processes has none.
void enter_process(std::uint32_t number, std::uint32_t serial) noexcept;
void leave_process() noexcept;
// Fields are key/value pairs; values with spaces or quotes are quoted.
void event(Level l, std::string_view node, std::string_view name, Fields fields = {});
// Sends each line (ending in a newline) to `sink` instead of stderr, e.g. into an application's
// own log; an empty function restores stderr. The sink is called under a lock, one line at a time.
void set_sink(std::function<void(const std::string& line)> sink);

// Rate-limited event: `key` groups what is counted together (a source address and a reason
// class, say). The first event of a key in a period is logged with its fields; the others are
// counted, and the next line for that key (or flush_suppressed) carries `suppressed=N`.
void limited(Level l, std::string_view node, std::string_view name, std::string_view key, Fields fields = {});
// Writes the summaries of keys whose period is over and that held events back; drops idle keys.
// Called now and then by a node's timer so that the count of a flood that stopped is told too.
void flush_suppressed();
// A short, stable class of a reason text, for limited()'s keys: what comes before the first ':'
// (at most 48 characters), with digits dropped ("frame of 123 bytes" and "frame of 456 bytes" are
// one class).
std::string reason_class(std::string_view reason);
// The period of limited() (default 10 s); every key starts afresh. Tests shorten it.
void set_limit_period(std::chrono::milliseconds period);

}  // namespace hypha::log
