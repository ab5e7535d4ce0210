// Structured, quiet-by-default logging: one event per line on stderr,
//   2026-11-23T18:20:01.123Z warn node=a@host event=handshake_failed peer=b@host reason="wrong cookie"
// The level comes from HYPHA_LOG (error, warn, info, debug; default warn). Never log cookies.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <initializer_list>
#include <utility>

namespace hypha::log {

enum class Level { Error = 0, Warn = 1, Info = 2, Debug = 3 };

bool enabled(Level l);
// Overrides HYPHA_LOG from now on (an application's own setting, a test that waits for an event).
void set_level(Level l);
// Fields are key/value pairs; values with spaces or quotes are quoted.
void event(Level l, std::string_view node, std::string_view name,
           std::initializer_list<std::pair<std::string_view, std::string_view>> fields = {});
// Sends each line (ending in a newline) to `sink` instead of stderr, e.g. into an application's
// own log; an empty function restores stderr. The sink is called under a lock, one line at a time.
void set_sink(std::function<void(const std::string& line)> sink);

}  // namespace hypha::log
