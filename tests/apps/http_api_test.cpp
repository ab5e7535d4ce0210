// hyphad's HTTP API on a real node, through a real HTTP client: /health, /api/nodes following a
// peer up and down, JSON errors (404, 413), the read token, and a client that sends nothing
// being dropped.
#include "http_api.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "hypha/cluster/cache.hpp"
#include "hypha/cluster/pg.hpp"
#include "hypha/cluster/registry.hpp"
#include "hypha/term/text.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string term_string(const Term& t) {
  std::string out;
  format_term(out, t);
  return out;
}

class HttpApi : public ::testing::Test {
 protected:
  std::uint16_t epmd = testing::free_port();

  static json get(std::uint16_t port, const std::string& path, int want, const httplib::Headers& h = {}) {
    httplib::Client cli("127.0.0.1", port);
    auto res = cli.Get(path.c_str(), h);
    EXPECT_TRUE(res) << path;
    if (!res) return {};
    EXPECT_EQ(res->status, want) << path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json; charset=utf-8");
    return json::parse(res->body);
  }
  static const json* find_node(const json& nodes, const std::string& name) {
    for (const json& n : nodes["nodes"])
      if (n["name"] == name) return &n;
    return nullptr;
  }
  // True once GET /api/nodes shows an entry for `name` for which `ok` holds (5 s at most).
  static bool nodes_until(std::uint16_t port, const std::string& name, const std::function<bool(const json&)>& ok) {
    return testing::eventually([&] {
      const json j = get(port, "/api/nodes", 200);
      const json* n = find_node(j, name);
      return n && ok(*n);
    }, 5s);
  }
};

TEST_F(HttpApi, HealthAndNodesFollowAPeerUpAndDown) {
  auto a = testing::start_node("ha", epmd);
  auto b = testing::start_node("hb", epmd);
  ASSERT_TRUE(a && b);
  auto api = http::Api::start(*a, {.port = 0});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();
  EXPECT_EQ(get(port, "/health", 200), (json{{"status", "ok"}, {"node", "ha@127.0.0.1"}}));
  const json none = get(port, "/api/nodes", 200);
  EXPECT_EQ(none["self"], "ha@127.0.0.1");
  EXPECT_TRUE(none["nodes"].empty());
  ASSERT_TRUE(a->connect(b->name(), 5s).ok());
  // Up, a hypha peer (its heartbeat hello), with traffic counted.
  ASSERT_TRUE(nodes_until(port, "hb@127.0.0.1", [](const json& n) {
    return n["status"] == "up" && n["kind"] == "hypha" && n["messages_in"].get<std::uint64_t>() > 0 &&
           n["bytes_out"].get<std::uint64_t>() > 0;
  }));
  const json up = *find_node(get(port, "/api/nodes", 200), "hb@127.0.0.1");
  EXPECT_EQ(up["since"].get<std::string>().size(), std::string("2026-12-03T09:06:43.159Z").size());
  b->stop();
  // Down, listed still, since the moment it went.
  ASSERT_TRUE(nodes_until(port, "hb@127.0.0.1", [&](const json& n) {
    return n["status"] == "down" && n["kind"] == "hypha" && n["since"] >= up["since"];
  }));
}

