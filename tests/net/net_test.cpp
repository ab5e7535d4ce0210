#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <asio/write.hpp>
#include <array>
#include <optional>

#include "log_capture.hpp"
#include "test_util.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <future>
#include <thread>

#include "hypha/net/digest.hpp"
#include "hypha/net/epmd.hpp"
#include "hypha/net/flags.hpp"
#include "hypha/net/handshake.hpp"
#include "hypha/net/packet.hpp"
#include "hypha/term/text.hpp"

namespace hypha::net {
namespace {

using asio::ip::tcp;

// An io_context on its own thread for the duration of a test.
struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    guard.reset();
    io.stop();
    thread.join();
  }
  template <class A>
  auto run(A&& awaitable) {
    return asio::co_spawn(io, std::forward<A>(awaitable), asio::use_future).get();
  }
};

TEST(Digest, MatchesErlangMd5OfCookieAndDecimalChallenge) {
  // erlang:md5("secret" ++ integer_to_list(123456)) in OTP 25.
  const Digest d = challenge_digest("secret", 123456);
  const Digest expected = {231, 112, 59, 69, 55, 120, 157, 112, 85, 245, 80, 72, 232, 249, 210, 92};
  EXPECT_TRUE(digest_equal(d, expected));
  EXPECT_FALSE(digest_equal(d, challenge_digest("secret", 123457)));
}

TEST(Flags, OursCarryEveryMandatoryFlagOfOtp25To28) {
  EXPECT_EQ(dflag::missing_mandatory(dflag::kOurs), "");
  EXPECT_EQ(dflag::kOurs & dflag::kMandatory26, dflag::kMandatory26);
  EXPECT_TRUE(dflag::kOurs & dflag::kMandatory25Digest);
  EXPECT_EQ(dflag::missing_mandatory(dflag::kMandatory25Digest), "");  // the digest stands for the set
  EXPECT_NE(dflag::missing_mandatory(dflag::kMandatory25 & ~dflag::kMapTag).find("MAP_TAG"), std::string::npos);
}

TEST(Epmd, EmbeddedServerRegistersLooksUpAndForgetsOnClose) {
  IoThread t;
  EpmdServer server(t.io.get_executor());
  auto port = server.start(0);
  ASSERT_TRUE(port.ok()) << port.error();
  auto reg = t.run(epmd_register("alpha", 5555, false, *port));
  ASSERT_TRUE(reg.ok()) << reg.error();
  EXPECT_NE(reg->creation, 0u);
  // The same name twice is refused.
  auto dup = t.run(epmd_register("alpha", 5556, false, *port));
  EXPECT_FALSE(dup.ok());
  auto found = t.run(epmd_port_please("127.0.0.1", "alpha", *port));
  ASSERT_TRUE(found.ok()) << found.error();
  EXPECT_EQ(found->port, 5555);
  EXPECT_EQ(found->name, "alpha");
  EXPECT_EQ(found->highest, 6);
  auto names = t.run(epmd_names("127.0.0.1", *port));
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, "name alpha at port 5555\n");
  EXPECT_FALSE(t.run(epmd_port_please("127.0.0.1", "beta", *port)).ok());
  // Closing the registration socket unregisters.
  asio::post(t.io, [&] { reg->socket->close(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server.nodes().empty() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_TRUE(server.nodes().empty());
}

struct HandshakeOutcome {
  Result<PeerInfo, std::string> client{unexpected(std::string("not run"))};
  Result<PeerInfo, std::string> server{unexpected(std::string("not run"))};
};

HandshakeOutcome handshake(const std::string& client_cookie, const std::string& server_cookie) {
  IoThread t;
  tcp::acceptor acc(t.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const auto ep = acc.local_endpoint();
  HandshakeConfig scfg{"b@127.0.0.1", server_cookie, dflag::kOurs, 2};
  HandshakeConfig ccfg{"a@127.0.0.1", client_cookie, dflag::kOurs, 1};
  auto server = asio::co_spawn(
      t.io,
      [&]() -> asio::awaitable<Result<PeerInfo, std::string>> {
        tcp::socket s = co_await acc.async_accept(asio::use_awaitable);
        auto r = co_await handshake_accept(s, scfg, [](const PeerInfo&) { return AcceptStatus::Ok; });
        s.close();
        co_return r;
      },
      asio::use_future);
  auto client = asio::co_spawn(
      t.io,
      [&]() -> asio::awaitable<Result<PeerInfo, std::string>> {
        tcp::socket s(t.io);
        co_await s.async_connect(ep, asio::use_awaitable);
        auto r = co_await handshake_connect(s, ccfg, "b@127.0.0.1");
        s.close();
        co_return r;
      },
      asio::use_future);
  HandshakeOutcome out;
  out.client = client.get();
  out.server = server.get();
  return out;
}

TEST(Handshake, SameCookieConnectsAndExchangesNamesFlagsCreations) {
  auto o = handshake("cookie", "cookie");
  ASSERT_TRUE(o.client.ok()) << o.client.error();
  ASSERT_TRUE(o.server.ok()) << o.server.error();
  EXPECT_EQ(o.client->name, "b@127.0.0.1");
  EXPECT_EQ(o.client->creation, 2u);
  EXPECT_EQ(o.server->name, "a@127.0.0.1");
  EXPECT_EQ(o.server->flags, dflag::kOurs);
}

TEST(Handshake, WrongCookieIsRefusedOnBothSides) {
  auto o = handshake("cookie", "other");
  ASSERT_FALSE(o.server.ok());
  EXPECT_NE(o.server.error().find("wrong cookie"), std::string::npos);
  EXPECT_FALSE(o.client.ok());
}

using Bytes = std::vector<std::uint8_t>;

TEST(Packet, FramesParseBackInBothFormats) {
  const Term ctrl = parse_term("{6,<a@h.1.0>,'',sink}").value();
  const Term msg = parse_term("{hello,[1,2.5],<<\"x\">>}").value();
  for (bool header : {false, true}) {
    const Frame f = make_frame(ctrl, &msg, header);
    ASSERT_EQ(f.size() - 4, (std::size_t{f[0]} << 24 | std::size_t{f[1]} << 16 | std::size_t{f[2]} << 8 | f[3]));
    AtomCache cache;
    auto p = parse_packet(std::span(f).subspan(4), cache, {});
    ASSERT_TRUE(p.ok()) << p.error();
    EXPECT_EQ(p->control, ctrl);
    EXPECT_EQ(p->payload, msg);
  }
}

TEST(Packet, AtomCacheEntriesAreRememberedAcrossPackets) {
  AtomCache cache;
  // Header: 2 refs; ref 0 new in segment 0 slot 4 ("aa"), ref 1 new in segment 1 slot 9 ("bb").
  // Flags byte 0 = (ref1: 8|1) << 4 | (ref0: 8|0); byte 1 low half = LongAtoms 0.
  // Control: {ref0, ref1} as SMALL_TUPLE of ATOM_CACHE_REFs.
  const Bytes first = {131, 68, 2, 0x98, 0x00, 4, 2, 'a', 'a', 9, 2, 'b', 'b', 104, 2, 82, 0, 82, 1};
  auto p1 = parse_packet(first, cache, {});
  ASSERT_TRUE(p1.ok()) << p1.error();
  EXPECT_EQ(p1->control, parse_term("{aa,bb}").value());
  // Later packet: the same slots, not new this time, in the other order.
  const Bytes second = {131, 68, 2, 0x01, 0x00, 9, 4, 104, 2, 82, 0, 82, 1};
  auto p2 = parse_packet(second, cache, {});
  ASSERT_TRUE(p2.ok()) << p2.error();
  EXPECT_EQ(p2->control, parse_term("{bb,aa}").value());
}

TEST(Packet, MalformedPacketsSayWhy) {
  AtomCache cache;
  auto err = [&](Bytes b) {
    auto p = parse_packet(b, cache, {});
    EXPECT_FALSE(p.ok());
    return p.ok() ? std::string() : p.error();
  };
  EXPECT_EQ(err({}), "empty packet");
  EXPECT_NE(err({99}).find("unsupported packet type"), std::string::npos);
  EXPECT_NE(err({131, 68, 1, 0x00, 7, 106}).find("empty atom cache entry"), std::string::npos);
  EXPECT_NE(err({131, 68, 3, 0x88}).find("truncated"), std::string::npos);
  EXPECT_NE(err({112, 106}).find("missing version byte"), std::string::npos);
  EXPECT_NE(err({112, 131, 106, 131, 106, 0}).find("trailing"), std::string::npos);
}

}  // namespace
}  // namespace hypha::net

namespace hypha::net {
namespace {

// This host's first IPv4 address that is not loopback, if it has one.
std::optional<asio::ip::address_v4> non_loopback_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<asio::ip::address_v4> found;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    const auto a = asio::ip::address_v4(ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr));
    if (!a.is_loopback()) found = a;
  }
  freeifaddrs(list);
  return found;
}

