// The HTTP API every hyphad node serves for the whole cluster (docs/apps.md): JSON, UTF-8,
// errors as {"error": "<code>", "detail": "..."} with the matching status.
//
//   GET /health      200 {"status":"ok","node":"a@127.0.0.1"}
//   GET /api/nodes   200 {"self":..., "nodes":[{"name","status","kind","since","messages_in",...}]}
//   GET /api/tasks[/NAME], POST /api/tasks, DELETE /api/tasks/NAME   unique cluster tasks
//   GET /api/registry, /api/groups, /api/caches[/NAME], /api/processes   the cluster's state
//   GET /, /api/dashboard, /api/events   the live dashboard (server-sent events)
//   GET /downloads, POST /api/downloads, GET /api/downloads/me[/file|/events]   the download manager
//   GET /metrics     Prometheus text
//
// Served by cpp-httplib (docs/dependencies.md) on its own threads, apart from the node's: a
// handler uses the blocking (Runtime&) forms of the APIs. Bodies over 1 MiB are refused (413),
// a client that sends nothing for 5 s is dropped, at most 64 connections are served at once.
// Mutating calls need `Authorization: Bearer <token>` when a token is set; reads need
// `read_token` when that is set.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "downloads.hpp"
#include "hypha/cluster/cluster.hpp"
#include "hypha/cluster/tasks.hpp"
#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/term/result.hpp"

namespace hypha::http {

struct Options {
  std::uint16_t port = 8080;  // 0: any free port (tests)
  std::string bind = "127.0.0.1";
  std::string token;       // bearer token of every mutating /api call; empty: none needed
  std::string read_token;  // when set, reads need it too (or the token)
  std::shared_ptr<tasks::Service> tasks;   // /api/tasks; null: 503 unavailable (no [tasks] here)
  std::shared_ptr<const Exports> exports;  // what POST /api/tasks may start (checked first); null: unchecked
  cluster::Options services;               // what the node runs: /api/registry, /api/groups, /api/caches
  // The download manager's page and visitor API (GET /downloads, /api/downloads...); none: 404.
  std::optional<downloads::Options> downloads;
  // The dashboard (GET /, /api/dashboard, /api/events) is served when services.events names the
  // events pubsub (cluster/events.hpp); its reporter publishes this node's figures there.
};

class Api {
 public:
  // Binds and starts serving; an error names the address that could not be bound.
  static Result<std::unique_ptr<Api>, std::string> start(Node& node, Options opts);
  ~Api();  // stop()
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  std::uint16_t port() const noexcept;
  // Stops accepting, lets requests in progress finish, and joins the server thread.
  void stop();

  struct Impl;

 private:
  explicit Api(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hypha::http
