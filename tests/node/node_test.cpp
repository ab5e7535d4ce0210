// Nodes in one test process: C++ to C++ over real loopback connections, plus raw peers that
// misbehave (garbage frames, no reading, no ticking).
#include "hypha/node/node.hpp"

#include <gtest/gtest.h>

#include "raw_peer.hpp"
#include "test_util.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>
#include <array>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "hypha/net/flags.hpp"
#include "hypha/net/handshake.hpp"
#include "hypha/base/log.hpp"
#include "hypha/term/text.hpp"

namespace hypha {
namespace {

using testing::free_port;
using testing::T;

using namespace std::chrono_literals;
using namespace hypha::literals;
using asio::ip::tcp;

constexpr auto kWait = 5s;


class NodeTest : public ::testing::Test {
 protected:
  std::uint16_t epmd = free_port();
  std::vector<std::unique_ptr<Node>> nodes;

  Node& start(const std::string& name, const std::string& cookie = "cookie", NodeOptions extra = {}) {
    extra.cookie = cookie;
    nodes.push_back(testing::start_node(name, epmd, extra));
    return *nodes.back();
  }
};

Task<> echo(Process& self) {
  for (;;) {
    Term m = co_await self.receive();
    if (m.is_tuple() && m.tuple_size() == 2 && m[0].is_pid()) self.send(m[0].pid(), m[1]);
    if (m.is_tuple() && m.tuple_size() == 2 && m[0].is_atom(Atom("exit"))) self.exit(m[1]);
  }
}

TEST_F(NodeTest, TwoNodesPingAndListEachOther) {
  Node& a = start("a");
  Node& b = start("b");
  EXPECT_TRUE(a.serves_epmd());
  EXPECT_FALSE(b.serves_epmd());
  EXPECT_TRUE(a.ping(b.name()));
  EXPECT_EQ(a.nodes(), std::vector<Atom>{b.name()});
  EXPECT_EQ(b.nodes(), std::vector<Atom>{a.name()});
  EXPECT_FALSE(a.ping(Atom("nobody@127.0.0.1"), 2s));
}

TEST_F(NodeTest, SendsToPidsAndNamesAcrossNodesKeepOrder) {
  Node& a = start("a");
  Node& b = start("b");
  Pid e = b.runtime().spawn(echo);
  ASSERT_TRUE(b.runtime().register_name(Atom("echo"), e));
  Mailbox me = a.runtime().mailbox();
  a.runtime().send(Atom("echo"), b.name(), Term::tuple({Term(me.pid()), "by_name"_atom}));
  EXPECT_EQ(me.receive(kWait), "by_name"_atom);
  for (int i = 0; i < 10000; ++i) me.send(e, Term::tuple({Term(me.pid()), Term(i)}));
  for (int i = 0; i < 10000; ++i) {
    auto m = me.receive(kWait);
    ASSERT_TRUE(m);
    ASSERT_EQ(*m, Term(i));
  }
}

TEST_F(NodeTest, PeersAreListedWithTheirConnectionsCounters) {
  Node& a = start("a");
  Node& b = start("b");
  NodeOptions hidden;
  hidden.hidden = true;
  Node& h = start("h", "cookie", hidden);
  EXPECT_TRUE(a.peers().empty());
  const auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(a.ping(b.name()));
  ASSERT_TRUE(h.ping(a.name()));
  Pid e = b.runtime().spawn(echo);
  Mailbox me = a.runtime().mailbox();
  const Term payload = Term::binary(std::string(1000, 'x'));
  for (int i = 0; i < 100; ++i) me.send(e, Term::tuple({Term(me.pid()), payload}));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(me.receive(kWait));

  const auto peers = a.peers();
  ASSERT_EQ(peers.size(), 2u);
  const PeerInfo& pb = peers[0];
  EXPECT_EQ(pb.name, b.name());
  EXPECT_FALSE(pb.hidden);
  EXPECT_TRUE(peers[1].hidden);  // h
  EXPECT_GE(pb.since, before);
  EXPECT_LE(pb.since, std::chrono::system_clock::now());
  // 100 sends and the ping's call out; 100 echoes and the ping's reply in (ticks are not messages)
  EXPECT_GE(pb.messages_out, 101u);
  EXPECT_GE(pb.messages_in, 101u);
  EXPECT_LT(pb.messages_out, 120u);
  EXPECT_GT(pb.bytes_out, 100u * 1000);
  EXPECT_GT(pb.bytes_in, 100u * 1000);
  // The other side counts the same frames the other way round.
  const auto from_b = b.peers();
  ASSERT_EQ(from_b.size(), 1u);
  EXPECT_EQ(from_b[0].messages_in, pb.messages_out);
  EXPECT_EQ(from_b[0].name, a.name());
}

// Senders on every worker and a plain thread write to one connection at once (the writer makes
// its system call without the connection's lock while the others append): nothing is lost, and
// each sender's messages arrive in the order it sent them.
TEST_F(NodeTest, ManySendersOnOneConnectionLoseNothingAndKeepEachSendersOrder) {
  Node& a = start("a");
  Node& b = start("b");
  constexpr int kSenders = 8, kEach = 5000;
  Mailbox result = b.runtime().mailbox();
  const Pid report = result.pid();
  const Pid collector = b.runtime().spawn([report](Process& self) -> Task<> {
    std::vector<std::int64_t> next(kSenders + 1, 0);
    std::string bad;
    for (int got = 0; got < (kSenders + 1) * kEach; ++got) {
      const Term m = co_await self.receive();
      const auto who = static_cast<std::size_t>(m[0].small_integer());
      if (m[1].small_integer() != next[who] && bad.empty())
        bad = "sender " + std::to_string(who) + " sent " + m[1].to_string() + " after " + std::to_string(next[who] - 1);
      next[who] = m[1].small_integer() + 1;
    }
    self.send(report, bad.empty() ? Term(Atom("ok")) : Term::binary(bad));
  });
  Mailbox go = a.runtime().mailbox();
  for (int s = 0; s < kSenders; ++s)
    a.runtime().spawn([s, collector](Process& self) -> Task<> {
      for (int i = 0; i < kEach; ++i) self.send(collector, Term::tuple({Term(s), Term(i)}));
      co_return;
    });
  std::thread thread_sender([&] {
    for (int i = 0; i < kEach; ++i) go.send(collector, Term::tuple({Term(kSenders), Term(i)}));
  });
  thread_sender.join();
  EXPECT_EQ(result.receive(4 * kWait), Term(Atom("ok")));
}

TEST_F(NodeTest, AliasesWorkAcrossNodes) {
  Node& a = start("a");
  Node& b = start("b");
  Mailbox me = a.runtime().mailbox();
  b.runtime().spawn([reply = me.pid()](Process& self) -> Task<> {
    self.send(reply, Term(self.alias()));
    Term m = co_await self.receive();
    self.send(reply, Term::tuple({"aliased"_atom, m}));
  });
  auto alias = me.receive(kWait);
  ASSERT_TRUE(alias && alias->is_ref());
  a.runtime().send(alias->ref(), "hello"_atom);
  EXPECT_EQ(me.receive(kWait), Term::tuple({"aliased"_atom, "hello"_atom}));
}

TEST_F(NodeTest, MonitorAcrossNodesGivesTheExitReason) {
  Node& a = start("a");
  Node& b = start("b");
  Pid e = b.runtime().spawn(echo);
  Mailbox me = a.runtime().mailbox();
  Ref r = me.monitor(e);
  // A round trip first, so the monitor is in place before the exit order.
  me.send(e, Term::tuple({Term(me.pid()), "sync"_atom}));
  ASSERT_EQ(me.receive(kWait), "sync"_atom);
  me.send(e, Term::tuple({"exit"_atom, T("{shutdown,x}")}));
  EXPECT_EQ(me.receive(kWait), Term::tuple({"DOWN"_atom, Term(r), "process"_atom, Term(e), T("{shutdown,x}")}));
}

TEST_F(NodeTest, LinkAcrossNodesPropagatesAndTrapExitTurnsItIntoAMessage) {
  Node& a = start("a");
  Node& b = start("b");
  Pid e = b.runtime().spawn(echo);
  Mailbox me = a.runtime().mailbox();  // mailboxes trap exits
  me.link(e);
  me.send(e, Term::tuple({Term(me.pid()), "sync"_atom}));
  ASSERT_EQ(me.receive(kWait), "sync"_atom);
  me.send(e, Term::tuple({"exit"_atom, "boom"_atom}));
  EXPECT_EQ(me.receive(kWait), Term::tuple({"EXIT"_atom, Term(e), "boom"_atom}));
}

TEST_F(NodeTest, ALinkedRemoteProcessKillsALocalOneThatDoesNotTrap) {
  Node& a = start("a");
  Node& b = start("b");
  Pid e = b.runtime().spawn(echo);
  Mailbox me = a.runtime().mailbox();
  Pid local = a.runtime().spawn([e, reply = me.pid()](Process& self) -> Task<> {
    self.link(e);
    self.send(e, Term::tuple({Term(self.pid()), "sync"_atom}));
    co_await self.receive();
    self.send(reply, "linked"_atom);
    co_await self.receive();  // killed by the link before anything comes
  });
  Ref r = me.monitor(local);
  ASSERT_EQ(me.receive(kWait), "linked"_atom);
  me.send(e, Term::tuple({"exit"_atom, "remote_crash"_atom}));
  EXPECT_EQ(me.receive(kWait), Term::tuple({"DOWN"_atom, Term(r), "process"_atom, Term(local), "remote_crash"_atom}));
}

TEST_F(NodeTest, AStoppedNodeGivesNoconnectionAndNodedown) {
  Node& a = start("a");
  Node& b = start("b");
  Pid e = b.runtime().spawn(echo);
  Mailbox me = a.runtime().mailbox();
  Ref r = me.monitor(e);
  me.link(e);
  me.send(e, Term::tuple({Term(me.pid()), "sync"_atom}));
  ASSERT_EQ(me.receive([](const Term& m) { return m == "sync"_atom; }, kWait), "sync"_atom);
  a.monitor_nodes(me.pid());  // after the nodeup
  const Atom bname = b.name();
  b.stop();
  std::vector<Term> got;
  for (int i = 0; i < 3; ++i) {
    auto m = me.receive(kWait);
    ASSERT_TRUE(m) << i;
    got.push_back(*m);
  }
  std::sort(got.begin(), got.end());
  // Tuples sort by size: {nodedown,N}, {'EXIT',P,R}, {'DOWN',...}.
  EXPECT_EQ(got[0], Term::tuple({"nodedown"_atom, Term(bname)}));
  EXPECT_EQ(got[1], Term::tuple({"EXIT"_atom, Term(e), "noconnection"_atom}));
  EXPECT_EQ(got[2], Term::tuple({"DOWN"_atom, Term(r), "process"_atom, Term(e), "noconnection"_atom}));
  EXPECT_TRUE(a.nodes().empty());
}

TEST_F(NodeTest, SimultaneousConnectsEndWithOneConnection) {
  Node& a = start("a");
  Node& b = start("b");
  // Each round skews the two starts differently, so that the handshakes cross at different
  // steps (name, status, challenge, ack) and each tie-break path is taken.
  for (int round = 0; round < 12; ++round) {
    const auto skew = std::chrono::microseconds((round / 2) * (round / 2) * 50);
    Result<bool, std::string> ra = false, rb = false;
    std::thread ta([&] {
      if (round % 2) std::this_thread::sleep_for(skew);
      ra = a.connect(b.name());
    });
    std::thread tb([&] {
      if (round % 2 == 0) std::this_thread::sleep_for(skew);
      rb = b.connect(a.name());
    });
    ta.join();
    tb.join();
    EXPECT_TRUE(ra.ok()) << (ra.ok() ? "" : ra.error());
    EXPECT_TRUE(rb.ok()) << (rb.ok() ? "" : rb.error());
    EXPECT_EQ(a.nodes(), std::vector<Atom>{b.name()});
    EXPECT_EQ(b.nodes(), std::vector<Atom>{a.name()});
    EXPECT_TRUE(a.ping(b.name()));
    // Both sides see the connection go before the next round.
    Mailbox ma = a.runtime().mailbox(), mb = b.runtime().mailbox();
    a.monitor_node(ma.pid(), b.name());
    b.monitor_node(mb.pid(), a.name());
    a.disconnect(b.name());
    EXPECT_TRUE(ma.receive(kWait));
    EXPECT_TRUE(mb.receive(kWait));
  }
}

TEST_F(NodeTest, MonitorNodeFiresImmediatelyForAnUnreachableNode) {
  Node& a = start("a");
  Mailbox me = a.runtime().mailbox();
  a.monitor_node(me.pid(), Atom("ghost@127.0.0.1"));
  EXPECT_EQ(me.receive(10s), Term::tuple({"nodedown"_atom, "ghost@127.0.0.1"_atom}));
}

TEST_F(NodeTest, WrongCookieIsRefusedAndTheNodeKeepsServing) {
  Node& a = start("a");
  Node& b = start("b");
  Node& c = start("c", "another_cookie");
  EXPECT_FALSE(c.ping(a.name(), 3s));
  EXPECT_TRUE(b.ping(a.name()));
  EXPECT_EQ(a.nodes(), std::vector<Atom>{b.name()});
}

using testing::RawPeer;

// A peer that never reads, for the flow-control tests: a node with a 256 KiB send queue holding
// process senders for `wait`, the peer connected and up on the node before anything is sent
// (sends before that would go to a connection still being set up).
constexpr const char* kSilentPeer = "raw@127.0.0.1";
NodeOptions small_queue(std::chrono::milliseconds wait) {
  NodeOptions o;
  o.max_send_queue = 256 * 1024;
  o.max_send_wait = wait;
  return o;
}
void connect_silent_peer(Node& a, RawPeer& raw) {
  Mailbox me = a.runtime().mailbox();
  a.monitor_nodes(me.pid());
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  ASSERT_EQ(me.receive(kWait), Term::tuple({"nodeup"_atom, Term(Atom(kSilentPeer))}));
  a.monitor_nodes(me.pid(), false);
}

TEST_F(NodeTest, AMalformedFrameClosesThatConnectionOnly) {
  Node& a = start("a");
  Node& b = start("b");
  RawPeer raw;
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  const std::uint8_t garbage[] = {0, 0, 0, 5, 112, 131, 104, 9, 9};  // a tuple that stops short
  asio::write(raw.sock, asio::buffer(garbage));
  EXPECT_TRUE(raw.closed_by_peer(kWait));
  EXPECT_TRUE(a.ping(b.name()));
}

TEST_F(NodeTest, ADistributionHeaderNamingAnEmptyAtomCacheSlotClosesTheConnection) {
  Node& a = start("a");
  RawPeer raw;
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  // 131 68, one atom cache reference, flags 0 (not new, segment 0), index 5: never filled.
  const std::uint8_t bad[] = {0, 0, 0, 7, 131, 68, 1, 0, 5, 104, 0};
  asio::write(raw.sock, asio::buffer(bad));
  EXPECT_TRUE(raw.closed_by_peer(kWait));
}

TEST_F(NodeTest, AnOversizedFrameIsRefused) {
  NodeOptions small;
  small.max_frame = 1024;
  Node& a = start("a", "cookie", small);
  RawPeer raw;
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  const std::uint8_t header[] = {0, 1, 0, 0};  // announces 65536 bytes
  asio::write(raw.sock, asio::buffer(header));
  EXPECT_TRUE(raw.closed_by_peer(kWait));
}

TEST_F(NodeTest, APeerThatStopsReadingIsDisconnectedAtTheQueueLimit) {
  NodeOptions small;
  small.max_send_queue = 256 * 1024;
  Node& a = start("a", "cookie", small);
  RawPeer raw;
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  Mailbox me = a.runtime().mailbox();
  a.monitor_nodes(me.pid());
  const Pid far{Atom("raw@127.0.0.1"), 1, 0, 7};
  const Term big = Term::binary(std::string(64 * 1024, 'x'));
  // The raw peer never reads: socket buffers fill, then the queue, then the connection goes.
  auto is_down = [](const Term& m) { return m.is_tuple() && m[0].is_atom(Atom("nodedown")); };
  std::optional<Term> down;
  for (int i = 0; i < 4000 && !down; ++i) {
    a.runtime().send(far, big);
    down = me.receive(is_down, 0ms);
  }
  if (!down) down = me.receive(is_down, kWait);
  EXPECT_EQ(down, Term::tuple({"nodedown"_atom, "raw@127.0.0.1"_atom}));
}

TEST_F(NodeTest, ASenderCanWaitForTheQueueToDrain) {
  Node& a = start("a");
  Node& b = start("b");
  Pid sink = b.runtime().spawn([](Process& self) -> Task<> {
    for (;;) co_await self.receive();
  });
  ASSERT_TRUE(a.connect(b.name()));
  const Term big = Term::binary(std::string(64 * 1024, 'x'));
  for (int i = 0; i < 200; ++i) a.runtime().send(sink, big);
  EXPECT_TRUE(a.wait_send_queue(b.name(), 0, kWait));  // b reads: the queue empties
  EXPECT_EQ(a.send_queue_bytes(b.name()), 0u);
  RawPeer raw;  // reads nothing: the queue cannot drain
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  const Pid far{Atom("raw@127.0.0.1"), 1, 0, 7};
  for (int i = 0; i < 400; ++i) a.runtime().send(far, big);
  EXPECT_GT(a.send_queue_bytes(Atom("raw@127.0.0.1")), 0u);
  EXPECT_FALSE(a.wait_send_queue(Atom("raw@127.0.0.1"), 0, 100ms));
  EXPECT_FALSE(a.wait_send_queue(Atom("nobody@127.0.0.1"), 0, 100ms));
}

// The node serving EPMD embedded goes away: a surviving node serves EPMD in its place and
// registers again, so new nodes still find it by name.
TEST_F(NodeTest, WhenTheNodeServingEpmdStopsAnotherTakesOver) {
  // b logs epmd_registered (info) once it has registered again: wait for that event.
  std::mutex mu;
  std::condition_variable cv;
  bool registered_again = false;
  log::set_level(log::Level::Info);
  log::set_sink([&](const std::string& line) {
    if (line.find("event=epmd_registered") == std::string::npos || line.find("node=b@") == std::string::npos) return;
    std::lock_guard lock(mu);
    registered_again = true;
    cv.notify_all();
  });
  struct Restore {
    ~Restore() {
      log::set_sink(nullptr);
      log::set_level(log::Level::Warn);
    }
  } restore;
  Node& a = start("a");
  Node& b = start("b");
  ASSERT_TRUE(a.serves_epmd());
  ASSERT_FALSE(b.serves_epmd());
  a.stop();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return registered_again; }));
  }
  ASSERT_TRUE(b.serves_epmd());
  NodeOptions client;
  client.publish = false;
  Node& c = start("c", "cookie", client);
  EXPECT_TRUE(c.ping(b.name()));
  EXPECT_FALSE(c.ping(a.name(), 1s));
}

