// The live dashboard's feed: event maps as JSON, the Hub (numbering, what a new page gets, a
// stream too slow for the events kept), and on two real nodes the event stream (GET /api/events)
// starting with the cluster's state and then carrying a task's progress as it runs, each node's
// figures with the round trip of its link; the page itself; a stop that ends open streams at once.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "dashboard.hpp"
#include "http_api.hpp"
#include "hypha/cluster/events.hpp"
#include "hypha/cluster/tasks.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using http::detail::Hub;

TEST(Dashboard, EventMapsBecomeJsonAsThePageReadsThem) {
  const Term e = events::map({{"kind", Term(Atom("task"))},
                              {"name", Term::binary("job1")},
                              {"progress", Term(40)},
                              {"pid", Term(Atom("undefined"))},
                              {"started", Term(std::int64_t{1796300000123})},
                              {"ended", Term(0)},
                              {"ok", Term(Atom("true"))},
                              {"id", Term::tuple({Term(Atom("hypha_task")), Term::binary("x")})},
                              {"links", Term::list({events::map({{"peer", Term(Atom("b@h"))}, {"rtt_us", Term(250)}})})}});
  const json j = http::detail::event_json(e);
  EXPECT_EQ(j["kind"], "task");
  EXPECT_EQ(j["name"], "job1");
  EXPECT_EQ(j["progress"], 40);
  EXPECT_TRUE(j["pid"].is_null());
  EXPECT_EQ(j["started"], "2026-12-03T12:13:20.123Z");
  EXPECT_TRUE(j["ended"].is_null());  // 0: not yet
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["id"], "{hypha_task,<<\"x\">>}");
  EXPECT_EQ(j["links"], (json::array({{{"peer", "b@h"}, {"rtt_us", 250}}})));
  EXPECT_EQ(http::detail::event_json(Term::list({})), json::array());
}

TEST(Dashboard, ATasksProgressUpdatesItsLatestLineInTheHistoryANewStateIsANewLine) {
  Hub hub;
  const auto task = [](const char* name, const char* status, int progress) {
    return json{{"kind", "task"}, {"name", name}, {"status", status}, {"node", "a"}, {"progress", progress}};
  };
  hub.push(task("t", "running", 10));
  const json first_at = hub.state()["history"][0]["at"];
  hub.push({{"kind", "node"}, {"node", "a"}, {"peer", "b"}, {"status", "up"}});
  hub.push(task("t", "running", 50));
  hub.push(task("u", "running", 5));
  hub.push(task("t", "done", 100));
  hub.push(task("t", "running", 0));  // started again: news (the latest line about t says done)
  const json h = hub.state()["history"];
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h[0]["progress"], 50);  // t's running line, updated where it was
  EXPECT_EQ(h[0]["at"], first_at);   // its time: when it began to run
  EXPECT_EQ(h[1]["kind"], "node");
  EXPECT_EQ(h[2]["name"], "u");
  EXPECT_EQ(h[3]["status"], "done");
  EXPECT_EQ(h[4]["status"], "running");
  EXPECT_EQ(hub.state()["seq"], 6);  // every one of them still numbered, for the streams
}

