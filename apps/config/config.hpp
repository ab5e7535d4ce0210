// The config loader every program shares (`hypha node --config`, `hypha kv --config`, hyphad):
// TOML files whose keys are all documented in docs/config.md. A program reads the sections it
// serves through one Reader, then finish() refuses every key nobody read, so a typo never goes
// unnoticed. Every problem is one line naming the file, the line, the key and what was expected:
//
//   node.toml:3: node.ticktime: expected an integer of 1..86400 (seconds), got a string
//   node.toml:9: clustr.nodes: unknown key
//
//   auto r = config::Reader::load(path);               // a TOML syntax error is an Error too
//   NodeOptions opts;
//   config::read_node(*r, opts, inboxes);              // [node], [node.limits]
//   if (auto done = r->finish(); !done) die(done.error().text(), 2);
//
// Reads of a key that is absent leave the target as it was (its default, or what a flag set).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <variant>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "hypha/base/log.hpp"
#include "hypha/cluster/cluster.hpp"
#include "hypha/cluster/routing.hpp"
#include "hypha/node/node.hpp"
#include "hypha/term/result.hpp"

namespace hypha::config {

struct Error {
  std::string file;
  std::size_t line = 0;  // 0: not known (the file could not be read)
  std::string key;       // "node.ticktime"; empty for a syntax error
  std::string message;   // what was expected
  std::string text() const;
};

class Reader {
 public:
  static Result<Reader, Error> load(const std::string& path);
  static Result<Reader, Error> parse(std::string_view text, const std::string& name);
  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;
  ~Reader();

  // Typed reads of `section.key` (section may be dotted: "node.limits"). Absent: nullopt and no
  // error. Present with a wrong type or value: nullopt, and the first such error is kept.
  // `check` (optional) says what was expected when a value is wrong, or "" when it is fine.
  using Check = std::function<std::string(const std::string&)>;
  std::optional<std::string> string(std::string_view section, std::string_view key, const Check& check = {});
  std::optional<bool> boolean(std::string_view section, std::string_view key);
  std::optional<std::int64_t> integer(std::string_view section, std::string_view key, std::int64_t min,
                                      std::int64_t max, std::string_view unit = {});
  std::optional<std::vector<std::string>> strings(std::string_view section, std::string_view key,
                                                  const Check& check = {});
  // Whether the file has the section ([registry] alone turns a service on); its keys are still
  // read one by one (an unknown one is refused).
  bool present(std::string_view section);
  // A table whose keys the caller reads itself (free-form, as [routing]): every key under it
  // counts as read. nullptr when absent; an error when present and not a table.
  const toml::table* table(std::string_view section);
  // An array of tables ([[pubsub]]) whose keys the caller reads itself, as table() does.
  const toml::array* tables(std::string_view key);
  // Records a problem the caller found in a value (the first problem is what finish() reports).
  void fail_at(const toml::node& where, std::string key, std::string expected);
  void fail(std::string key, std::string expected);  // no line: something missing

  bool ok() const noexcept;
  const std::string& file() const noexcept;
  const toml::table& root() const noexcept;  // the whole file as parsed
  // The first problem read so far, else the first key (in file order) nobody read.
  Result<bool, Error> finish() const;

 private:
  struct Impl;
  explicit Reader(std::unique_ptr<Impl> impl);
  const toml::node* find(std::string_view section, std::string_view key);
  std::unique_ptr<Impl> impl_;
};

// The dotted keys whose values differ between two files (a reload's change): leaves of tables,
// arrays compared whole (an array of tables, [[cache]], is one key), in sorted order. Keys only,
// never values (some are secrets).
std::vector<std::string> changed_keys(const toml::table& before, const toml::table& after);

// [node] and [node.limits] onto `opts` (and the names of inbox processes to start).
void read_node(Reader& r, NodeOptions& opts, std::vector<std::string>* inboxes = nullptr);

// [routing]: ranges of first bytes ("a-m" = "foo@host"), or [routing.hash] (vnodes, nodes with
// weights): the KV router's table (hypha kv, hyphad). Absent: nullopt, and an error when `required`.
using RoutingTable = std::variant<RangeTable, HashRing>;
std::optional<RoutingTable> read_routing(Reader& r, bool required);

// [pg] (and, as they land, the other cluster sections) onto `opts`.
void read_cluster(Reader& r, cluster::Options& opts);

// [log]: level (error | warn | info | debug; absent: HYPHA_LOG, else warn) and format
// (human | json).
struct LogSettings {
  std::optional<log::Level> level;
  log::Format format = log::Format::Human;
};
void read_log(Reader& r, LogSettings& s);
// Applies them to the process's log, and has it redact the secrets of these options (the
// cookie, HYPHA_COOKIE, the gossip secret) and any `more` (API tokens).
void apply_log(const LogSettings& s, const NodeOptions& node, const cluster::Options& services,
               const std::vector<std::string>& more = {});

}  // namespace hypha::config
