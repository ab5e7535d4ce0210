// The cluster's state over HTTP (docs/apps.md): the registry's names, the pg scopes' groups,
// the caches' sizes and every member's counters, and the largest processes of any node.
//
//   GET /api/registry[?limit=N]          {"count", "truncated", "names":[{"name","pid","node","meta"}]}
//   GET /api/groups                      {"scopes":[{"scope","groups":[{"group","members":[pid],"nodes":{node: n}}]}]}
//   GET /api/caches                      {"caches":[{"name","mode"}]}
//   GET /api/caches/NAME                 {"name","mode","size","hits","misses","nodes":[{"node",...}]}
//   GET /api/processes[?node=N&top=20&by=queue|memory]   {"node","by","total","processes":[...]}
#include <algorithm>
#include <charconv>
#include <map>

#include "http_common.hpp"
#include "hypha/cluster/cache.hpp"
#include "hypha/cluster/pg.hpp"
#include "hypha/cluster/pubsub.hpp"
#include "hypha/cluster/registry.hpp"
#include "hypha/otp/kernel.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/term/match.hpp"

namespace hypha::http::detail {

namespace {

using namespace std::chrono_literals;
constexpr auto kPeerTimeout = 2000ms;  // a call to another node for its part of an answer
constexpr std::size_t kDefaultLimit = 1000, kMaxLimit = 100000, kDefaultTop = 20, kMaxTop = 1000;

// An optional non-negative integer query parameter within 1..max; a 400 written when it is not.
std::optional<std::size_t> count_param(const httplib::Request& req, httplib::Response& res, const char* key,
                                       std::size_t fallback, std::size_t max) {
  if (!req.has_param(key)) return fallback;
  const std::string v = req.get_param_value(key);
  std::size_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 1 || n > max) {
    send_error(res, 400, "bad_request", std::string(key) + ": an integer of 1.." + std::to_string(max) + ", got " + v,
               {{"field", key}});
    return std::nullopt;
  }
  return n;
}

const char* status_text(ProcessStatus s) {
  switch (s) {
    case ProcessStatus::Runnable: return "runnable";
    case ProcessStatus::Running: return "running";
    case ProcessStatus::Exiting: return "exiting";
    default: return "waiting";
  }
}

json process_json(const Term& pid, const Term& name, std::int64_t queue, std::int64_t memory, const Term& status,
                  const Term& current) {
  return json{{"pid", term_text(pid)},
              {"name", name.is_atom() && !name.is_atom(Atom("undefined")) ? json(term_text(name)) : json(nullptr)},
              {"queue", queue},
              {"memory", memory},
              {"status", status.is_atom() ? json(term_text(status)) : json(nullptr)},
              {"current", current.is_nil() ? json(nullptr) : json(term_text(current))}};
}

// A BEAM node's processes, by two calls: processes/0, then process_info/2 of each through
// lists:zipwith/3 with the export fun erlang:process_info/2.
std::optional<std::pair<std::size_t, std::vector<json>>> beam_processes(Runtime& rt, Atom node, bool by_queue,
                                                                       std::size_t top) {
  const Term pids = rpc::call(rt, node, Atom("erlang"), Atom("processes"), Term::list({}), kPeerTimeout);
  if (!pids.is_proper_list() && !pids.is_nil()) return std::nullopt;
  const auto list = pids.is_nil() ? std::vector<Term>{} : pids.list_elements();
  const Term items = Term::list({Term(Atom("registered_name")), Term(Atom("message_queue_len")), Term(Atom("memory")),
                                 Term(Atom("status")), Term(Atom("current_function"))});
  const Term fun = Term(ExportFun{Atom("erlang"), Atom("process_info"), 2});
  const Term infos = rpc::call(rt, node, Atom("lists"), Atom("zipwith"),
                               Term::list({fun, pids, Term::list(std::vector<Term>(list.size(), items))}), kPeerTimeout);
  if (!infos.is_proper_list() && !infos.is_nil()) return std::nullopt;
  struct Row {
    std::int64_t queue = 0, memory = 0;
    json j;
  };
  std::vector<Row> rows;
  const auto all = infos.is_nil() ? std::vector<Term>{} : infos.list_elements();
  for (std::size_t i = 0; i < all.size() && i < list.size(); ++i) {
    const Term& info = all[i];
    if (!info.is_proper_list()) continue;  // undefined: it ended meanwhile
    Term name = Term(Atom("undefined")), status, current = Term::list({});
    std::int64_t queue = 0, memory = 0;
    for (const Term& kv : info.list_elements()) {
      if (!kv.is_tuple() || kv.tuple_size() != 2 || !kv[0].is_atom()) continue;
      const Atom k = kv[0].atom_value();
      if (k == Atom("registered_name") && kv[1].is_atom()) name = kv[1];
      else if (k == Atom("message_queue_len")) queue = from_term<std::int64_t>(kv[1]).value_or(0);
      else if (k == Atom("memory")) memory = from_term<std::int64_t>(kv[1]).value_or(0);
      else if (k == Atom("status")) status = kv[1];
      else if (k == Atom("current_function") && kv[1].is_tuple() && kv[1].tuple_size() == 3)
        current = Term::binary(term_text(kv[1][0]) + ":" + term_text(kv[1][1]) + "/" + term_text(kv[1][2]));
    }
    rows.push_back(Row{queue, memory, process_json(list[i], name, queue, memory, status, current)});
  }
  const std::size_t total = rows.size();
  const std::size_t keep = std::min(top, rows.size());
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(keep), rows.end(),
                    [by_queue](const Row& a, const Row& b) {
                      const auto ka = by_queue ? a.queue : a.memory, kb = by_queue ? b.queue : b.memory;
                      return ka != kb ? ka > kb : a.memory > b.memory;
                    });
  std::vector<json> out;
  for (std::size_t i = 0; i < keep; ++i) out.push_back(std::move(rows[i].j));
  return std::pair{total, std::move(out)};
}