TEST(Dashboard, TheHubNumbersEventsKeepsTheLatestOfEachNodeAndTellsASlowStreamItLost) {
  Hub hub;
  hub.push({{"kind", "stats"}, {"node", "a"}, {"processes", 1}});
  hub.push({{"kind", "stats"}, {"node", "a"}, {"processes", 2}});
  hub.push({{"kind", "stats"}, {"node", "b"}, {"processes", 7}});
  hub.push({{"kind", "task"}, {"name", "t"}, {"status", "running"}, {"at", "2026-12-03T00:00:00.000Z"}});
  hub.push({{"kind", "groups"}, {"scopes", json::array()}});
  const json s = hub.state();
  EXPECT_EQ(s["seq"], 5);
  ASSERT_EQ(s["stats"].size(), 2u);  // the last of each node only
  EXPECT_EQ(s["stats"][0]["processes"], 2);
  EXPECT_EQ(s["stats"][1]["processes"], 7);
  ASSERT_EQ(s["history"].size(), 1u);  // figures and views are not history
  EXPECT_EQ(s["history"][0]["at"], "2026-12-03T00:00:00.000Z");  // kept when given
  EXPECT_EQ(s["groups"]["seq"], 5);
  EXPECT_TRUE(s["stats"][0].contains("at"));  // stamped when not

  Hub::Batch b = hub.wait(3, 0ms);
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[0].first, 4u);
  EXPECT_EQ(json::parse(b.events[0].second)["name"], "t");
  EXPECT_FALSE(b.lost);
  EXPECT_TRUE(hub.wait(5, 0ms).events.empty());

  // More than it keeps (events 6 .. 4101 kept): a stream still at 4 is told it lost some, not
  // given a gap; one at 5 gets them all.
  for (std::size_t i = 0; i < Hub::kRecent; ++i) hub.push({{"kind", "stats"}, {"node", "a"}});
  EXPECT_TRUE(hub.wait(4, 0ms).lost);
  EXPECT_FALSE(hub.wait(5, 0ms).lost);
  EXPECT_EQ(hub.wait(5, 0ms).events.size(), Hub::kRecent);

  // A waiting stream is woken by the next event (before or after it waits), and by close.
  const auto seq = hub.seq();
  std::thread t([&] { hub.push({{"kind", "node"}}); });
  EXPECT_EQ(hub.wait(seq, 10s).events.size(), 1u);
  t.join();
  std::thread closer([&] { hub.close(); });
  EXPECT_TRUE(hub.wait(hub.seq(), 10s).closed);
  closer.join();
}

// An event stream read on its own thread, each event kept (its `event:` name and its data).
class EventReader {
 public:
  EventReader(std::uint16_t port, std::string path) : cli_("127.0.0.1", port) {
    cli_.set_read_timeout(30s);
    thread_ = std::thread([this, path = std::move(path)] {
      std::string buf;
      auto res = cli_.Get(path.c_str(), [&](const char* data, std::size_t n) {
        buf.append(data, n);
        for (std::size_t end; (end = buf.find("\n\n")) != std::string::npos; buf.erase(0, end + 2)) {
          std::string name = "message", body;
          std::istringstream lines(buf.substr(0, end));
          for (std::string line; std::getline(lines, line);) {
            if (line.rfind("event: ", 0) == 0) name = line.substr(7);
            if (line.rfind("data: ", 0) == 0) body = line.substr(6);
          }
          if (body.empty()) continue;
          std::lock_guard lock(mu_);
          got_.emplace_back(name, json::parse(body));
        }
        return !stop_.load();
      });
      ended_ = true;
    });
  }
  ~EventReader() {
    stop_ = true;
    cli_.stop();
    thread_.join();
  }
  std::vector<std::pair<std::string, json>> events() {
    std::lock_guard lock(mu_);
    return got_;
  }
  bool ended() const { return ended_; }

 private:
  httplib::Client cli_;
  std::mutex mu_;
  std::vector<std::pair<std::string, json>> got_;
  std::atomic<bool> stop_{false}, ended_{false};
  std::thread thread_;
};

std::unique_ptr<Node> events_node(const std::string& alive, std::uint16_t epmd, const cluster::Options& co) {
  NodeOptions o;
  o.name = alive + "@127.0.0.1";
  o.cookie = "cookie";
  o.epmd_port = epmd;
  o.threads = 2;
  kernel::Options k;
  k.exports = std::make_shared<Exports>();
  auto n = start_cluster_node(o, k, co);
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error());
  return n.ok() ? std::move(*n) : nullptr;
}

