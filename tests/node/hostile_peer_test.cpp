// What a hostile or broken peer can do to a node, tried as an attacker on loopback would: each
// case must leave the node serving its other peers, with bounded memory and a log line.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <string>
#include <vector>

#include "hypha/base/log.hpp"
#include "hypha/base/metrics.hpp"
#include "hypha/net/connection.hpp"
#include "hypha/net/listener.hpp"
#include "hypha/node/node.hpp"
#include "log_capture.hpp"
#include "raw_peer.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
using namespace hypha::literals;
using testing::free_port;
using testing::LogCapture;
using testing::RawPeer;

constexpr auto kWait = 5s;

class HostilePeer : public ::testing::Test {
 protected:
  std::uint16_t epmd = free_port();
  std::vector<std::unique_ptr<Node>> nodes;

  Node& start(const std::string& name, NodeOptions extra = {}) {
    nodes.push_back(testing::start_node(name, epmd, extra));
    return *nodes.back();
  }
};

// A REG_SEND frame whose payload is a list of `n` atoms no one has made yet, written as text
// (SMALL_ATOM_UTF8_EXT) by hand: making them as Atoms here would put them in the table this test
// process shares with the node.
std::vector<std::uint8_t> reg_send_of_new_atoms(const std::string& to, const std::string& tag, std::size_t& counter,
                                               std::size_t n) {
  // 131 68 0 (empty header), then the REG_SEND control {6, From, '', To} and a list payload.
  const Pid from{Atom("raw@127.0.0.1"), 1, 0, 7};
  const Term ctrl = Term::tuple({Term(6), Term(from), Term(Atom()), Term(Atom(to))});
  auto frame = net::make_frame(ctrl, nullptr, true);
  std::vector<std::uint8_t> out(frame.begin(), frame.end());
  out.push_back(108);  // LIST_EXT
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(n >> s));
  for (std::size_t i = 0; i < n; ++i) {
    const std::string text = tag + std::to_string(counter++);
    out.push_back(119);  // SMALL_ATOM_UTF8_EXT
    out.push_back(static_cast<std::uint8_t>(text.size()));
    out.insert(out.end(), text.begin(), text.end());
  }
  out.push_back(106);  // NIL_EXT
  const std::size_t len = out.size() - 4;
  for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(len >> (24 - 8 * i));
  return out;
}


TEST_F(HostilePeer, APeerPastItsAtomBudgetIsDisconnectedWithAReasonAndTheNodeServesOn) {
  NodeOptions o;
  o.max_new_atoms_per_peer = 1500;
  Node& a = start("a", o);
  Node& b = start("b");
  ASSERT_TRUE(b.ping(a.name()));
  LogCapture logs;
  RawPeer raw;
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  ASSERT_TRUE(b.ping(a.name()));  // the raw peer's name is an atom on the node by now
  (void)Atom("nobody");
  const std::size_t before = Atom::count();
  std::size_t counter = 0;
  for (int i = 0; i < 3; ++i) {
    auto f = reg_send_of_new_atoms("nobody", "budget_atom_", counter, 1000);
    asio::error_code ec;
    asio::write(raw.sock, asio::buffer(f), ec);
  }
  EXPECT_TRUE(raw.closed_by_peer(kWait));
  EXPECT_TRUE(logs.wait_for({"event=bad_packet", "new-atom budget"}, kWait));
  EXPECT_LE(Atom::count() - before, 1500u);
  EXPECT_TRUE(b.ping(a.name()));
}

