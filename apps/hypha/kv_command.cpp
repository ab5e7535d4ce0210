// `hypha kv --config FILE`: a node with the KV store, the router and the text server, in the
// foreground until SIGINT/SIGTERM; SIGHUP re-reads the routing table.
//
//   [node]
//   name = "foo@127.0.0.1"
//   cookie = "secret"          # optional: else HYPHA_COOKIE, else ~/.erlang.cookie
//   [kv]
//   port = 4040
//   [routing]                  # first byte of the bucket name -> owner; "a" or an inclusive "a-m"
//   "a-m" = "foo@127.0.0.1"
//   "n-z" = "bar@127.0.0.1"
//
// Instead of ranges, consistent hashing of the whole bucket name:
//   [routing.hash]
//   vnodes = 128                              # points per unit of weight (default 128)
//   nodes = { "foo@127.0.0.1" = 1, "bar@127.0.0.1" = 2 }
#include "kv_command.hpp"

#include <CLI/CLI.hpp>
#include <signal.h>

#include <iostream>
#include <sstream>
#include <thread>
#include <toml++/toml.h>

#include "hypha/otp/kernel.hpp"
#include "hypha/otp/rpc.hpp"
#include "client.hpp"
#include "config.hpp"
#include "kv.hpp"

namespace hypha::cli {

namespace {

struct KvConfig {
  NodeOptions node;
  cluster::Options services;
  std::uint16_t port = 4040;
  Router::Table table;
  config::LogSettings log;
};

Result<KvConfig, config::Error> read_config(const std::string& path) {
  auto r = config::Reader::load(path);
  if (!r) return unexpected(r.error());
  KvConfig c;
  config::read_node(*r, c.node);
  config::read_cluster(*r, c.services);
  config::read_log(*r, c.log);
  if (c.node.name.empty() && r->ok()) r->fail("node.name", "missing: a kv node needs a name");
  if (auto port = r->integer("kv", "port", 0, 65535)) c.port = static_cast<std::uint16_t>(*port);
  auto table = config::read_routing(*r, true);
  if (auto done = r->finish(); !done) return unexpected(done.error());
  c.table = std::move(*table);
  return c;
}

int run_kv(const std::string& path) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto cfg = read_config(path);
  if (!cfg) {
    fail(cfg.error().text());
    return 2;
  }
  const NodeOptions& opts = cfg->node;
  config::apply_log(cfg->log, opts, cfg->services);
  auto exports = std::make_shared<Exports>();
  auto node = start_cluster_node(opts, {.exports = exports}, cfg->services);
  if (!node) return fail("kv: " + node.error());
  Node& n = **node;
  if (auto s = kv::start_store(n, *exports); !s) return fail("kv: store: " + s.error().to_string());
  auto router = Router::start(n, exports, cfg->table);
  if (!router) return fail("kv: router: " + router.error().to_string());

  // On the node's io_context: idle workers serve the clients, so a request line reaches its
  // process and the reply its socket without a thread hand-off.
  auto server = kv::TextServer::start(n.io_context(), cfg->port, n.runtime(), *router);
  if (!server) return fail(server.error());

  std::cout << "kv node " << n.name().text() << " started (kv port " << (*server)->port() << ")" << std::endl;
  std::cout << "routing table: " << (*router)->describe() << std::endl;
  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig != SIGHUP) {
      std::cout << "kv node " << n.name().text() << " stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ")"
                << std::endl;
      break;
    }
    auto again = read_config(path);
    if (!again) {
      std::cout << "routing table kept: " << again.error().text() << std::endl;
      continue;
    }
    (*router)->set_table(std::move(again->table));
    config::apply_log(again->log, again->node, again->services);  // [log] applies live too
    std::cout << "routing table reloaded: " << (*router)->describe() << std::endl;
  }
  server->reset();
  cluster::stop(n);  // leave cleanly (see hypha node)
  n.stop();
  return 0;
}

}  // namespace

void add_kv_command(CLI::App& app, int& exit_code) {
  auto path = std::make_shared<std::string>();
  auto* k = app.add_subcommand("kv", "Run a node with the KV store, router and text server (SIGHUP reloads the table)");
  k->add_option("--config", *path, "the TOML config file")->required();
  k->callback([path, &exit_code] { exit_code = run_kv(*path); });
}

}  // namespace hypha::cli
