// The KV store on one node: buckets through the exports, and the registry forgetting a bucket
// that dies.
#include "kv.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"


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