// The EPMD port is held by an EPMD that goes away while a node registers with it (a node
// serving EPMD embedded stopping meanwhile): the starting node serves EPMD itself and registers.
TEST_F(NodeTest, AStartingNodeServesEpmdWhenTheOneHoldingThePortGoesAway) {
  asio::io_context io;
  tcp::acceptor fake(io, tcp::endpoint(tcp::v4(), epmd));
  std::thread holder([&] {
    tcp::socket s = fake.accept();
    std::array<char, 64> buf{};
    asio::error_code ec;
    s.read_some(asio::buffer(buf), ec);  // the ALIVE2 request: gone before answering
    s.close(ec);
    fake.close(ec);
  });
  Node& a = start("a");
  holder.join();
  EXPECT_TRUE(a.serves_epmd());
  NodeOptions client;
  client.publish = false;
  Node& c = start("c", "cookie", client);
  EXPECT_TRUE(c.ping(a.name()));
}

// The workers run the node's I/O; with the only worker blocked by a process, the watchdog keeps
// it going: ticks go out and come in, so the peer stays connected past its tick time.
TEST_F(NodeTest, AWorkerBlockedByAProcessDoesNotStopTheNodesIo) {
  NodeOptions one;
  one.threads = 1;
  one.net_ticktime = 1s;
  Node& a = start("a", "cookie", one);
  NodeOptions quick;
  quick.net_ticktime = 1s;
  Node& b = start("b", "cookie", quick);
  Pid echo_pid = a.runtime().spawn(echo);
  ASSERT_TRUE(b.connect(a.name()));
  Mailbox me = b.runtime().mailbox();
  b.monitor_nodes(me.pid());
  // The process holds the only worker, as a long computation would, until the test lets it go.
  std::promise<void> release;
  struct Release {
    explicit Release(std::promise<void>& pr) : p(pr) {}
    Release(const Release&) = delete;
    ~Release() { p.set_value(); }
    std::promise<void>& p;
  };
  std::optional<Release> release_at_exit;
  release_at_exit.emplace(release);  // also on an early return: the node can then stop
  Mailbox started = a.runtime().mailbox();
  a.runtime().spawn([to = started.pid(), gate = release.get_future().share()](Process& self) -> Task<> {
    self.send(to, "blocking"_atom);
    gate.wait();
    co_return;
  });
  ASSERT_EQ(started.receive(kWait), Term("blocking"_atom));
  auto is_down = [](const Term& m) { return m.is_tuple() && m[0].is_atom(Atom("nodedown")); };
  EXPECT_FALSE(me.receive(is_down, 2500ms));  // more than twice the tick time
  release_at_exit.reset();  // the worker is free again
  me.send(echo_pid, Term::tuple({Term(me.pid()), "still_there"_atom}));
  auto is_reply = [](const Term& m) { return m.is_atom(Atom("still_there")); };
  EXPECT_TRUE(me.receive(is_reply, kWait));
}

