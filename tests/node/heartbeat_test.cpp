// Failure detection between hypha nodes over real TCP (NodeOptions::detect): the hello, the
// faster pace for a peer that asks for it, and a BEAM-like peer (one that never says hello)
// keeping the tick time. The harness tests (sim_test.cpp) cover the timing step by step; the
// interop test stops a real node with SIGSTOP.
#include <gtest/gtest.h>

#include <chrono>

#include "hypha/hypha.hpp"
#include "log_capture.hpp"
#include "raw_peer.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using testing::RawPeer;

const Atom kHeartbeat("hypha_heartbeat");

// Reads what the node sends the raw peer until the heartbeat hello; its payload.
std::optional<Term> read_hello(RawPeer& peer) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto p = peer.read_packet(5s);
    if (!p) return std::nullopt;
    const Term& c = p->control;
    if (c.is_tuple() && c.tuple_size() == 4 && c[0] == Term(6) && c[3] == Term(kHeartbeat) && p->payload)
      return *p->payload;
  }
  return std::nullopt;
}

std::optional<PeerInfo> peer_info(Node& n, const std::string& peer) {
  for (const auto& p : n.peers())
    if (p.name == Atom(peer)) return p;
  return std::nullopt;
}

class Heartbeat : public ::testing::Test {
 protected:
  std::uint16_t epmd = testing::free_port();
};

TEST_F(Heartbeat, APeerThatNeverAnswersTheHelloKeepsTheTickTime) {
  auto a = testing::start_node("a", epmd, {.net_ticktime = 60s, .detect = 500ms});
  ASSERT_TRUE(a);
  RawPeer beam;  // as a BEAM node: it drops the hello (no process has that name) and never ticks fast
  ASSERT_TRUE(beam.connect(a->port(), std::string(a->name().text()), "cookie"));
  EXPECT_EQ(read_hello(beam), testing::T("{hypha_heartbeat, 500, false}"));
  auto info = peer_info(*a, beam.name);
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->hypha);
  EXPECT_EQ(info->detect, 60s);
  // Silent for three detect times: still connected (it owes a tick only every 15 s).
  EXPECT_FALSE(beam.closed_by_peer(1500ms));
  EXPECT_TRUE(peer_info(*a, beam.name));
}

TEST_F(Heartbeat, AHyphaPeerThatFallsSilentIsDownWithinTheDetectTime) {
  auto a = testing::start_node("a", epmd, {.net_ticktime = 60s, .detect = 1s});
  ASSERT_TRUE(a);
  testing::LogCapture logs;
  RawPeer peer;
  ASSERT_TRUE(peer.connect(a->port(), std::string(a->name().text()), "cookie"));
  ASSERT_TRUE(read_hello(peer));
  peer.reg_send("hypha_heartbeat", testing::T("{hypha_heartbeat, 600, false}"));
  // The node answers that it heard ours; then we tell it we heard its.
  EXPECT_EQ(read_hello(peer), testing::T("{hypha_heartbeat, 1000, true}"));
  peer.reg_send("hypha_heartbeat", testing::T("{hypha_heartbeat, 600, true}"));
  ASSERT_TRUE(testing::eventually([&] {
    auto i = peer_info(*a, peer.name);
    return i && i->hypha && i->detect == 1s;
  }));
  // Ticks now come every 100-150 ms (our 600 ms / 6, kept within half a period): count them.
  const auto silent_since = std::chrono::steady_clock::now();
  int ticks = 0;
  peer.sock.non_blocking(true);
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - silent_since < 5s) {
    std::array<std::uint8_t, 4> t{};
    asio::error_code ec;
    const std::size_t n = peer.sock.read_some(asio::buffer(t), ec);
    if (ec == asio::error::would_block) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    if (ec) closed = true;
    else if (n == 4 && t == std::array<std::uint8_t, 4>{}) ++ticks;
  }
  const auto took = std::chrono::steady_clock::now() - silent_since;
  EXPECT_TRUE(closed);
  EXPECT_GE(took, 700ms);   // the silence limit is 1 s less one check (1/6 of it)
  EXPECT_LT(took, 2500ms);  // within the detect time, with room for a loaded machine; the tick time is 60 s
  EXPECT_GE(ticks, 4);  // the 15 s pace of the tick time would give none
  EXPECT_TRUE(logs.wait_for({"event=nodedown", "heartbeat_timeout"}, 5s));
}

TEST_F(Heartbeat, TwoNodesAgreeOnTheirDetectTimes) {
  auto a = testing::start_node("a", epmd, {.detect = 1s});
  auto b = testing::start_node("b", epmd, {.detect = 2s});
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->ping(b->name()));
  ASSERT_TRUE(testing::eventually([&] {
    auto x = peer_info(*a, "b@127.0.0.1");
    auto y = peer_info(*b, "a@127.0.0.1");
    return x && y && x->hypha && y->hypha && x->detect == 1s && y->detect == 2s;
  }));
}

}  // namespace
}  // namespace hypha
