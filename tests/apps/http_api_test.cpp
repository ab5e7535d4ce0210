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

#include "test_util.hpp"

namespace hypha {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

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