TEST_F(HttpApi, ErrorsAreJsonWithTheirStatus) {
  auto a = testing::start_node("he", epmd);
  ASSERT_TRUE(a);
  auto api = http::Api::start(*a, {.port = 0});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();
  const json missing = get(port, "/api/nope", 404);
  EXPECT_EQ(missing["error"], "not_found");
  EXPECT_EQ(missing["detail"], "no such route: GET /api/nope");
  httplib::Client cli("127.0.0.1", port);
  auto big = cli.Post("/api/tasks", std::string((1u << 20) + 1, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(json::parse(big->body)["error"], "payload_too_large");
  // The server serves on after both.
  EXPECT_EQ(get(port, "/health", 200)["status"], "ok");
  // A second API cannot take the same port: a clear error, the first serves on.
  auto again = http::Api::start(*a, {.port = port});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos);
  EXPECT_EQ(get(port, "/health", 200)["status"], "ok");
}

TEST_F(HttpApi, AReadTokenGuardsReadsButNotHealth) {
  auto a = testing::start_node("hr", epmd);
  ASSERT_TRUE(a);
  auto api = http::Api::start(*a, {.port = 0, .token = "admin-secret", .read_token = "reader"});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();
  EXPECT_EQ(get(port, "/api/nodes", 401)["error"], "unauthorized");
  EXPECT_EQ(get(port, "/api/nodes", 401, {{"Authorization", "Bearer readerX"}})["error"], "unauthorized");
  EXPECT_EQ(get(port, "/api/nodes", 401, {{"Authorization", "reader"}})["error"], "unauthorized");
  EXPECT_EQ(get(port, "/api/nodes", 200, {{"Authorization", "Bearer reader"}})["self"], "hr@127.0.0.1");
  EXPECT_EQ(get(port, "/api/nodes", 200, {{"Authorization", "Bearer admin-secret"}})["self"], "hr@127.0.0.1");
  EXPECT_EQ(get(port, "/health", 200)["status"], "ok");  // load balancers ask without a token
}

// A call with a body (POST) or without (DELETE), with the admin token unless told otherwise.
struct Call {
  int status = 0;
  json body;
};
Call call(std::uint16_t port, const std::string& method, const std::string& path, const std::string& body = "",
          const std::string& token = "admin") {
  httplib::Client cli("127.0.0.1", port);
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  auto res = method == "POST" ? cli.Post(path.c_str(), h, body, "application/json") : cli.Delete(path.c_str(), h);
  if (!res) return {};
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json; charset=utf-8") << path;
  return {res->status, json::parse(res->body, nullptr, false)};
}

// /api/tasks against the double of the tasks service: every answer and status of the routes.
TEST_F(HttpApi, TasksAreListedStartedAndStoppedWithTheirStatusCodes) {
  auto a = testing::start_node("ht", epmd);
  ASSERT_TRUE(a);
  auto fake = std::make_shared<tasks::Fake>();
  auto exports = std::make_shared<Exports>();
  exports->add("timer", "sleep", [](std::int64_t) { return Term(Atom("ok")); });
  auto api = http::Api::start(*a, {.port = 0, .token = "admin", .tasks = fake, .exports = exports});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();
  EXPECT_EQ(get(port, "/api/tasks", 200), (json{{"tasks", json::array()}}));

  const std::string job = R"({"name":"job1","module":"timer","function":"sleep","args":"[1000]","restart":false})";
  EXPECT_EQ(call(port, "POST", "/api/tasks", job, "").status, 401);
  EXPECT_EQ(call(port, "POST", "/api/tasks", job, "wrong").body["error"], "unauthorized");
  EXPECT_TRUE(fake->started().empty());  // refused before anything started
  const Call made = call(port, "POST", "/api/tasks", job);
  ASSERT_EQ(made.status, 201) << made.body.dump();
  EXPECT_EQ(made.body["name"], "job1");
  EXPECT_EQ(made.body["node"], "ht@127.0.0.1");
  EXPECT_EQ(made.body["pid"].get<std::string>().rfind("<'ht@127.0.0.1'.", 0), 0u) << made.body.dump();
  ASSERT_EQ(fake->started().size(), 1u);
  EXPECT_EQ(fake->started()[0].args, Term::list({Term(1000)}));
  EXPECT_FALSE(fake->started()[0].opts.restart);
  // The same name while it runs: 409 with the running task.
  const Call dup = call(port, "POST", "/api/tasks", job);
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(dup.body["error"], "running");
  EXPECT_EQ(dup.body["task"]["pid"], made.body["pid"]);
  // Bad requests name their field.
  const std::vector<std::pair<std::string, std::string>> bad{
      {"{not json", "body"},
      {"[1,2]", "body"},
      {R"({"name":"j","function":"sleep","args":"[1]"})", "module"},
      {R"({"name":"j","module":"timer","function":7,"args":"[1]"})", "function"},
      {R"({"name":"j","module":"timer","function":"sleep","args":"[1"})", "args"},
      {R"({"name":"j","module":"timer","function":"sleep","args":"ok"})", "args"},
      {R"({"name":"j","module":"timer","function":"sleep","args":[1]})", "args"},
      {R"({"name":"j","module":"timer","function":"sleep","args":"[1]","restart":"yes"})", "restart"},
      {R"({"name":"","module":"timer","function":"sleep","args":"[1]"})", "name"},
      {R"({"name":"j","module":"timer","function":"sleep","args":"[1]","colour":"red"})", "colour"},
      {R"({"name":"j","module":"timer","function":"slep","args":"[1]"})", "function"},
      {R"({"name":"j","module":"timer","function":"sleep","args":"[1, 2]"})", "function"},
      {R"({"name":"j","module":"timer","function":"sleep","args":"[1]","callback":"nocolon"})", "callback"},
  };
  for (const auto& [body, field] : bad) {
    const Call c = call(port, "POST", "/api/tasks", body);
    EXPECT_EQ(c.status, 400) << body;
    EXPECT_EQ(c.body["error"], "bad_request") << body;
    EXPECT_EQ(c.body["field"], field) << body << " " << c.body.dump();
    EXPECT_FALSE(c.body["detail"].get<std::string>().empty());
  }
  EXPECT_EQ(fake->started().size(), 1u);
  // Unnamed: a UUID; restart and callback passed on.
  const Call anon = call(port, "POST", "/api/tasks",
                         R"({"module":"timer","function":"sleep","args":"[5]","restart":true,"callback":"m:f"})");
  ASSERT_EQ(anon.status, 201) << anon.body.dump();
  EXPECT_EQ(anon.body["name"].get<std::string>().size(), 36u);
  EXPECT_TRUE(fake->started()[1].opts.restart);
  EXPECT_EQ(fake->started()[1].opts.callback, (std::pair{Atom("m"), Atom("f")}));

  // Listed, then one by one with progress and result.
  fake->set_progress(Term::binary("job1"), 40);
  const json all = get(port, "/api/tasks", 200);
  ASSERT_EQ(all["tasks"].size(), 2u);
  const json one = get(port, "/api/tasks/job1", 200);
  EXPECT_EQ(one["status"], "running");
  EXPECT_EQ(one["progress"], 40);
  EXPECT_EQ(one["node"], "ht@127.0.0.1");
  EXPECT_EQ(get(port, "/api/tasks/" + anon.body["name"].get<std::string>(), 200)["progress"], nullptr);
  EXPECT_EQ(get(port, "/api/tasks/nope", 404)["error"], "not_found");
  fake->finish(Term::binary("job1"), Term::tuple({Term(Atom("ok")), Term::binary("é")}));
  const json done = get(port, "/api/tasks/job1", 200);
  EXPECT_EQ(done["status"], "done");
  EXPECT_EQ(done["result"], "{ok,<<\"é\"/utf8>>}");

  // DELETE: a running one is stopped (then failed, reason stopped), an ended one forgotten.
  const std::string anon_path = "/api/tasks/" + anon.body["name"].get<std::string>();
  EXPECT_EQ(call(port, "DELETE", anon_path, "", "").status, 401);
  const Call stopped = call(port, "DELETE", anon_path);
  EXPECT_EQ(stopped.status, 200);
  EXPECT_EQ(stopped.body["status"], "stopped");
  const json failed = get(port, anon_path, 200);
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["reason"], "stopped");
  EXPECT_EQ(call(port, "DELETE", "/api/tasks/job1").body["status"], "forgotten");
  EXPECT_EQ(call(port, "DELETE", "/api/tasks/job1").status, 404);
  EXPECT_EQ(get(port, "/api/tasks/job1", 404)["error"], "not_found");

  // While the orchestrator moves: 503.
  fake->set_unavailable(true);
  EXPECT_EQ(get(port, "/api/tasks", 503)["error"], "unavailable");
  EXPECT_EQ(call(port, "POST", "/api/tasks", job).status, 503);
  EXPECT_EQ(call(port, "DELETE", anon_path).status, 503);
}

TEST_F(HttpApi, WithoutTasksOnTheNodeTheTaskRoutesSayUnavailable) {
  auto a = testing::start_node("hn", epmd);
  ASSERT_TRUE(a);
  auto api = http::Api::start(*a, {.port = 0});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();
  EXPECT_EQ(get(port, "/api/tasks", 503)["error"], "unavailable");
  EXPECT_EQ(call(port, "POST", "/api/tasks", "{}", "").status, 503);
}

// A node with the registry, pg, a replicated cache: what /api/registry, /api/groups and
// /api/caches read.
std::unique_ptr<Node> cluster_node(const std::string& alive, std::uint16_t epmd, const cluster::Options& co) {
  NodeOptions o;
  o.name = alive + "@127.0.0.1";
  o.cookie = "cookie";
  o.epmd_port = epmd;
  o.threads = 2;
  auto n = start_cluster_node(o, {}, co);
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error());
  return n.ok() ? std::move(*n) : nullptr;
}

