// The gossip strategy for real: nodes on TCP find each other by UDP multicast heartbeats, in
// both formats, inside a network namespace of the test's own (in_netns.sh); tampered, replayed,
// foreign-secret, oversized and malformed packets are dropped and counted, and the node is
// unaffected.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <thread>

#include "hypha/base/metrics.hpp"
#include "hypha/cluster/cluster.hpp"
#include "hypha/cluster/gossip.hpp"
#include "test_util.hpp"

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

}  // namespace
}  // namespace hypha