// The whole table, filled from outside: the node neither crashes (its error-path atoms exist)
// nor refuses the peers that come next (their names come from the reserve once they proved the
// cookie), and it says at warn level that the table is nearly full.
TEST_F(HostilePeer, AFullAtomTableNeitherCrashesTheNodeNorCutsItOff) {
  NodeOptions o;
  o.max_new_atoms_per_peer = Atom::kMaxAtoms;
  Node& a = start("a", o);
  Node& b = start("b");
  ASSERT_TRUE(b.ping(a.name()));
  LogCapture logs;
  std::size_t counter = 0;
  // Several flooding connections, each cut when the table stops taking its atoms.
  while (Atom::count() < Atom::limit(Atom::Source::Input)) {
    RawPeer raw;
    raw.name = "flood" + std::to_string(counter) + "@127.0.0.1";
    ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
    asio::error_code ec;
    for (int i = 0; i < 200 && !ec; ++i) {
      auto f = reg_send_of_new_atoms("nobody", "flood_", counter, 10000);
      asio::write(raw.sock, asio::buffer(f), ec);
    }
    ASSERT_TRUE(raw.closed_by_peer(kWait)) << Atom::count();
  }
  EXPECT_GE(Atom::count(), Atom::limit(Atom::Source::Input));  // and above it only the flooders' names
  EXPECT_LT(Atom::count(), Atom::limit(Atom::Source::Peer));
  EXPECT_TRUE(logs.wait_for({"warn", "event=atom_table_nearly_full"}, kWait));
  EXPECT_TRUE(logs.wait_for({"event=bad_packet", "atom table full"}, kWait));
  // A peer that sends known atoms is served; one never seen before can still connect.
  EXPECT_TRUE(b.ping(a.name()));
  RawPeer fresh;
  fresh.name = "never_seen_before@127.0.0.1";
  Mailbox me = a.runtime().mailbox();
  a.monitor_nodes(me.pid());
  ASSERT_TRUE(fresh.connect(a.port(), std::string(a.name().text()), "cookie"));
  EXPECT_EQ(me.receive(kWait), Term::tuple({"nodeup"_atom, Term(Atom("never_seen_before@127.0.0.1"))}));
  // Losing a connection needs atoms (noconnection, nodedown): they exist.
  fresh.sock.close();
  EXPECT_EQ(me.receive(kWait), Term::tuple({"nodedown"_atom, Term(Atom("never_seen_before@127.0.0.1"))}));
  EXPECT_TRUE(b.ping(a.name()));
}

TEST_F(HostilePeer, NamesThatNeverProveTheCookieMakeNoAtoms) {
  Node& a = start("a");
  const std::size_t before = Atom::count();
  for (int i = 0; i < 2000; ++i) {
    RawPeer raw;
    raw.send_name_only(a.port(), "stranger" + std::to_string(i) + "@127.0.0.1");
    EXPECT_EQ(raw.read_status(), "ok");
  }
  EXPECT_LT(Atom::count() - before, 10u);
}

TEST_F(HostilePeer, BadNamesAreRefusedAsText) {
  Node& a = start("a");
  for (const char* bad : {"noat", "@host", "name@", "na me@host", "a@b@c", "caf\xc3\xa9@host", "x@h\x01st"}) {
    RawPeer raw;
    raw.send_name_only(a.port(), bad);
    EXPECT_EQ(raw.read_status(), "not_allowed") << bad;
  }
  EXPECT_TRUE(net::valid_node_name("a-b_C9@host.example-1"));
  EXPECT_TRUE(net::valid_node_name("a@::1"));
}

TEST_F(HostilePeer, AStalledHandshakeDoesNotBlockTheRealNodeOfThatName) {
  Node& a = start("a");
  RawPeer squatter;
  squatter.send_name_only(a.port(), "zzz@127.0.0.1");
  ASSERT_EQ(squatter.read_status(), "ok");  // then silence
  NodeOptions quick;
  Node& z = start("zzz", quick);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(z.ping(a.name(), 3s));  // well within the 7 s the squatter's handshake may last
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(a.ping(z.name(), 3s));
}