TEST(Epmd, ASilentConnectionIsClosedAndLogged) {
  testing::LogCapture logs;
  IoThread t;
  EpmdServer server(t.io.get_executor());
  auto port = server.start(0);
  ASSERT_TRUE(port.ok()) << port.error();
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::address_v4::loopback(), *port});
  EXPECT_TRUE(testing::closed_by_peer(s, std::chrono::seconds(8)));
  EXPECT_TRUE(logs.wait_for({"event=epmd_request_refused", "no request within"}, std::chrono::seconds(1)));
}

TEST(Epmd, RegistrationsComeFromLoopbackOnly) {
  // The rule itself, then (where the host has an address off loopback) on the wire.
  NodeEntry e;
  e.name = "intruder";
  e.port = 4242;
  const auto req = alive2_request(e);
  auto parsed = parse_alive2(req);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->name, "intruder");
  EXPECT_FALSE(parse_alive2(std::span(req).first(req.size() - 1)).ok());
  const auto remote = non_loopback_address();
  if (!remote) {
    ADD_FAILURE() << "this host has no IPv4 address off loopback to connect from";
    return;
  }
  testing::LogCapture logs;
  IoThread t;
  EpmdServer server(t.io.get_executor(), "owner@127.0.0.1");  // as a node embeds it
  auto port = server.start(0);
  ASSERT_TRUE(port.ok()) << port.error();
  asio::io_context io;
  tcp::socket s(io);
  s.connect({*remote, *port});  // from that address, not 127.0.0.1
  std::vector<std::uint8_t> framed{static_cast<std::uint8_t>(req.size() >> 8), static_cast<std::uint8_t>(req.size())};
  framed.insert(framed.end(), req.begin(), req.end());
  asio::write(s, asio::buffer(framed));
  EXPECT_TRUE(testing::closed_by_peer(s, std::chrono::seconds(5)));
  EXPECT_TRUE(logs.wait_for({"node=owner@127.0.0.1", "event=epmd_request_refused", "non-loopback"}, std::chrono::seconds(5)));
  EXPECT_TRUE(server.nodes().empty());
  // From loopback the same request registers.
  EXPECT_TRUE(t.run(epmd_register("friend", 4243, false, *port)).ok());
}

}  // namespace
}  // namespace hypha::net