// A process's sends in one run are corked; a burst far larger than the send queue limit still
// goes out (written as it grows), and the peer gets every message in order.
TEST_F(NodeTest, AProcessSendingABurstBeyondTheQueueLimitKeepsItsConnection) {
  NodeOptions small;
  small.max_send_queue = 256 * 1024;
  Node& a = start("a", "cookie", small);
  Node& b = start("b");
  Mailbox me = b.runtime().mailbox();
  ASSERT_TRUE(a.connect(b.name()));
  a.runtime().spawn([to = me.pid()](Process& self) -> Task<> {
    const std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 64; ++i) self.send(to, Term::tuple({Term(i), Term::binary(chunk)}));  // 4 MiB, no wait
    co_return;
  });
  for (int i = 0; i < 64; ++i) {
    auto m = me.receive(kWait);
    ASSERT_TRUE(m) << "message " << i;
    ASSERT_EQ((*m)[0], Term(i));
  }
  EXPECT_EQ(a.nodes(), std::vector<Atom>{b.name()});
}

// A process flooding a peer that never reads is held in its send while the queue is full (as a
// busy distribution port holds a BEAM sender); after max_send_wait the connection is closed and
// the process goes on.
TEST_F(NodeTest, AProcessFloodingAPeerThatNeverReadsIsHeldThenTheConnectionCloses) {
  Node& a = start("a", "cookie", small_queue(300ms));
  RawPeer raw;
  ASSERT_NO_FATAL_FAILURE(connect_silent_peer(a, raw));
  Mailbox me = a.runtime().mailbox();
  Mailbox gate = a.runtime().mailbox();
  const auto started = std::chrono::steady_clock::now();
  const Pid flooder = a.runtime().spawn([to = me.pid()](Process& self) -> Task<> {
    co_await self.receive();  // subscribed to nodedown
    const Pid far{Atom(kSilentPeer), 1, 0, 7};
    const Term big = Term::binary(std::string(64 * 1024, 'x'));
    auto is_down = [](const Term& m) { return m.is_tuple() && m[0].is_atom(Atom("nodedown")); };
    for (int i = 0; i < 100000; ++i) {
      self.send(far, big);
      auto down = co_await self.receive(is_down, 0ms);
      if (down) break;
    }
    self.send(to, "flooder_done"_atom);
  });
  a.monitor_nodes(flooder);
  gate.send(flooder, "go"_atom);
  EXPECT_EQ(me.receive(kWait), Term("flooder_done"_atom));
  // Held, not dropped at once: the connection went only after max_send_wait without room.
  EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
  EXPECT_TRUE(a.nodes().empty());
}