// Connections held open by another process (so that they count against its descriptors, not
// ours): `count` to each of `ports` on 127.0.0.1, silent until the flood is destroyed. The
// child uses only system calls (it is forked from a threaded process).
class Flood {
 public:
  // Forks the flooder; it connects when told (go), so that this process may lower its own
  // descriptor limit in between.
  Flood(std::initializer_list<std::uint16_t> ports, int count) {
    int go[2], done[2];
    EXPECT_EQ(::pipe(go), 0);
    EXPECT_EQ(::pipe(done), 0);
    std::vector<std::uint16_t> ps(ports);
    pid_ = ::fork();
    if (pid_ == 0) {
      rlimit rl{4096, 4096};
      ::setrlimit(RLIMIT_NOFILE, &rl);
      char byte = 0;
      (void)!::read(go[0], &byte, 1);
      for (std::uint16_t port : ps)
        for (int i = 0; i < count; ++i) {
          const int s = ::socket(AF_INET, SOCK_STREAM, 0);
          sockaddr_in sa{};
          sa.sin_family = AF_INET;
          sa.sin_port = htons(port);
          sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          ::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        }
      (void)!::write(done[1], &byte, 1);
      for (;;) ::pause();
    }
    ::close(go[0]);
    ::close(done[1]);
    go_ = go[1];
    done_ = done[0];
  }
  // Connects them all; returns once they are.
  void go() {
    const char byte = 1;
    EXPECT_EQ(::write(go_, &byte, 1), 1);
    char got = 0;
    EXPECT_EQ(::read(done_, &got, 1), 1);
  }
  ~Flood() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(go_);
    ::close(done_);
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1, done_ = -1;
};

// Open descriptors, the one that lists them included.
std::size_t open_descriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// CPU time this process used (user and system), for telling a spinning loop from a waiting one.
std::chrono::microseconds cpu_time() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) { return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec); };
  return std::chrono::duration_cast<std::chrono::microseconds>(us(ru.ru_utime) + us(ru.ru_stime));
}

// Lowers this test process's soft descriptor limit for the test's duration.
struct DescriptorLimit {
  rlimit saved{};
  explicit DescriptorLimit(std::size_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit lowered = saved;
    lowered.rlim_cur = soft;
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  }
  ~DescriptorLimit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
};

TEST_F(HostilePeer, SilentConnectionsCannotTakeTheDescriptorsTheNodeNeedsForItsPeers) {
  // Handshake bounds as high as the descriptors: what holds the flood here is the descriptor
  // reserve (the next test has the bounds themselves).
  NodeOptions o;
  o.max_handshakes = o.max_handshakes_per_source = 10000;
  Node& a = start("a", o);
  Node& b = start("b", o);
  LogCapture logs;
  // More silent connections than the limit allows, to the distribution port and the EPMD.
  Flood flood({a.port(), epmd}, 400);
  const std::size_t limit = open_descriptors() + 300;
  DescriptorLimit lowered(limit);
  flood.go();
  EXPECT_TRUE(logs.wait_for({"event=connection_evicted", "listener=distribution", "connection limit"}, kWait));
  EXPECT_TRUE(logs.wait_for({"event=connection_evicted", "listener=epmd"}, kWait));
  EXPECT_LT(open_descriptors(), limit);
  // The node still reaches its peers: a new outgoing connection, and a new incoming one.
  EXPECT_TRUE(a.ping(b.name(), 3s));
  Node& c = start("c");  // registers with the flooded EPMD, then connects to a
  EXPECT_TRUE(c.ping(a.name(), 3s));
}

