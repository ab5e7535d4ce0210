// GET /metrics: Prometheus' text format (0.0.4). The process's metrics registry (counters kept
// as things happen: HTTP requests, supervisor restarts and failovers, tasks run and their
// durations, gossip packets, formation events, refused connections), then what is read at each
// scrape: per peer traffic and send queue, processes and the run queue, the cluster's tasks by
// status, each cache's counters here, the registry's names.
#include <sstream>

#include "dashboard.hpp"
#include "http_common.hpp"
#include "hypha/base/metrics.hpp"
#include "hypha/cluster/cache.hpp"
#include "hypha/cluster/registry.hpp"

namespace hypha::http::detail {

namespace {

// A label value as the exposition format writes it: \, " and newlines escaped.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// Families written at scrape time: HELP and TYPE once, then a sample per label set.
class Out {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    s_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  void sample(std::string_view name, const metrics::Labels& labels, std::uint64_t v) {
    s_ << name;
    if (!labels.empty()) {
      s_ << '{';
      for (std::size_t i = 0; i < labels.size(); ++i)
        s_ << (i ? "," : "") << labels[i].first << "=\"" << label(labels[i].second) << '"';
      s_ << '}';
    }
    s_ << ' ' << v << '\n';
  }
  std::string str() const { return s_.str(); }

 private:
  std::ostringstream s_;
};

void peers(Out& out, Node& node) {
  const std::string self(node.name().text());
  const auto all = node.peers();
  struct F {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t PeerInfo::*field;
  };
  static const F kFields[] = {
      {"hypha_peer_messages_in_total", "counter", "Messages received from each connected peer (ticks excluded)", &PeerInfo::messages_in},
      {"hypha_peer_messages_out_total", "counter", "Messages sent to each connected peer (ticks excluded)", &PeerInfo::messages_out},
      {"hypha_peer_bytes_in_total", "counter", "Bytes received from each connected peer", &PeerInfo::bytes_in},
      {"hypha_peer_bytes_out_total", "counter", "Bytes sent to each connected peer", &PeerInfo::bytes_out},
  };
  for (const F& f : kFields) {
    out.family(f.name, f.type, f.help);
    for (const PeerInfo& p : all) out.sample(f.name, {{"node", self}, {"peer", std::string(p.name.text())}}, p.*(f.field));
  }
  out.family("hypha_peer_send_queue_bytes", "gauge", "Bytes queued for each connected peer, not yet written");
  for (const PeerInfo& p : all)
    out.sample("hypha_peer_send_queue_bytes", {{"node", self}, {"peer", std::string(p.name.text())}}, p.send_queue_bytes);
  out.family("hypha_peer_up", "gauge", "Connected peers (1 each), by kind");
  for (const PeerInfo& p : all)
    out.sample("hypha_peer_up",
               {{"node", self}, {"peer", std::string(p.name.text())}, {"kind", p.hidden ? "hidden" : p.hypha ? "hypha" : "beam"}}, 1);
}

void runtime(Out& out, Node& node) {
  const std::string self(node.name().text());
  const auto [total, runnable] = count_processes(node);
  out.family("hypha_processes", "gauge", "Processes alive on this node");
  out.sample("hypha_processes", {{"node", self}}, total);
  out.family("hypha_run_queue", "gauge", "Processes runnable and waiting for a worker thread");
  out.sample("hypha_run_queue", {{"node", self}}, runnable);
}

void tasks_by_status(Out& out, const Context& ctx) {
  if (!ctx.opts.tasks) return;
  auto all = ctx.opts.tasks->list(ctx.node.runtime());
  if (!all) return;  // the orchestrator is moving: no sample rather than a wrong one
  std::uint64_t running = 0, done = 0, failed = 0;
  for (const auto& i : *all)
    (i.state == tasks::Status::Kind::Done ? done : i.state == tasks::Status::Kind::Failed ? failed : running)++;
  out.family("hypha_cluster_tasks", "gauge", "The cluster's tasks the orchestrator knows, by status (the same on every node)");
  for (auto [status, n] : {std::pair{"running", running}, std::pair{"done", done}, std::pair{"failed", failed}})
    out.sample("hypha_cluster_tasks", {{"status", status}}, n);
}

void caches(Out& out, const Context& ctx) {
  if (ctx.opts.services.caches.empty()) return;
  const std::string self(ctx.node.name().text());
  struct F {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t cache::Stats::*field;
  };
  static const F kFields[] = {
      {"hypha_cache_hits_total", "counter", "Reads made on this node that found their key", &cache::Stats::hits},
      {"hypha_cache_misses_total", "counter", "Reads made on this node that did not", &cache::Stats::misses},
      {"hypha_cache_writes_total", "counter", "Writes made on this node", &cache::Stats::writes},
      {"hypha_cache_evictions_total", "counter", "Entries this replica evicted (max_entries)", &cache::Stats::evictions},
      {"hypha_cache_expirations_total", "counter", "Entries this replica expired (TTL)", &cache::Stats::expirations},
  };
  std::vector<std::pair<std::string, cache::Stats>> stats;
  for (const auto& c : ctx.opts.services.caches)
    if (auto s = cache::Cache(c.name).stats(ctx.node.runtime())) stats.emplace_back(std::string(c.name.text()), *s);
  for (const F& f : kFields) {
    out.family(f.name, f.type, f.help);
    for (const auto& [name, s] : stats) out.sample(f.name, {{"node", self}, {"cache", name}}, s.*(f.field));
  }
  out.family("hypha_cache_entries", "gauge", "Live entries this node holds");
  for (const auto& [name, s] : stats) out.sample("hypha_cache_entries", {{"node", self}, {"cache", name}}, s.local_size);
}

void registry_names(Out& out, const Context& ctx) {
  if (!ctx.opts.services.registry) return;
  const auto st = registry::stats(ctx.node.runtime(), ctx.opts.services.registry->name);
  out.family("hypha_registry_names", "gauge", "Names in the cluster registry (this node's replica)");
  out.sample("hypha_registry_names", {{"node", std::string(ctx.node.name().text())}}, st.names);
}

}  // namespace

void add_metrics_route(httplib::Server& server, const Context& ctx) {
  server.Get("/metrics", ctx.read("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    Out out;
    peers(out, ctx.node);
    runtime(out, ctx.node);
    tasks_by_status(out, ctx);
    caches(out, ctx);
    registry_names(out, ctx);
    res.status = 200;
    res.set_content(metrics::registry().prometheus() + out.str(), "text/plain; version=0.0.4; charset=utf-8");
  }));
}

}  // namespace hypha::http::detail
