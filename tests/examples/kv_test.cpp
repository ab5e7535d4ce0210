// The KV store on one node: buckets through the exports, and the registry forgetting a bucket
// that dies.
#include "kv.hpp"

#include <gtest/gtest.h>

#include "log_capture.hpp"
#include "test_util.hpp"

#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <array>
#include <malloc.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HYPHA_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HYPHA_TEST_ASAN 1
#endif
#if HYPHA_TEST_ASAN
#include <sanitizer/allocator_interface.h>
#endif
#include <thread>


#include "hypha/otp/blocking.hpp"

namespace hypha {
namespace {

using testing::free_port;
using testing::T;

using namespace std::chrono_literals;


TEST(KvStore, BucketsAndADeadBucketIsForgotten) {
  auto node = testing::start_node("kvstore", free_port());
  ASSERT_TRUE(node);
  Exports exports;
  ASSERT_TRUE(kv::start_store(*node, exports).ok());
  Runtime& rt = node->runtime();
  auto call = [&](const char* fun, std::string_view args) {
    const Outcome out = block_on(rt, [&](Process& self) { return exports.apply(self, Atom("kv"), Atom(fun), T(args)); });
    EXPECT_TRUE(out.ok()) << exit_reason_of(out).to_string();
    return out.value;
  };
  EXPECT_EQ(call("create", R"([<<"b">>])"), T("ok"));
  EXPECT_EQ(call("put", R"([<<"b">>, <<"k">>, <<"v">>])"), T("ok"));
  EXPECT_EQ(call("get", R"([<<"b">>, <<"k">>])"), T(R"({ok, <<"v">>})"));
  EXPECT_EQ(call("get", R"([<<"b">>, <<"nokey">>])"), T("{ok, nil}"));
  EXPECT_EQ(call("get", R"([<<"nob">>, <<"k">>])"), T("{error, not_found}"));

  // Kill the bucket. The registry's monitor fired before ours (it monitored first), so once our
  // DOWN is here, a later registry call is answered after the registry forgot the bucket.
  const Term pid = call("whereis", R"([<<"b">>])");
  ASSERT_TRUE(pid.is_pid());
  Mailbox watcher = rt.mailbox();
  watcher.monitor(pid.pid());
  rt.exit(pid.pid(), T("kill"));
  ASSERT_TRUE(watcher.receive(5s).has_value());
  EXPECT_EQ(call("create", R"([<<"other">>])"), T("ok"));
  EXPECT_EQ(call("buckets", "[]"), T(R"([<<"other">>])"));
  EXPECT_EQ(call("get", R"([<<"b">>, <<"k">>])"), T("{error, not_found}"));
}

}  // namespace
}  // namespace hypha

namespace hypha {
namespace {

// Bytes the program has allocated and not freed (what the heap holds for it, not what the
// allocator or a sanitizer's quarantine keeps).
std::size_t heap_in_use() {
#if HYPHA_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#endif
}

// A text client on loopback.
struct KvClient {
  asio::io_context io;
  asio::ip::tcp::socket sock{io};
  explicit KvClient(std::uint16_t port) { sock.connect({asio::ip::address_v4::loopback(), port}); }
  void send(const std::string& text) { asio::write(sock, asio::buffer(text)); }
  // Reads until `end` has arrived; what was read.
  std::string read_until(const std::string& end) {
    asio::streambuf buf;
    asio::read_until(sock, buf, end);
    return {asio::buffers_begin(buf.data()), asio::buffers_end(buf.data())};
  }
  bool closed_by_server(std::chrono::milliseconds timeout) { return testing::closed_by_peer(sock, timeout); }
};

struct KvServer {
  std::unique_ptr<Node> node = testing::start_node("kvtext", free_port());
  std::shared_ptr<Exports> exports = std::make_shared<Exports>();
  std::shared_ptr<Router> router;
  std::unique_ptr<kv::TextServer> server;
  explicit KvServer(kv::TextServer::Limits limits = {}) {
    EXPECT_TRUE(kv::start_store(*node, *exports).ok());
    router = Router::start(*node, exports, RangeTable::parse({{"a-z", std::string(node->name().text())}}).value()).value();
    server = kv::TextServer::start(node->io_context(), 0, node->runtime(), router, limits).value();
  }
};

TEST(KvTextServer, ClientsThatPipelineAndNeverReadAreBackpressuredNotBuffered) {
  KvServer kv;
  KvClient setup(kv.server->port());
  setup.send("CREATE b\r\nPUT b k " + std::string(60000, 'v') + "\r\n");
  EXPECT_EQ(setup.read_until("OK\r\nOK\r\n"), "OK\r\nOK\r\n");
  const std::size_t before = heap_in_use();
  std::string gets;
  for (int i = 0; i < 4000; ++i) gets += "GET b k\r\n";
  std::vector<std::unique_ptr<KvClient>> greedy;
  for (int i = 0; i < 8; ++i) {
    greedy.push_back(std::make_unique<KvClient>(kv.server->port()));
    greedy.back()->send(gets);  // 4,000 replies of 60 KB each asked for, none read
  }
  // Each greedy session has started writing (unbounded, it would first have built the replies
  // to all the lines of its first read, ~1,800 of them).
  for (auto& g : greedy) EXPECT_GE(g->read_until("OK\r\n").size(), 60000u);
  // Another client is served meanwhile.
  KvClient other(kv.server->port());
  other.send("GET b k\r\n");
  EXPECT_EQ(other.read_until("OK\r\n").size(), 60000u + 6);
  // Unbounded, the replies would take 8 x 4,000 x 60 KB = 1.9 GB.
  const std::size_t now = heap_in_use();
  EXPECT_LT(now - std::min(before, now), 64u << 20);
}

TEST(KvTextServer, IdleClientsAreClosed) {
  testing::LogCapture logs;
  KvServer kv(kv::TextServer::Limits{std::chrono::milliseconds(200), 16});
  KvClient idle(kv.server->port());
  EXPECT_TRUE(idle.closed_by_server(5s));
  EXPECT_TRUE(logs.wait_for({"event=kv_client_closed", "reason=idle"}, 5s));
  KvClient active(kv.server->port());
  active.send("CREATE c\r\n");
  EXPECT_EQ(active.read_until("OK\r\n"), "OK\r\n");
}

}  // namespace
}  // namespace hypha
