// What the HTTP API's route files share (private to apps/hyphad): JSON answers and errors, the
// token checks, the wrappers every route is added through, and terms as JSON text.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "http_api.hpp"
#include "hypha/term/term.hpp"

namespace hypha::http::detail {

using json = nlohmann::json;
using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

void send_json(httplib::Response& res, int status, const json& body);
// {"error": code, "detail": detail} plus any fields of `extra` (an object).
void send_error(httplib::Response& res, int status, std::string_view code, std::string_view detail,
                const json& extra = json::object());

// RFC 3339 in UTC with milliseconds: 2026-12-03T12:00:00.123Z.
std::string rfc3339(std::chrono::system_clock::time_point t);
// The same of a Unix time in ms; null for 0 (unknown).
json rfc3339_or_null(std::int64_t unix_ms);

// A term as JSON text: a binary that is UTF-8 as its text, an atom as its name, anything else
// in Erlang syntax (docs/apps.md).
std::string term_text(const Term& t);

// What every route is added through: the token check (reads need read_token when it is set,
// mutating calls the token), and the request's route label for the metrics.
struct Context {
  Node& node;
  const Options& opts;
  mutable std::atomic<int> active{0};  // requests being handled (a stop waits for them a moment)

  bool allowed(const httplib::Request& req, bool mutating) const;
  Handler open(std::string route, Handler f) const;   // no token ever (/health)
  Handler read(std::string route, Handler f) const;   // read_token when set
  Handler write(std::string route, Handler f) const;  // token when set

 private:
  enum class Need { Nothing, Read, Write };
  Handler wrap(std::string route, Need need, Handler f) const;
};

// An event stream's first write (what it holds back until the stream runs): written and cleared,
// with the write's outcome; nullopt when nothing was held.
std::optional<bool> write_pending(std::string& pending, httplib::DataSink& sink);

// The JSON body of a request as an object, or a 400 written to `res` (nullopt).
std::optional<json> body_object(const httplib::Request& req, httplib::Response& res);

// GET /api/registry's answer: the first `limit` names of the cluster registry, sorted.
json names_json(Runtime& rt, Atom registry, std::size_t limit);
// GET /api/groups' answer: every pg scope this node runs, its groups and their members (or
// only how many on each node).
json groups_json(Runtime& rt, const cluster::Options& services, bool with_members);
// A task as /api/tasks shows it (with its result or reason when asked).
json task_json(const tasks::Info& i, bool with_result);

class Hub;  // dashboard.hpp
// What the dashboard's routes are fed from: the Hub, and GET /api/nodes' answer.
struct DashboardFeed {
  std::shared_ptr<Hub> hub;
  std::function<json()> nodes;
};

void add_task_routes(httplib::Server& server, const Context& ctx);
void add_cluster_routes(httplib::Server& server, const Context& ctx);
void add_metrics_route(httplib::Server& server, const Context& ctx);
void add_dashboard_routes(httplib::Server& server, const Context& ctx, DashboardFeed feed);
// ctx.opts.downloads must be set; `hub` feeds the visitor's event stream (null: 503).
void add_download_routes(httplib::Server& server, const Context& ctx, std::shared_ptr<Hub> hub);

}  // namespace hypha::http::detail