// Each cache member's counters: this node's directly, the other hypha nodes' by rpc.
json cache_nodes(Node& node, const cache::Cache& c) {
  json nodes = json::array();
  const auto add = [&](Atom n, const Term& stats) {
    if (!stats.is_map()) return;
    json j{{"node", n.text()}};
    for (const auto& [k, v] : stats.map_entries()) {
      if (!k.is_atom()) continue;
      if (v.is_integer()) j[std::string(k.atom_value().text())] = from_term<std::int64_t>(v).value_or(0);
      else if (v.is_atom(Atom("true")) || v.is_atom(Atom("false"))) j[std::string(k.atom_value().text())] = v.is_atom(Atom("true"));
    }
    nodes.push_back(std::move(j));
  };
  if (auto s = c.stats(node.runtime())) add(node.name(), s->to_term());
  std::vector<Atom> peers;
  for (const PeerInfo& p : node.peers())
    if (p.hypha && !p.hidden) peers.push_back(p.name);
  if (!peers.empty()) {
    const Term r = rpc::multicall(node.runtime(), peers, Atom("hypha_cache"), Atom("stats"), Term::list({Term(c.name())}),
                                  kPeerTimeout);
    if (r.is_tuple() && r.tuple_size() == 2 && r[0].is_proper_list()) {
      // Results come in the order of the nodes that answered: those not among BadNodes.
      std::vector<Atom> answered;
      const auto bad = r[1].is_proper_list() ? r[1].list_elements() : std::vector<Term>{};
      for (Atom p : peers)
        if (std::none_of(bad.begin(), bad.end(), [&](const Term& b) { return b.is_atom(p); })) answered.push_back(p);
      const auto results = r[0].list_elements();
      for (std::size_t i = 0; i < results.size() && i < answered.size(); ++i) add(answered[i], results[i]);
    }
  }
  return nodes;
}

}  // namespace

json names_json(Runtime& rt, Atom registry, std::size_t limit) {
  const auto all = registry::select(rt, Term(Atom("_")), registry);
  json names = json::array();
  for (std::size_t i = 0; i < all.size() && i < limit; ++i)
    names.push_back(json{{"name", term_text(all[i].name)},
                         {"pid", term_text(Term(all[i].pid))},
                         {"node", all[i].pid.node.text()},
                         {"meta", term_text(all[i].meta)}});
  return json{{"count", all.size()}, {"truncated", all.size() > limit}, {"names", std::move(names)}};
}

json groups_json(Runtime& rt, const cluster::Options& services, bool with_members) {
  std::vector<Atom> scopes = services.pg_scopes;
  if (!services.pubsubs.empty() || services.events) scopes.push_back(pubsub::scope());
  std::sort(scopes.begin(), scopes.end(), [](Atom a, Atom b) { return a.text() < b.text(); });
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
  json out = json::array();
  for (Atom scope : scopes) {
    json groups = json::array();
    for (const Term& g : pg::which_groups(rt, scope)) {
      json members = json::array();
      std::map<std::string, int> per_node;
      for (const Pid& p : pg::get_members(rt, scope, g)) {
        if (with_members) members.push_back(term_text(Term(p)));
        ++per_node[std::string(p.node.text())];
      }
      json group{{"group", term_text(g)}, {"nodes", per_node}};
      if (with_members) group["members"] = std::move(members);
      groups.push_back(std::move(group));
    }
    out.push_back(json{{"scope", scope.text()}, {"groups", std::move(groups)}});
  }
  return json{{"scopes", std::move(out)}};
}

