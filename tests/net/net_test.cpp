#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <future>
#include <thread>

#include "hypha/net/digest.hpp"
#include "hypha/net/epmd.hpp"
#include "hypha/net/flags.hpp"
#include "hypha/net/handshake.hpp"

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
        auto r = co_await handshake_connect(s, ccfg, "b@127.0.0.1", nullptr);
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

}  // namespace
}  // namespace hypha::net