// Stopping a node whose process is held in a send to a peer that never reads: the connection is
// cut after the flush time, the process is let go, and stop returns (not after max_send_wait).
TEST_F(NodeTest, StoppingANodeLetsGoOfAProcessHeldInASend) {
  Node& a = start("a", "cookie", small_queue(60s));
  RawPeer raw;
  ASSERT_NO_FATAL_FAILURE(connect_silent_peer(a, raw));
  {
    Mailbox me = a.runtime().mailbox();
    a.runtime().spawn([to = me.pid()](Process& self) -> Task<> {
      const Pid far{Atom(kSilentPeer), 1, 0, 7};
      const Term big = Term::binary(std::string(64 * 1024, 'x'));
      self.send(to, "flooding"_atom);
      for (int i = 0; i < 1000; ++i) self.send(far, big);  // held once the queue is full
      self.send(to, "let_go"_atom);
      co_return;
    });
    ASSERT_EQ(me.receive(kWait), Term("flooding"_atom));
    // Held: it has not got past its sends (the peer reads nothing; 64 MB would not fit anywhere).
    ASSERT_EQ(me.receive(300ms), std::nullopt);
  }
  const auto t0 = std::chrono::steady_clock::now();
  a.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // the flush time (2 s) and the cut, not 60 s
}

TEST_F(NodeTest, ASilentPeerIsDroppedAfterTheTickTime) {
  NodeOptions quick;
  quick.net_ticktime = 1s;
  Node& a = start("a", "cookie", quick);
  RawPeer raw;
  ASSERT_TRUE(raw.connect(a.port(), std::string(a.name().text()), "cookie"));
  Mailbox me = a.runtime().mailbox();
  a.monitor_nodes(me.pid());
  const auto t0 = std::chrono::steady_clock::now();
  auto is_down = [](const Term& m) { return m.is_tuple() && m[0].is_atom(Atom("nodedown")); };
  EXPECT_EQ(me.receive(is_down, kWait), Term::tuple({"nodedown"_atom, "raw@127.0.0.1"_atom}));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 900ms);
  EXPECT_LE(took, 2500ms);
}

}  // namespace
}  // namespace hypha