void add_cluster_routes(httplib::Server& server, const Context& ctx) {
  Node* node = &ctx.node;
  const cluster::Options& services = ctx.opts.services;

  server.Get("/api/registry", ctx.read("/api/registry", [node, &services](const httplib::Request& req, httplib::Response& res) {
    if (!services.registry) return send_error(res, 503, "unavailable", "this node runs no cluster registry ([registry])");
    auto limit = count_param(req, res, "limit", kDefaultLimit, kMaxLimit);
    if (!limit) return;
    send_json(res, 200, names_json(node->runtime(), services.registry->name, *limit));
  }));

  server.Get("/api/groups", ctx.read("/api/groups", [node, &services](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, groups_json(node->runtime(), services, true));
  }));

  server.Get("/api/caches", ctx.read("/api/caches", [&services](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& c : services.caches) list.push_back(json{{"name", c.name.text()}, {"mode", cache::mode_name(c.mode)}});
    send_json(res, 200, json{{"caches", std::move(list)}});
  }));

  server.Get(R"(/api/caches/([^/]+))", ctx.read("/api/caches/NAME", [node, &services](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1].str();
    const auto it = std::find_if(services.caches.begin(), services.caches.end(),
                                 [&](const cache::Options& c) { return c.name.text() == name; });
    if (it == services.caches.end()) return send_error(res, 404, "not_found", "no cache named " + name + " on this node");
    const cache::Cache c(it->name);
    json body{{"name", name}, {"mode", cache::mode_name(it->mode)}};
    auto size = c.size(node->runtime());
    body["size"] = size ? json(*size) : json(nullptr);
    json nodes = cache_nodes(*node, c);
    std::int64_t hits = 0, misses = 0;
    for (const json& n : nodes) {
      hits += n.value("hits", std::int64_t{0});
      misses += n.value("misses", std::int64_t{0});
    }
    body["hits"] = hits;
    body["misses"] = misses;
    body["nodes"] = std::move(nodes);
    send_json(res, 200, body);
  }));

  server.Get("/api/processes", ctx.read("/api/processes", [node](const httplib::Request& req, httplib::Response& res) {
    auto top = count_param(req, res, "top", kDefaultTop, kMaxTop);
    if (!top) return;
    const std::string by = req.has_param("by") ? req.get_param_value("by") : "queue";
    if (by != "queue" && by != "memory")
      return send_error(res, 400, "bad_request", "by: queue or memory, got " + by, {{"field", "by"}});
    const bool by_queue = by == "queue";
    Atom target = node->name();
    if (req.has_param("node")) {
      auto a = Atom::make(req.get_param_value("node"));
      if (!a) return send_error(res, 400, "bad_request", "node: not a node name", {{"field", "node"}});
      target = *a;
    }
    json body{{"node", target.text()}, {"by", by}};
    if (target == node->name()) {
      const kernel::Top t = kernel::top_processes(node->runtime(), by_queue ? kernel::TopBy::Queue : kernel::TopBy::Memory, *top);
      json rows = json::array();
      for (const auto& r : t.rows)
        rows.push_back(process_json(Term(r.pid), r.name ? Term(*r.name) : Term(Atom("undefined")),
                                    static_cast<std::int64_t>(r.queue), static_cast<std::int64_t>(r.memory),
                                    Term(Atom(status_text(r.status))), Term::list({})));
      body["total"] = t.total;
      body["processes"] = std::move(rows);
      return send_json(res, 200, body);
    }
    const auto peers = node->peers();
    const auto peer = std::find_if(peers.begin(), peers.end(), [&](const PeerInfo& p) { return p.name == target; });
    if (peer == peers.end()) return send_error(res, 404, "not_found", "not connected to " + std::string(target.text()));
    if (peer->hypha) {
      const Term r = rpc::call(node->runtime(), target, Atom("hypha_node"), Atom("processes"),
                               Term::list({Term(Atom(by)), Term(static_cast<std::int64_t>(*top))}), kPeerTimeout);
      if (!r.is_tuple() || r.tuple_size() != 2 || !r[0].is_integer() || !(r[1].is_proper_list() || r[1].is_nil()))
        return send_error(res, 502, "bad_gateway", "the node answered " + term_text(r));
      json rows = json::array();
      if (r[1].is_proper_list())
        for (const Term& e : r[1].list_elements())
          if (e.is_tuple() && e.tuple_size() == 5)
            rows.push_back(process_json(e[0], e[1], from_term<std::int64_t>(e[2]).value_or(0),
                                        from_term<std::int64_t>(e[3]).value_or(0), e[4], Term::list({})));
      body["total"] = from_term<std::int64_t>(r[0]).value_or(0);
      body["processes"] = std::move(rows);
      return send_json(res, 200, body);
    }
    auto beam = beam_processes(node->runtime(), target, by_queue, *top);
    if (!beam) return send_error(res, 502, "bad_gateway", "the node did not answer its process list");
    body["total"] = beam->first;
    body["processes"] = std::move(beam->second);
    send_json(res, 200, body);
  }));
}

}  // namespace hypha::http::detail
