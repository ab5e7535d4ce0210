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
#include "kv.hpp"

namespace hypha::cli {

namespace {

struct KvConfig {
  std::string name, cookie;
  std::uint16_t port = 4040;
  Router::Table table;
};

Result<Router::Table, std::string> routing_of(const toml::table& doc) {
  const toml::table* routing = doc["routing"].as_table();
  if (!routing) return unexpected(std::string("no [routing] table"));
  if (const toml::table* hash = (*routing)["hash"].as_table()) {
    HashRing ring(static_cast<unsigned>((*hash)["vnodes"].value_or(std::int64_t{128})));
    const toml::table* nodes = (*hash)["nodes"].as_table();
    if (!nodes || nodes->empty()) return unexpected(std::string("[routing.hash] needs nodes = { \"name@host\" = weight, ... }"));
    for (const auto& [k, v] : *nodes) {
      const std::string node(k.str());
      auto weight = v.value<std::int64_t>();
      auto atom = Atom::make(node);
      if (!weight || *weight < 1 || *weight > 1000 || !atom || node.find('@') == std::string::npos)
        return unexpected("[routing.hash] node \"" + node + "\": expected a node name and a weight of 1..1000");
      ring.add(*atom, static_cast<unsigned>(*weight));
    }
    return Router::Table(std::move(ring));
  }
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [k, v] : *routing) {
    auto node = v.value<std::string>();
    if (!node) return unexpected("[routing] \"" + std::string(k.str()) + "\": the owner must be a string (a node name)");
    entries.emplace_back(std::string(k.str()), *node);
  }
  auto t = RangeTable::parse(entries);
  if (!t) return unexpected(t.error());
  return Router::Table(std::move(*t));
}

Result<KvConfig, std::string> read_config(const std::string& path) {
  toml::table doc;
  try {
    doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << path;
    if (e.source().begin.line > 0) os << ":" << e.source().begin.line;
    os << ": " << e.description();
    return unexpected(os.str());
  }
  KvConfig c;
  auto name = doc["node"]["name"].value<std::string>();
  if (!name) return unexpected(path + ": [node] name is missing");
  c.name = *name;
  c.cookie = doc["node"]["cookie"].value_or(std::string());
  const auto port = doc["kv"]["port"].value_or(std::int64_t{4040});
  if (port < 0 || port > 65535) return unexpected(path + ": [kv] port must be 0..65535");
  c.port = static_cast<std::uint16_t>(port);
  auto table = routing_of(doc);
  if (!table) return unexpected(path + ": " + table.error());
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
  if (!cfg) return fail("kv: " + cfg.error());
  NodeOptions opts;
  opts.name = cfg->name;
  opts.cookie = cfg->cookie;
  auto exports = std::make_shared<Exports>();
  auto node = start_node(opts, {.exports = exports});
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
      std::cout << "routing table kept: " << again.error() << std::endl;
      continue;
    }
    (*router)->set_table(std::move(again->table));
    std::cout << "routing table reloaded: " << (*router)->describe() << std::endl;
  }
  server->reset();
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