// Two such nodes, connected (either null if something failed, with the failure reported).
std::pair<std::unique_ptr<Node>, std::unique_ptr<Node>> connected_pair(const std::string& a, const std::string& b,
                                                                        std::uint16_t epmd, const cluster::Options& co) {
  auto na = cluster_node(a, epmd, co);
  auto nb = cluster_node(b, epmd, co);
  if (na && nb) EXPECT_TRUE(na->connect(nb->name(), 5s).ok());
  return {std::move(na), std::move(nb)};
}

TEST_F(HttpApi, RegistryGroupsCachesAndProcessesOfTheCluster) {
  cluster::Options co;
  co.registry = registry::Options{};
  co.caches.push_back(cache::Options{.name = Atom("c1"), .mode = cache::Mode::Replicated});
  auto pair = connected_pair("hca", "hcb", epmd, co);  // (no structured binding: lambdas capture these)
  auto& a = pair.first;
  auto& b = pair.second;
  ASSERT_TRUE(a && b);
  auto api = http::Api::start(*a, {.port = 0, .services = co});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();

  // Names registered on the other node, seen here.
  const Pid w1 = b->runtime().spawn([](Process& self) -> Task<> { co_await self.receive(); });
  const Pid w2 = b->runtime().spawn([](Process& self) -> Task<> { co_await self.receive(); });
  ASSERT_TRUE(registry::register_name(b->runtime(), Term::tuple({Term(Atom("job")), Term(1)}), w1, Term(Atom("m"))).ok());
  ASSERT_TRUE(registry::register_name(b->runtime(), Term::binary("two"), w2).ok());
  ASSERT_TRUE(testing::eventually([&] { return get(port, "/api/registry", 200)["count"] == 2; }, 5s));
  const json reg = get(port, "/api/registry", 200);
  EXPECT_EQ(reg["truncated"], false);
  ASSERT_EQ(reg["names"].size(), 2u);
  EXPECT_EQ(reg["names"][0]["name"], "{job,1}");
  EXPECT_EQ(reg["names"][0]["node"], "hcb@127.0.0.1");
  EXPECT_EQ(reg["names"][0]["meta"], "m");
  EXPECT_EQ(reg["names"][1]["name"], "two");
  const json one = get(port, "/api/registry?limit=1", 200);
  EXPECT_EQ(one["truncated"], true);
  EXPECT_EQ(one["names"].size(), 1u);
  EXPECT_EQ(get(port, "/api/registry?limit=0", 400)["field"], "limit");
  EXPECT_EQ(get(port, "/api/registry?limit=x", 400)["field"], "limit");

  // A pg group with members on both nodes.
  ASSERT_TRUE(pg::join(b->runtime(), pg::default_scope(), Term::binary("workers"), {w1, w2}).ok());
  const Pid w3 = a->runtime().spawn([](Process& self) -> Task<> { co_await self.receive(); });
  ASSERT_TRUE(pg::join(a->runtime(), pg::default_scope(), Term::binary("workers"), {w3}).ok());
  ASSERT_TRUE(testing::eventually([&] {
    const json g = get(port, "/api/groups", 200);
    return g["scopes"].size() == 1 && g["scopes"][0]["groups"].size() == 1 &&
           g["scopes"][0]["groups"][0]["members"].size() == 3;
  }, 5s));
  const json groups = get(port, "/api/groups", 200);
  EXPECT_EQ(groups["scopes"][0]["scope"], "pg");
  EXPECT_EQ(groups["scopes"][0]["groups"][0]["group"], "workers");
  EXPECT_EQ(groups["scopes"][0]["groups"][0]["nodes"], (json{{"hca@127.0.0.1", 1}, {"hcb@127.0.0.1", 2}}));

  // The cache: size, and each member's counters summed.
  EXPECT_EQ(get(port, "/api/caches", 200), (json{{"caches", json::array({json{{"name", "c1"}, {"mode", "replicated"}}})}}));
  const cache::Cache c1(Atom("c1"));
  ASSERT_TRUE(testing::eventually([&] { return c1.put(b->runtime(), Term(1), Term(2)).ok(); }, 5s));
  ASSERT_TRUE(c1.put(b->runtime(), Term(3), Term(4)).ok());
  (void)c1.get(b->runtime(), Term(1));   // a hit on b
  (void)c1.get(b->runtime(), Term(99));  // a miss on b
  (void)c1.get(a->runtime(), Term(1));   // a hit here, once it arrived
  ASSERT_TRUE(testing::eventually([&] { return get(port, "/api/caches/c1", 200)["size"] == 2; }, 5s));
  const json cache = get(port, "/api/caches/c1", 200);
  EXPECT_EQ(cache["mode"], "replicated");
  ASSERT_EQ(cache["nodes"].size(), 2u);
  EXPECT_GE(cache["hits"].get<int>(), 1);
  EXPECT_EQ(cache["misses"].get<int>() + cache["hits"].get<int>(), 3);
  EXPECT_EQ(get(port, "/api/caches/nope", 404)["error"], "not_found");

  // Processes: a process with a long queue comes first, here and on the other node.
  const Pid stuck = a->runtime().spawn([](Process& self) -> Task<> {
    co_await self.receive([](const Term& m) { return m.is_atom(Atom("never")); });
  });
  for (int i = 0; i < 250; ++i) a->runtime().send(stuck, Term(i));
  const json top = get(port, "/api/processes?top=3", 200);
  EXPECT_EQ(top["node"], "hca@127.0.0.1");
  EXPECT_EQ(top["by"], "queue");
  ASSERT_EQ(top["processes"].size(), 3u);
  EXPECT_GT(top["total"].get<int>(), 3);
  EXPECT_EQ(top["processes"][0]["pid"], term_string(Term(stuck)));
  EXPECT_EQ(top["processes"][0]["queue"], 250);
  const Pid stuck_b = b->runtime().spawn([](Process& self) -> Task<> {
    co_await self.receive([](const Term& m) { return m.is_atom(Atom("never")); });
  });
  for (int i = 0; i < 40; ++i) b->runtime().send(stuck_b, Term(i));
  const json remote = get(port, "/api/processes?node=hcb@127.0.0.1&by=queue&top=1", 200);
  EXPECT_EQ(remote["node"], "hcb@127.0.0.1");
  ASSERT_EQ(remote["processes"].size(), 1u);
  EXPECT_EQ(remote["processes"][0]["queue"], 40);
  EXPECT_EQ(get(port, "/api/processes?by=memory&top=2", 200)["processes"].size(), 2u);
  EXPECT_EQ(get(port, "/api/processes?node=nobody@127.0.0.1", 404)["error"], "not_found");
  EXPECT_EQ(get(port, "/api/processes?by=size", 400)["field"], "by");
  EXPECT_EQ(get(port, "/api/processes?top=5000", 400)["field"], "top");
}

