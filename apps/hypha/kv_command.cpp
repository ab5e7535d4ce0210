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

// [routing]: ranges of first bytes, or [routing.hash]; problems go to the reader with their line.
std::optional<Router::Table> routing_of(config::Reader& r) {
  const toml::table* routing = r.table("routing");
  if (!routing) {
    if (r.ok()) r.fail("routing", "missing: the [routing] table is required");
    return std::nullopt;
  }
  if (const toml::node* hash_node = routing->get("hash")) {
    const toml::table* hash = hash_node->as_table();
    if (!hash) {
      r.fail_at(*hash_node, "routing.hash", "expected a table");
      return std::nullopt;
    }
    for (const auto& [k, v] : *hash)
      if (k.str() != "vnodes" && k.str() != "nodes") {
        r.fail_at(v, "routing.hash." + std::string(k.str()), "unknown key (vnodes, nodes)");
        return std::nullopt;
      }
    const toml::node* vnodes = hash->get("vnodes");
    if (vnodes && (!vnodes->is_integer() || *vnodes->value<std::int64_t>() < 1 || *vnodes->value<std::int64_t>() > 4096)) {
      r.fail_at(*vnodes, "routing.hash.vnodes", "expected an integer of 1..4096");
      return std::nullopt;
    }
    HashRing ring(static_cast<unsigned>(vnodes ? *vnodes->value<std::int64_t>() : 128));
    const toml::table* nodes = (*hash)["nodes"].as_table();
    if (!nodes || nodes->empty()) {
      r.fail_at(*hash_node, "routing.hash.nodes", "expected nodes = { \"name@host\" = weight, ... }");
      return std::nullopt;
    }
    for (const auto& [k, v] : *nodes) {
      const std::string node(k.str());
      auto weight = v.value<std::int64_t>();
      auto atom = Atom::make(node);
      if (!v.is_integer() || *weight < 1 || *weight > 1000 || !atom || node.find('@') == std::string::npos) {
        r.fail_at(v, "routing.hash.nodes.\"" + node + "\"", "expected a node name and a weight of 1..1000");
        return std::nullopt;
      }
      ring.add(*atom, static_cast<unsigned>(*weight));
    }
    return Router::Table(std::move(ring));
  }
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [k, v] : *routing) {
    if (!v.is_string()) {
      r.fail_at(v, "routing.\"" + std::string(k.str()) + "\"", "expected the owner's node name (a string)");
      return std::nullopt;
    }
    entries.emplace_back(std::string(k.str()), *v.value<std::string>());
  }
  auto t = RangeTable::parse(entries);
  if (!t) {
    r.fail_at(*routing, "routing", t.error());
    return std::nullopt;
  }
  return Router::Table(std::move(*t));
}

Result<KvConfig, config::Error> read_config(const std::string& path) {
  auto r = config::Reader::load(path);
  if (!r) return unexpected(r.error());
  KvConfig c;
  config::read_node(*r, c.node);
  config::read_cluster(*r, c.services);
  config::read_log(*r, c.log);
  if (c.node.name.empty() && r->ok()) r->fail("node.name", "missing: a kv node needs a name");
  if (auto port = r->integer("kv", "port", 0, 65535)) c.port = static_cast<std::uint16_t>(*port);
  auto table = routing_of(*r);
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