TEST(Dashboard, TheStreamStartsWithTheStateThenCarriesATasksProgressAndEachNodesFigures) {
  const std::uint16_t epmd = testing::free_port();
  cluster::Options co;
  co.registry = registry::Options{};
  co.supervisor = dsup::Options{};
  co.tasks = tasks::Options{};
  co.events = Atom("Elixir.Hypha.PubSub");
  auto a = events_node("dsa", epmd, co);
  auto b = events_node("dsb", epmd, co);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->connect(b->name(), 5s).ok());
  http::detail::start_reporter(*b, {.pubsub = *co.events});  // b serves no API: figures only
  auto svc = tasks::cluster_service(*co.tasks);
  auto api = http::Api::start(*a, {.port = 0, .tasks = svc, .services = co});
  ASSERT_TRUE(api.ok()) << api.error();
  const std::uint16_t port = (*api)->port();

  // The page is served, and names the stream it reads.
  httplib::Client cli("127.0.0.1", port);
  auto page = cli.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<title>hypha cluster</title>"), std::string::npos);
  EXPECT_NE(page->body.find("/api/events"), std::string::npos);

  // Both nodes' figures reach a's Hub, a's with the round trip of its link to b.
  ASSERT_TRUE(testing::eventually([&] {
    auto r = cli.Get("/api/dashboard");
    if (!r || r->status != 200) return false;
    const json s = json::parse(r->body);
    bool a_links_b = false, b_seen = false;
    for (const json& st : s["stats"]) {
      if (st["node"] == "dsb@127.0.0.1") b_seen = st["processes"].get<int>() > 0;
      if (st["node"] == "dsa@127.0.0.1")
        for (const json& l : st["links"])
          a_links_b = a_links_b || (l["peer"] == "dsb@127.0.0.1" && l["kind"] == "hypha" && l["rtt_us"].is_number() &&
                                    l["rtt_us"].get<std::int64_t>() > 0);
    }
    return a_links_b && b_seen && s["tasks"].is_array() && s["self"] == "dsa@127.0.0.1";
  }, 10s));

  EventReader reader(port, "/api/events");
  ASSERT_TRUE(testing::eventually([&] { return !reader.events().empty(); }, 5s));
  EXPECT_EQ(reader.events().front().first, "snapshot");
  EXPECT_EQ(reader.events().front().second["self"], "dsa@127.0.0.1");

  // A task that reports its progress in 4 steps, started from b: every step reaches a's stream.
  auto started = svc->start_async(b->runtime(), Atom("hypha_tasks"), Atom("steps"), Term::list({Term(4), Term(50)}),
                                  {.name = Term::binary("stepper")});
  ASSERT_TRUE(started.ok()) << started.error().to_string();
  ASSERT_TRUE(testing::eventually([&] {
    for (const auto& [name, e] : reader.events())
      if (e["kind"] == "task" && e["name"] == "stepper" && e["status"] == "done") return true;
    return false;
  }, 10s));
  std::vector<int> progress;
  bool child_up = false;
  std::uint64_t last_seq = 0;
  for (const auto& [name, e] : reader.events()) {
    if (name != "message") continue;
    EXPECT_GT(e["seq"].get<std::uint64_t>(), last_seq);  // numbered, in order
    last_seq = e["seq"].get<std::uint64_t>();
    if (e["kind"] == "task" && e["name"] == "stepper" && e["status"] == "running" && e["progress"].is_number())
      progress.push_back(e["progress"].get<int>());
    if (e["kind"] == "child" && e["id"] == "{hypha_task,<<\"stepper\">>}" && e["status"] == "up") child_up = true;
  }
  EXPECT_EQ(progress, (std::vector<int>{25, 50, 75, 100}));
  EXPECT_TRUE(child_up);

  // A stop ends the open stream at once.
  const auto t0 = std::chrono::steady_clock::now();
  (*api)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(testing::eventually([&] { return reader.ended(); }, 5s));
}

}  // namespace
}  // namespace hypha