// /metrics: every line is a comment or a sample of the text format; requests are counted by
// route and status; peers, processes, the cache and the registry are read at the scrape.
TEST_F(HttpApi, MetricsAreInPrometheusTextFormat) {
  cluster::Options co;
  co.registry = registry::Options{};
  co.caches.push_back(cache::Options{.name = Atom("mc"), .mode = cache::Mode::Local});
  auto pair = connected_pair("hma", "hmb", epmd, co);  // (no structured binding: lambdas capture these)
  auto& a = pair.first;
  auto& b = pair.second;
  ASSERT_TRUE(a && b);
  auto api = http::Api::start(*a, {.port = 0, .read_token = "r", .services = co});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();
  const cache::Cache mc(Atom("mc"));
  ASSERT_TRUE(mc.put(a->runtime(), Term(1), Term(1)).ok());
  (void)mc.get(a->runtime(), Term(1));
  (void)mc.get(a->runtime(), Term(2));
  get(port, "/health", 200);
  get(port, "/health", 200);
  get(port, "/api/nope", 404);
  get(port, "/api/nodes", 401);
  httplib::Client cli("127.0.0.1", port);
  EXPECT_EQ(cli.Get("/metrics")->status, 401);
  auto res = cli.Get("/metrics", {{"Authorization", "Bearer r"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = res->body;
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? ([-+]?[0-9.eE+-]+|[+-]Inf|NaN)$)");
  std::istringstream lines(text);
  std::string line;
  std::size_t samples = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    ++samples;
  }
  EXPECT_GT(samples, 20u);
  const std::string n = R"(node="hma@127.0.0.1")";
  for (const std::string& want : {
           R"(hypha_http_requests_total{method="GET",)" + n + R"(,route="/health",status="200"} 2)",
           R"(hypha_http_requests_total{method="GET",)" + n + R"(,route="unmatched",status="404"} 1)",
           R"(hypha_http_requests_total{method="GET",)" + n + R"(,route="/api/nodes",status="401"} 1)",
           R"(hypha_cache_hits_total{)" + n + R"(,cache="mc"} 1)",
           R"(hypha_cache_misses_total{)" + n + R"(,cache="mc"} 1)",
           R"(hypha_cache_entries{)" + n + R"(,cache="mc"} 1)",
           R"(hypha_peer_up{)" + n + R"(,peer="hmb@127.0.0.1",kind="hypha"} 1)",
           R"(hypha_registry_names{)" + n + R"(} 0)",
       })
    EXPECT_NE(text.find(want + "\n"), std::string::npos) << want;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(hypha_processes\{node="hma@127\.0\.0\.1"\} ([0-9]+))")));
  EXPECT_GT(std::stoi(m[1]), 5);
  ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(hypha_peer_messages_in_total\{node="hma@127\.0\.0\.1",peer="hmb@127\.0\.0\.1"\} ([0-9]+))")));
  EXPECT_GT(std::stoi(m[1]), 0);
}

// Stopping does not wait for idle keep-alive connections (cpp-httplib alone would, for their
// 5 s timeout): the client's connection is closed and stop() returns at once.
TEST_F(HttpApi, StopClosesIdleKeepAliveConnectionsAtOnce) {
  auto a = testing::start_node("hk", epmd);
  ASSERT_TRUE(a);
  auto api = http::Api::start(*a, {.port = 0});
  ASSERT_TRUE(api.ok()) << api.error();
  httplib::Client cli("127.0.0.1", (*api)->port());
  cli.set_keep_alive(true);
  auto res = cli.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const auto t0 = Clock::now();
  (*api)->stop();
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_FALSE(cli.Get("/health"));  // nothing listens any more
}

// A client that connects and sends nothing is dropped after the read timeout (5 s), and others
// are served meanwhile.
TEST_F(HttpApi, AClientThatSendsNothingIsDropped) {
  auto a = testing::start_node("hs", epmd);
  ASSERT_TRUE(a);
  auto api = http::Api::start(*a, {.port = 0});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::send(fd, "GET /hea", 8, 0), 8);  // half a request line, then silence
  const auto t0 = Clock::now();
  EXPECT_EQ(get(port, "/health", 200)["status"], "ok");
  timeval tv{.tv_sec = 15, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[512];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
  }
  const auto waited = Clock::now() - t0;
  ::close(fd);
  EXPECT_EQ(n, 0) << "the server should close the connection";
  EXPECT_GE(waited, 4s);
  EXPECT_LT(waited, 12s);
}

}  // namespace
}  // namespace hypha