TEST_F(HostilePeer, AcceptingPausesWhenDescriptorsRunOutInsteadOfSpinning) {
  Node& a = start("a");
  Node& b = start("b");
  LogCapture logs;
  {
    Flood flood({a.port()}, 20);
    DescriptorLimit lowered(open_descriptors() + 16);
    std::vector<int> filler;  // every descriptor left, taken: accept() fails with EMFILE
    for (int fd; (fd = ::open("/dev/null", O_RDONLY)) >= 0;) filler.push_back(fd);
    flood.go();
    ASSERT_TRUE(logs.wait_for({"event=accept_failed", "listener=distribution"}, kWait));
    // Counted in failed accept() calls of a's distribution listener (every listener of the process
    // fails while descriptors are out), not in a time window: backing off 10 ms, doubling, the
    // sixth failure comes ~300 ms after the first. A loop retrying at once would have failed
    // thousands of times by then, and used that much CPU.
    const metrics::Labels dist{{"node", std::string(a.name().text())}, {"listener", "distribution"}};
    const auto failures = [&] { return metrics::registry().value("hypha_listener_accept_failures_total", dist); };
    const auto first = failures();
    const auto cpu0 = cpu_time();
    ASSERT_TRUE(testing::eventually([&] { return failures() >= first + 5; }, kWait));
    EXPECT_LT(failures(), first + 8);
    EXPECT_LT(cpu_time() - cpu0, 150ms);
    EXPECT_EQ(logs.count({"node=a@", "event=accept_failed", "listener=distribution"}), 1u)  // once per episode, not per attempt
        << ::testing::PrintToString(logs.lines());
    for (int fd : filler) ::close(fd);
  }
  EXPECT_TRUE(b.ping(a.name(), 3s));  // descriptors back: accepting again
}

TEST_F(HostilePeer, UnauthenticatedHandshakesAreBoundedAndTheOldestGivesWay) {
  NodeOptions o;
  o.max_handshakes = 8;
  o.max_handshakes_per_source = 4;
  Node& a = start("a", o);
  LogCapture logs;
  const metrics::Labels labels{{"node", std::string(a.name().text())}, {"listener", "distribution"}};
  const std::int64_t evicted0 = metrics::registry().value("hypha_listener_evicted_total", labels);
  std::vector<std::unique_ptr<RawPeer>> stalled;
  for (int i = 0; i < 6; ++i) {
    stalled.push_back(std::make_unique<RawPeer>());
    stalled.back()->send_name_only(a.port(), "stall" + std::to_string(i) + "@127.0.0.1");
    ASSERT_EQ(stalled.back()->read_status(), "ok");
  }
  // The first two made room for the last two (4 per source): the node closed them.
  EXPECT_TRUE(stalled[0]->closed_by_peer(kWait));
  EXPECT_TRUE(stalled[1]->closed_by_peer(kWait));
  EXPECT_TRUE(logs.wait_for({"event=connection_evicted", "listener=distribution", "source=127.0.0.1"}, kWait));
  EXPECT_EQ(metrics::registry().value("hypha_listener_evicted_total", labels), evicted0 + 2);  // counted too
  // A real peer gets in at once however many stall.
  Node& b = start("b");
  EXPECT_TRUE(b.ping(a.name(), 3s));
}

TEST_F(HostilePeer, WrongCookiesAreLoggedOnceThenCounted) {
  Node& a = start("a");
  LogCapture logs;
  log::set_limit_period(200ms);
  for (int i = 0; i < 200; ++i) {
    RawPeer raw;
    raw.name = "guess" + std::to_string(i) + "@127.0.0.1";
    ASSERT_FALSE(raw.connect(a.port(), std::string(a.name().text()), "wrong"));
  }
  const std::size_t lines = logs.count({"event=connection_refused", "wrong cookie"});
  EXPECT_GE(lines, 1u);
  EXPECT_LT(lines, 50u);
  // The rest are told as a count once the period is over (the node's timer flushes them).
  EXPECT_TRUE(logs.wait_for({"event=connection_refused", "suppressed="}, kWait));
}

// A frame's 4-byte length, big-endian.
std::vector<std::uint8_t> frame_header(std::size_t len) {
  return {static_cast<std::uint8_t>(len >> 24), static_cast<std::uint8_t>(len >> 16), static_cast<std::uint8_t>(len >> 8),
          static_cast<std::uint8_t>(len)};
}

