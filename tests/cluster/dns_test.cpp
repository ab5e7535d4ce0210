// The dns strategy: its DNS messages (queries written, replies read from crafted bytes, hostile
// ones refused), and for real: nodes on TCP found through Debian's dnsmasq on a loopback port,
// records that change, a server that goes away.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <mutex>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "dns.hpp"
#include "hypha/base/log.hpp"
#include "hypha/base/metrics.hpp"
#include "hypha/cluster/cluster.hpp"
#include "test_util.hpp"

extern char** environ;

namespace hypha {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;
using testing::eventually;  // real sockets and a real DNS server: no event to wait on

void put16(Bytes& b, unsigned v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

// A reply to query `id` for app.test: the question, then `records` as given.
Bytes reply(std::uint16_t id, unsigned flags, unsigned count, const Bytes& records) {
  Bytes b;
  put16(b, id);
  put16(b, flags);
  put16(b, 1);
  put16(b, count);
  put16(b, 0);
  put16(b, 0);
  for (const char* l : {"app", "test"}) {
    b.push_back(static_cast<std::uint8_t>(std::strlen(l)));
    b.insert(b.end(), l, l + std::strlen(l));
  }
  b.push_back(0);
  put16(b, 1);
  put16(b, 1);
  b.insert(b.end(), records.begin(), records.end());
  return b;
}

// One record named by a pointer to the question's name (offset 12).
Bytes record(unsigned type, const Bytes& data) {
  Bytes r{0xC0, 12};
  put16(r, type);
  put16(r, 1);
  put16(r, 0);
  put16(r, 30);
  put16(r, static_cast<unsigned>(data.size()));
  r.insert(r.end(), data.begin(), data.end());
  return r;
}

TEST(Dns, AQueryIsOneQuestionWithRecursionDesired) {
  auto q = formation::dns::query(0x1234, "app.test.", formation::dns::kAAAA);
  ASSERT_TRUE(q.ok());
  const Bytes want{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', 'p', 'p', 4, 't', 'e', 's', 't', 0, 0, 28, 0, 1};
  EXPECT_EQ(*q, want);
  EXPECT_FALSE(formation::dns::query(1, "", 1).ok());
  EXPECT_FALSE(formation::dns::query(1, "a..b", 1).ok());
  EXPECT_FALSE(formation::dns::query(1, std::string(64, 'x') + ".test", 1).ok());
  EXPECT_FALSE(formation::dns::query(1, std::string(254, 'x'), 1).ok());
}

TEST(Dns, AddressesOfAAndAaaaRecordsOtherRecordsSkipped) {
  Bytes cname_target{3, 'w', 'e', 'b', 0xC0, 12};
  Bytes records = record(5, cname_target);  // a CNAME first
  const Bytes v4a = record(1, {10, 0, 0, 7}), v4b = record(1, {10, 0, 0, 8});
  const Bytes v6 = record(28, {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  for (const Bytes* r : {&v4a, &v6, &v4b}) records.insert(records.end(), r->begin(), r->end());
  auto a = formation::dns::answers(reply(9, 0x8180, 4, records), 9);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(*a, (std::vector<std::string>{"10.0.0.7", "fd00::1", "10.0.0.8"}));
  // NXDOMAIN: nobody is listed; a name with no records of the type: the same.
  auto nx = formation::dns::answers(reply(9, 0x8183, 0, {}), 9);
  ASSERT_TRUE(nx.ok());
  EXPECT_TRUE(nx->empty());
}

TEST(Dns, RepliesThatAreNotAnswersOrAreMalformedAreErrors) {
  const Bytes good = reply(9, 0x8180, 1, record(1, {10, 0, 0, 7}));
  ASSERT_TRUE(formation::dns::answers(good, 9).ok());
  EXPECT_FALSE(formation::dns::answers(good, 10).ok());                                   // another query's
  EXPECT_FALSE(formation::dns::answers(reply(9, 0x0100, 0, {}), 9).ok());                 // a query
  EXPECT_FALSE(formation::dns::answers(reply(9, 0x8382, 0, {}), 9).ok());                 // truncated
  EXPECT_FALSE(formation::dns::answers(reply(9, 0x8182, 0, {}), 9).ok());                 // SERVFAIL
  EXPECT_FALSE(formation::dns::answers(Bytes(good.begin(), good.begin() + 11), 9).ok());  // no header
  // Every cut of the message short of its end: an error, never a read past the end.
  for (std::size_t n = 12; n < good.size(); ++n)
    EXPECT_FALSE(formation::dns::answers(Bytes(good.begin(), good.begin() + static_cast<long>(n)), 9).ok()) << n;
  // More records announced than present; a record longer than the message; a reserved label type.
  EXPECT_FALSE(formation::dns::answers(reply(9, 0x8180, 2, record(1, {10, 0, 0, 7})), 9).ok());
  Bytes longer = good;
  longer[longer.size() - 5] = 200;  // rdlength 200
  EXPECT_FALSE(formation::dns::answers(longer, 9).ok());
  Bytes reserved = good;
  reserved[12] = 0x80;
  EXPECT_FALSE(formation::dns::answers(reserved, 9).ok());
}

TEST(Dns, ServersAreAddressAndPort) {
  auto s = formation::dns::parse_server("127.0.0.1:5353");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->first, "127.0.0.1");
  EXPECT_EQ(s->second, 5353);
  auto v6 = formation::dns::parse_server("[::1]:53");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(formation::dns::parse_server("10.0.0.1")->second, 53);
  for (const char* bad : {"dns.example:53", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:x", "[::1", ""})
    EXPECT_FALSE(formation::dns::parse_server(bad).ok()) << bad;
}

// dnsmasq on a free loopback port, answering from a hosts file the test rewrites (SIGHUP makes
// it read the file again).
class Dnsmasq {
 public:
  Dnsmasq() : port_(testing::free_port()), hosts_("/tmp/hypha-dns-test-" + std::to_string(::getpid())) {}
  ~Dnsmasq() {
    stop();
    std::remove(hosts_.c_str());
  }
  void hosts(const std::string& lines) {
    std::ofstream(hosts_) << lines;
    if (pid_ > 0) ::kill(pid_, SIGHUP);
  }
  bool start() {
    const std::string port = "--port=" + std::to_string(port_), file = "--addn-hosts=" + hosts_;
    std::vector<std::string> args{"dnsmasq", "--keep-in-foreground", "--no-daemon", port, "--listen-address=127.0.0.1",
                                  "--bind-interfaces", "--no-resolv", "--no-hosts", file, "--pid-file", "--cache-size=0"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t quiet;  // its start-up lines
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawnp(&pid_, "dnsmasq", &quiet, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&quiet);
    if (rc != 0) return false;
    return eventually([&] { return answers(); });  // until it listens
  }
  // Whether it answers a look-up of b.test now.
  bool answers() const {
    asio::io_context io;
    bool ok = false;
    asio::co_spawn(io, formation::dns::lookup(io, "b.test", server(), 200ms),
                   [&](std::exception_ptr e, Result<std::vector<std::string>, std::string> r) { ok = !e && r.ok(); });
    io.run();
    return ok;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::uint16_t port_;
  std::string hosts_;
  pid_t pid_ = 0;
};

std::unique_ptr<Node> node(const std::string& name, std::uint16_t epmd, cluster::Options c = {}) {
  auto n = start_cluster_node({.name = name, .cookie = "cookie", .threads = 2, .epmd_port = epmd}, {}, std::move(c));
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error());
  return n.ok() ? std::move(*n) : nullptr;
}

bool lists(Node& n, const char* peer) {
  for (Atom a : n.nodes())
    if (a.text() == peer) return true;
  return false;
}

std::int64_t lookups(const char* node, const char* result) {
  return std::max<std::int64_t>(
      0, metrics::registry().value("hypha_formation_dns_lookups_total", {{"node", node}, {"result", result}}));
}

// A node's dns strategy asking `dns` for b.test every 100 ms (basename b), nothing else.
cluster::Options dns_options(const Dnsmasq& dns, bool disconnect_dropped) {
  cluster::Options c;
  c.formation.strategies = {"dns"};
  c.formation.mesh = false;
  c.formation.disconnect_dropped = disconnect_dropped;
  c.formation.dns_query = "b.test";
  c.formation.dns_basename = "b";
  c.formation.dns_server = dns.server();
  c.formation.dns_interval = 100ms;
  return c;
}

TEST(DnsNet, NodesOfTheRecordsAreConnectedAndDroppedWhenTheRecordsChange) {
  Dnsmasq dns;
  dns.hosts("127.0.0.1 b.test\n");
  ASSERT_TRUE(dns.start()) << "dnsmasq (Debian's dnsmasq-base, installed by scripts/setup.sh) could not be started";
  const std::uint16_t epmd = testing::free_port();
  auto b = node("b@127.0.0.1", epmd);
  auto a = node("a@127.0.0.1", epmd, dns_options(dns, true));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(eventually([&] { return lists(*a, "b@127.0.0.1"); }));

  // The record now names another address: b@127.0.0.1 is dropped, and disconnected.
  dns.hosts("127.0.0.9 b.test\n");
  ASSERT_TRUE(eventually([&] { return !lists(*a, "b@127.0.0.1"); }));
  // Back again: connected again.
  dns.hosts("127.0.0.1 b.test\n");
  ASSERT_TRUE(eventually([&] { return lists(*a, "b@127.0.0.1"); }));
}

TEST(DnsNet, AServerThatGoesAwayIsLoggedOnceAndWhatItListedIsKept) {
  Dnsmasq dns;
  dns.hosts("127.0.0.1 b.test\n");
  ASSERT_TRUE(dns.start());
  std::mutex mu;
  int failed_lines = 0;
  log::set_sink([&](const std::string& line) {
    std::lock_guard lock(mu);
    if (line.find("dns_lookup_failed") != std::string::npos && line.find("c@127.0.0.1") != std::string::npos)
      ++failed_lines;
  });
  const std::uint16_t epmd = testing::free_port();
  auto b = node("b@127.0.0.1", epmd);
  auto c = node("c@127.0.0.1", epmd, dns_options(dns, false));
  ASSERT_TRUE(c && b);
  ASSERT_TRUE(eventually([&] { return lists(*c, "b@127.0.0.1"); }));

  {
    std::lock_guard lock(mu);
    failed_lines = 0;  // what follows the server's going
  }
  dns.stop();
  const auto before = lookups("c@127.0.0.1", "failed");
  ASSERT_TRUE(eventually([&] { return lookups("c@127.0.0.1", "failed") >= before + 3; }));
  // b is still wanted: a connection that goes is made again.
  c->disconnect(Atom("b@127.0.0.1"));
  ASSERT_TRUE(eventually([&] { return lists(*c, "b@127.0.0.1"); }));
  log::set_sink({});
  std::lock_guard lock(mu);
  EXPECT_EQ(failed_lines, 1);
}

}  // namespace
}  // namespace hypha
