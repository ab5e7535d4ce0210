// hyphad: the node daemon. `hyphad --config FILE` runs a node with every service its config
// enables, and the HTTP API (docs/apps.md). The whole file is validated before anything starts:
// a bad key or value is one line naming key and line, exit 2. SIGTERM / SIGINT leave cleanly
// (the distributed supervisor hands its children over first) and exit 0. SIGHUP re-reads the
// file and says what it could not apply.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <algorithm>
#include <iostream>

#include "config.hpp"
#include "dashboard.hpp"
#include "http_api.hpp"
#include "downloads.hpp"
#include "kv.hpp"
#include "router.hpp"
#include "hypha/cluster/cluster.hpp"

namespace {

using namespace hypha;

struct Settings {
  NodeOptions node;
  cluster::Options services;
  std::vector<std::string> inboxes;
  bool http = false;  // an [http] section
  http::Options http_opts;
  config::LogSettings log;
  // [kv] and [routing]: the KV store, its router and text server (as `hypha kv`).
  bool kv = false;
  std::uint16_t kv_port = 4040;
  std::optional<config::RoutingTable> routing;
  // As read: what needs a restart is measured from the file the node started with, formation's
  // lists from the file whose lists run (the same until a reload applies new ones).
  std::shared_ptr<const toml::table> file, formation_file, routing_file;
};

std::string text_check(const std::string& s) { return s.empty() ? "expected a non-empty string" : ""; }

// [download_manager] (docs/config.md): the jobs run under the distributed supervisor, their
// state in a cache of that name (started replicated when no [[cache]] names it).
void read_downloads(config::Reader& r, Settings& s) {
  if (!r.present("download_manager")) return;
  const bool enabled = r.boolean("download_manager", "enabled").value_or(false);
  downloads::Options o;
  const auto dir = r.string("download_manager", "dir", text_check);
  if (dir) o.dir = *dir;
  if (auto v = r.string("download_manager", "cache", text_check)) o.cache = Atom(*v);
  if (auto v = r.integer("download_manager", "ttl_ms", 1000, 365LL * 86'400'000)) o.ttl = std::chrono::milliseconds(*v);
  if (auto v = r.integer("download_manager", "max_bytes", 1, std::int64_t{1} << 50)) o.max_bytes = static_cast<std::uint64_t>(*v);
  // Every entry checked as it is read (an error names its line): what is returned parses.
  if (auto v = r.strings("download_manager", "allow", &downloads::AddressPolicy::check))
    o.addresses = *downloads::AddressPolicy::parse(*v);
  if (auto v = r.string("download_manager", "proxy", [](const std::string& p) {
        return downloads::check_url(p).empty() ? std::string() : "an http:// or https:// proxy URL";
      }))
    o.proxy = *v;
  if (!enabled) return;
  const toml::node* where = r.table("download_manager")->get("enabled");
  if (!dir) return r.fail_at(*where, "download_manager.dir", "a directory, required when enabled (where the files go)");
  if (!s.services.supervisor || !s.services.registry)
    return r.fail_at(*where, "download_manager.enabled", "[registry] and [supervisor] as well (the jobs are supervised children)");
  auto same = std::find_if(s.services.caches.begin(), s.services.caches.end(),
                           [&o](const cache::Options& c) { return c.name == o.cache; });
  if (same == s.services.caches.end()) s.services.caches.push_back({.name = o.cache, .mode = cache::Mode::Replicated});
  else if (same->mode == cache::Mode::Local)
    return r.fail_at(r.table("download_manager")->get("cache") ? *r.table("download_manager")->get("cache") : *where,
                     "download_manager.cache",
                     "a replicated or partitioned cache (every node reads the downloads' state), not a local one");
  o.events = s.services.events;
  o.supervisor = s.services.supervisor->name;
  s.http_opts.downloads = o;
}

void read_http(config::Reader& r, Settings& s) {
  s.http = r.present("http");
  if (auto v = r.integer("http", "port", 0, 65535)) s.http_opts.port = static_cast<std::uint16_t>(*v);
  if (auto v = r.string("http", "bind", text_check)) s.http_opts.bind = *v;
  if (auto v = r.string("http", "token", text_check)) s.http_opts.token = *v;
  if (auto v = r.string("http", "read_token", text_check)) s.http_opts.read_token = *v;
}

Result<Settings, std::string> load(const std::string& path) {
  auto r = config::Reader::load(path);
  if (!r) return unexpected(r.error().text());
  Settings s;
  config::read_node(*r, s.node, &s.inboxes);
  config::read_cluster(*r, s.services);
  read_http(*r, s);
  config::read_log(*r, s.log);
  s.services.events = Atom("Elixir.Hypha.PubSub");  // the dashboard's events (cluster/events.hpp)
  read_downloads(*r, s);
  s.kv = r->present("kv") || r->present("routing");
  if (auto v = r->integer("kv", "port", 0, 65535)) s.kv_port = static_cast<std::uint16_t>(*v);
  if (s.kv) s.routing = config::read_routing(*r, true);
  if (auto done = r->finish(); !done) return unexpected(done.error().text());
  s.file = s.formation_file = s.routing_file = std::make_shared<const toml::table>(r->root());
  if (s.node.name.empty()) return unexpected(path + ": node.name: required (hyphad has no --name)");
  if (!s.inboxes.empty()) return unexpected(path + ": node.inbox: not served by hyphad (a hypha node option)");
  return s;
}

bool formation_key(const std::string& key) {
  for (const char* k : {"cluster.strategies", "cluster.mesh", "cluster.disconnect_dropped"})
    if (key == k) return true;
  for (const char* s : {"cluster.static", "cluster.epmd", "cluster.dns", "cluster.gossip"})
    if (key == s || key.rfind(std::string(s) + ".", 0) == 0) return true;
  return false;
}

// What a valid file read again changes, in one line. Applied live: [log], and formation's lists
// and strategies (formation::reconfigure) when formation runs; every other changed key is named
// as applying at a restart (names only: some values are secrets).
//   "applied log.level=info cluster.static.nodes; at a restart: http.port"
std::string reload(Node& n, Settings& now, const Settings& next, Router* router) {
  // Started with formation (strategies listed at the start): it takes new lists, even empty ones.
  const bool formation_runs = n.runtime().whereis(Atom("hypha_formation")).has_value();
  std::vector<std::string> applied, later, formation_keys;
  for (const std::string& key : config::changed_keys(*now.file, *next.file)) {
    if (key == "log" || key.rfind("log.", 0) == 0) continue;  // below, with their values
    if (key == "routing" || key.rfind("routing.", 0) == 0) {
      if (router && next.routing) continue;  // below: the table is swapped live
    }
    if (!formation_runs || !formation_key(key)) later.push_back(key);
  }
  if (formation_runs)
    for (const std::string& key : config::changed_keys(*now.formation_file, *next.file))
      if (formation_key(key)) formation_keys.push_back(key);
  if (next.log.level != now.log.level || next.log.format != now.log.format) {
    config::apply_log(next.log, next.node, next.services, {next.http_opts.token, next.http_opts.read_token});
    if (next.log.level != now.log.level)
      applied.push_back("log.level=" + std::string(next.log.level ? log::level_name(*next.log.level) : "(HYPHA_LOG)"));
    if (next.log.format != now.log.format)
      applied.push_back(std::string("log.format=") + (next.log.format == log::Format::Json ? "json" : "human"));
    now.log = next.log;
  }
  // The routing table: compared as written in the file the router runs now.
  if (router && next.routing) {
    bool changed = false;
    for (const std::string& key : config::changed_keys(*now.routing_file, *next.file))
      changed = changed || key == "routing" || key.rfind("routing.", 0) == 0;
    if (changed) {
      router->set_table(*next.routing);
      now.routing_file = next.file;
      applied.push_back("routing");
    }
  }
  std::string refused;
  if (!formation_keys.empty() && !(next.services.formation == now.services.formation)) {
    if (auto r = formation::reconfigure(n.runtime(), next.services.formation)) {
      applied.insert(applied.end(), formation_keys.begin(), formation_keys.end());
      now.services.formation = next.services.formation;
      now.formation_file = next.file;
    } else {
      refused = r.error();
    }
  }
  std::string out = applied.empty() ? "nothing to apply live" : "applied";
  for (const auto& a : applied) out += " " + a;
  if (!refused.empty()) out += "; refused, formation runs as before: " + refused;
  if (!later.empty()) {
    out += "; at a restart:";
    for (const auto& k : later) out += " " + k;
  }
  return out;
}

int fail(const std::string& line, int code) {
  std::cerr << "hyphad: " << line << std::endl;
  return code;
}

int run(const std::string& path) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);  // to sigwait below, not to the node's threads
  auto s = load(path);
  if (!s) return fail(s.error(), 2);
  config::apply_log(s->log, s->node, s->services, {s->http_opts.token, s->http_opts.read_token});
  kernel::Options kernel;
  kernel.exports = std::make_shared<Exports>();
  if (s->http_opts.downloads) downloads::add_exports(*kernel.exports, *s->http_opts.downloads);
  auto node = start_cluster_node(s->node, kernel, s->services);
  if (!node) return fail("node: " + node.error(), 1);
  Node& n = **node;
  std::unique_ptr<http::Api> api;
  if (!s->http)  // its figures still reach the dashboards other nodes serve
    http::detail::start_reporter(n, http::detail::ReporterOptions{.pubsub = *s->services.events,
                                                                  .caches = s->services.caches});
  if (s->http) {
    s->http_opts.exports = kernel.exports;
    s->http_opts.services = s->services;
    if (s->services.tasks) s->http_opts.tasks = tasks::cluster_service(*s->services.tasks);
    auto a = http::Api::start(n, s->http_opts);
    if (!a) {
      n.stop();
      return fail(a.error(), 1);
    }
    api = std::move(*a);
  }
  if (s->http_opts.downloads) downloads::start_sweeper(n.runtime(), *s->http_opts.downloads);  // expired files go
  std::shared_ptr<Router> router;
  std::unique_ptr<kv::TextServer> kv_server;
  if (s->kv) {  // as `hypha kv` does
    if (auto st = kv::start_store(n, *kernel.exports); !st) return fail("kv: store: " + st.error().to_string(), 1);
    auto r = Router::start(n, kernel.exports, *s->routing);
    if (!r) return fail("kv: router: " + r.error().to_string(), 1);
    router = *r;
    auto server = kv::TextServer::start(n.io_context(), s->kv_port, n.runtime(), router);
    if (!server) return fail("kv: " + server.error(), 1);
    kv_server = std::move(*server);
  }
  std::cout << "hyphad " << n.name().text() << " started (port " << n.port() << ", epmd "
            << (n.serves_epmd() ? "embedded" : "external") << ", http "
            << (api ? s->http_opts.bind + ":" + std::to_string(api->port()) : std::string("off")) << ")" << std::endl;
  if (router)
    std::cout << "hyphad: kv port " << kv_server->port() << ", routing table: " << router->describe() << std::endl;
  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig != SIGHUP) {
      std::cout << "hyphad " << n.name().text() << " stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ")"
                << std::endl;
      break;
    }
    auto again = load(path);
    if (!again) {
      std::cout << "hyphad: reload refused, running as before: " << again.error() << std::endl;
      continue;
    }
    std::cout << "hyphad: reload: " << reload(n, *s, *again, router.get()) << std::endl;
  }
  kv_server.reset();
  if (api) api->stop();
  cluster::stop(n);  // leave cleanly: the distributed supervisor hands its children over first
  n.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hyphad: a hypha node daemon (docs/apps.md)"};
  std::string config;
  app.add_option("--config", config, "the node's TOML config file (docs/config.md)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "hyphad: " << e.what() << " (see hyphad --help)\n";
    return 2;
  }
  return run(config);
}