TEST_F(HostilePeer, AFrameHeaderPinsOnlyTheBytesThatArrived) {
  NodeOptions o;
  o.net_ticktime = 1s;
  Node& a = start("a", o);
  Node& b = start("b");
  ASSERT_TRUE(b.ping(a.name()));
  LogCapture logs;
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < 5; ++i) {
    peers.push_back(std::make_unique<RawPeer>());
    peers.back()->name = "big" + std::to_string(i) + "@127.0.0.1";
    ASSERT_TRUE(peers.back()->connect(a.port(), std::string(a.name().text()), "cookie"));
    auto h = frame_header(67108860);
    h.push_back(112);
    asio::write(peers.back()->sock, asio::buffer(h));
  }
  ASSERT_TRUE(b.ping(a.name()));  // the node has read what they sent by now
  EXPECT_EQ(net::partial_frame_bytes(), 0u);  // five 64 MiB claims, one byte each: nothing beyond the read buffers
  // 3 MiB more on one of them: its buffer grows with them, to 4 MiB at most.
  std::vector<std::uint8_t> chunk(3u << 20, 0);
  asio::write(peers[0]->sock, asio::buffer(chunk));
  ASSERT_TRUE(b.ping(a.name()));
  EXPECT_LE(net::partial_frame_bytes(), 3u << 20);
  // Frames that never complete close their connections after the tick time, even though bytes
  // keep trickling in.
  for (int i = 0; i < 40 && !peers[1]->closed_by_peer(50ms); ++i) {
    const std::uint8_t byte = 0;
    asio::error_code ec;
    asio::write(peers[1]->sock, asio::buffer(&byte, 1), ec);
  }
  EXPECT_TRUE(logs.wait_for({"event=nodedown", "partial frame stalled"}, kWait));
  for (auto& p : peers) EXPECT_TRUE(p->closed_by_peer(kWait));
  EXPECT_TRUE(testing::eventually([] { return net::partial_frame_bytes() == 0; }, kWait));
  EXPECT_TRUE(b.ping(a.name()));
}

TEST_F(HostilePeer, PartialFramesOfAllConnectionsHaveOneCap) {
  NodeOptions o;
  o.max_partial_frames = 4u << 20;
  Node& a = start("a", o);
  LogCapture logs;
  RawPeer p1, p2;
  p2.name = "other@127.0.0.1";
  ASSERT_TRUE(p1.connect(a.port(), std::string(a.name().text()), "cookie"));
  ASSERT_TRUE(p2.connect(a.port(), std::string(a.name().text()), "cookie"));
  std::vector<std::uint8_t> part = frame_header(16u << 20);
  part.resize(part.size() + (5u << 20), 0);
  // Grows to 4 MiB of extra, then 8: past the cap. The node may close before all is written
  // (a broken pipe here is the node doing its job).
  asio::error_code ec;
  asio::write(p1.sock, asio::buffer(part), ec);
  EXPECT_TRUE(!ec || ec == asio::error::broken_pipe || ec == asio::error::connection_reset) << ec.message();
  EXPECT_TRUE(p1.closed_by_peer(kWait));
  EXPECT_TRUE(logs.wait_for({"event=nodedown", "partial frames of all connections"}, kWait));
  EXPECT_TRUE(testing::eventually([] { return net::partial_frame_bytes() == 0; }, kWait));
  Node& b = start("b");
  EXPECT_TRUE(b.ping(a.name()));
}

TEST_F(HostilePeer, AMessageThatWouldBlowUpWhenDecodedIsRefused) {
  NodeOptions o;
  o.max_decoded_bytes = 16u << 20;
  Node& a = start("a", o);
  Node& b = start("b");
  ASSERT_TRUE(b.ping(a.name()));
  LogCapture logs;
  RawPeer raw;
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  // A list of 2 M [] is 2 MiB on the wire and 32 MiB as terms.
  const Term big = Term::list(std::vector<Term>(2u << 20));
  raw.reg_send("nobody", big);
  EXPECT_TRUE(raw.closed_by_peer(kWait));
  EXPECT_TRUE(logs.wait_for({"event=bad_packet", "memory budget"}, kWait));
  EXPECT_TRUE(b.ping(a.name()));
}

}  // namespace
}  // namespace hypha
