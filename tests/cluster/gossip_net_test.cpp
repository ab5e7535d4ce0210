// The gossip strategy for real: nodes on TCP find each other by UDP multicast heartbeats, in
// both formats, inside a network namespace of the test's own (in_netns.sh); tampered, replayed,
// foreign-secret, oversized and malformed packets are dropped and counted, and the node is
// unaffected.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <thread>

#include "hypha/base/metrics.hpp"
#include "hypha/cluster/cluster.hpp"
#include "hypha/cluster/gossip.hpp"
#include "test_util.hpp"

extern char** environ;

namespace hypha {
namespace {

using namespace std::chrono_literals;

using testing::eventually;  // real sockets: peer lists and counters have no event to wait on

std::unique_ptr<Node> gossip_node(const std::string& alive, std::uint16_t epmd, formation::GossipOptions g) {
  cluster::Options c;
  c.formation.strategies = {"gossip"};
  c.formation.mesh = false;
  c.formation.gossip = std::move(g);
  auto n = start_cluster_node({.name = alive + "@127.0.0.1", .cookie = "cookie", .threads = 2, .epmd_port = epmd}, {},
                              std::move(c));
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error());
  return n.ok() ? std::move(*n) : nullptr;
}

bool lists(Node& n, const std::string& peer) {
  for (Atom a : n.nodes())
    if (a.text() == peer) return true;
  return false;
}

std::int64_t dropped(const std::string& node, const char* result) {
  return std::max<std::int64_t>(0, metrics::registry().value("hypha_gossip_packets_total", {{"node", node}, {"result", result}}));
}

void send_udp(std::uint16_t port, const std::vector<std::uint8_t>& packet) {
  asio::io_context io;
  asio::ip::udp::socket s(io, asio::ip::udp::v4());
  s.send_to(asio::buffer(packet), asio::ip::udp::endpoint(asio::ip::make_address("233.252.1.32"), port));
}

TEST(GossipNet, NodesFindEachOtherAndBadPacketsAreDroppedAndCounted) {
  const std::uint16_t epmd = testing::free_port();
  const formation::GossipOptions g{.port = 45892, .secret = "s3cret", .cluster = "test", .interval = 200ms};
  auto a = gossip_node("ga", epmd, g);
  auto b = gossip_node("gb", epmd, g);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(eventually([&] { return lists(*a, "gb@127.0.0.1") && lists(*b, "ga@127.0.0.1"); }));

  const std::string an = "ga@127.0.0.1";
  const auto bad_auth = dropped(an, "bad_auth"), replayed = dropped(an, "replayed"),
             oversized = dropped(an, "oversized"), malformed = dropped(an, "malformed");
  gossip::Codec same({.format = gossip::Format::Hypha, .secret = "s3cret", .cluster = "test"});
  gossip::Codec other({.format = gossip::Format::Hypha, .secret = "wrong", .cluster = "test"});
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  auto tampered = same.encode("gx@127.0.0.1", now);
  tampered[20] ^= 1;
  send_udp(45892, tampered);
  send_udp(45892, other.encode("gx@127.0.0.1", now));                 // a foreign secret
  send_udp(45892, same.encode("gx@127.0.0.1", now - 3600'000));       // an hour old: a replay
  const auto once = same.encode("gy@127.0.0.1", now);
  send_udp(45892, once);
  send_udp(45892, once);                                              // the same packet again
  send_udp(45892, std::vector<std::uint8_t>(1500, 7));                // oversized
  send_udp(45892, gossip::Codec({.format = gossip::Format::Libcluster}).encode("gz@127.0.0.1", now));  // another format
  ASSERT_TRUE(eventually([&] {
    return dropped(an, "bad_auth") >= bad_auth + 2 && dropped(an, "replayed") >= replayed + 2 &&
           dropped(an, "oversized") >= oversized + 1 && dropped(an, "malformed") >= malformed + 1;
  }));
  EXPECT_FALSE(Atom::existing("gx@127.0.0.1"));  // no atom from a packet that failed
  EXPECT_FALSE(Atom::existing("gz@127.0.0.1"));
  EXPECT_TRUE(lists(*a, "gb@127.0.0.1"));        // unaffected
  EXPECT_TRUE(a->ping(Atom("gb@127.0.0.1")));
}

TEST(GossipNet, TheLibclusterFormatFindsNodesToo) {
  const std::uint16_t epmd = testing::free_port();
  const formation::GossipOptions plain{.port = 45893, .format = "libcluster", .interval = 200ms};
  auto c = gossip_node("gc", epmd, plain);
  auto d = gossip_node("gd", epmd, plain);
  ASSERT_TRUE(c && d);
  ASSERT_TRUE(eventually([&] { return lists(*c, "gd@127.0.0.1") && lists(*d, "gc@127.0.0.1"); }));
  // With libcluster's secret (AES-256-CBC): a node with another secret is not found.
  formation::GossipOptions secret{.port = 45894, .secret = "lc", .format = "libcluster", .interval = 200ms};
  auto e = gossip_node("ge", epmd, secret);
  auto f = gossip_node("gf", epmd, secret);
  secret.secret = "other";
  auto h = gossip_node("gh", epmd, secret);
  ASSERT_TRUE(e && f && h);
  ASSERT_TRUE(eventually([&] { return lists(*e, "gf@127.0.0.1") && lists(*f, "ge@127.0.0.1"); }));
  ASSERT_TRUE(eventually([&] { return dropped("gh@127.0.0.1", "bad_auth") >= 2; }));
  EXPECT_FALSE(lists(*h, "ge@127.0.0.1"));
  EXPECT_FALSE(lists(*e, "gh@127.0.0.1"));
}

// An Elixir node running libcluster's Gossip strategy (tests/interop/elixir/libcluster_gossip.exs,
// written from the packet's facts), its output in a file; killed with its process group.
class ElixirGossip {
 public:
  ElixirGossip(const std::string& name, std::uint16_t epmd, std::uint16_t port, const std::string& secret,
               const char* mode)
      : out_("/tmp/hypha-lcg-" + name + "-" + std::to_string(::getpid())) {
    const std::string env_epmd = "ERL_EPMD_PORT=" + std::to_string(epmd);
    std::vector<std::string> args{"elixir", "--name", name + "@127.0.0.1", "--cookie", "cookie",
                                  HYPHA_LIBCLUSTER_PEER, std::to_string(port), secret, "200", mode};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env{env_epmd};
    for (char** e = environ; *e; ++e)
      if (std::string_view(*e).substr(0, 14) != "ERL_EPMD_PORT=") env.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    started_ = posix_spawnp(&pid_, "elixir", &fa, &attr, argv.data(), envp.data()) == 0;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  ~ElixirGossip() {
    if (started_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::remove(out_.c_str());
  }
  bool started() const { return started_; }
  std::string output() const {
    std::ifstream in(out_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool said(const std::string& line) const { return output().find(line + "\n") != std::string::npos; }
  int count(const std::string& line) const {
    const std::string text = output();
    int n = 0;
    for (auto at = text.find(line + "\n"); at != std::string::npos; at = text.find(line + "\n", at + 1)) ++n;
    return n;
  }

 private:
  std::string out_;
  pid_t pid_ = 0;
  bool started_ = false;
};

// Elixir nodes that run libcluster's Gossip strategy and hypha nodes with format "libcluster"
// read each other's heartbeats, plain and with a secret: the Elixir nodes say whom they heard and,
// passive, leave connecting to hypha, which does it only from their heartbeats; one with another
// secret (connecting, as libcluster does) drops what it hears, is dropped, and is found by nobody.
TEST(GossipNet, ElixirNodesRunningLibclusterGossipAndHyphaNodesFindEachOther) {
  const std::uint16_t epmd = testing::free_port();
  const formation::GossipOptions plain{.port = 45895, .format = "libcluster", .interval = 200ms};
  auto h = gossip_node("lh", epmd, plain);
  ASSERT_TRUE(h);
  ElixirGossip ex("lex", epmd, 45895, "", "passive");
  ASSERT_TRUE(ex.started()) << "elixir could not be started";
  ASSERT_TRUE(eventually([&] { return lists(*h, "lex@127.0.0.1") && ex.said("heard lh@127.0.0.1"); }, 60s))
      << ex.output();

  formation::GossipOptions secret{.port = 45896, .secret = "lc-secret", .format = "libcluster", .interval = 200ms};
  auto k = gossip_node("lk", epmd, secret);
  ASSERT_TRUE(k);
  ElixirGossip ey("ley", epmd, 45896, "lc-secret", "passive");
  ElixirGossip ez("lez", epmd, 45896, "another", "connect");
  ASSERT_TRUE(ey.started() && ez.started());
  ASSERT_TRUE(eventually([&] { return lists(*k, "ley@127.0.0.1") && ey.said("heard lk@127.0.0.1"); }, 60s))
      << ey.output();
  // lez hears lk and ley and cannot read them; lk cannot read lez.
  ASSERT_TRUE(eventually([&] { return ez.count("dropped") >= 4 && dropped("lk@127.0.0.1", "bad_auth") >= 2; }, 60s))
      << ez.output();
  EXPECT_FALSE(lists(*k, "lez@127.0.0.1"));
  EXPECT_FALSE(ez.said("nodeup lk@127.0.0.1"));
  EXPECT_FALSE(ez.said("heard lk@127.0.0.1"));
  EXPECT_FALSE(Atom::existing("lez@127.0.0.1"));
}

}  // namespace
}  // namespace hypha
