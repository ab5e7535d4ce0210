// The router between two C++ nodes: routing to the owner, forwarding with each node's own table,
// a missing entry, and tables that point at each other ending in an error instead of a loop.
#include "router.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"


#include "hypha/otp/blocking.hpp"
#include "hypha/otp/rpc.hpp"

namespace hypha {
namespace {

using testing::free_port;
using testing::T;

using namespace hypha::literals;


class RouterTest : public ::testing::Test {
 protected:
  std::uint16_t epmd = free_port();
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::shared_ptr<Router>> routers;

  Node& start(const std::string& name, const std::vector<std::pair<std::string, std::string>>& table) {
    auto exports = std::make_shared<Exports>();
    nodes.push_back(testing::start_node(name, epmd, {}, exports));
    auto r = Router::start(*nodes.back(), exports, RangeTable::parse(table).value());
    EXPECT_TRUE(r.ok());
    routers.push_back(*r);
    return *nodes.back();
  }

  Term route(Node& via, const char* bucket) {
    return rpc::call(via.runtime(), via.name(), "kv_router"_a, "route"_a,
                     Term::list({Term::binary(bucket), T("erlang"), T("node"), Term()}));
  }
};

TEST_F(RouterTest, RoutesToTheOwnerWithEachNodesTable) {
  Node& a = start("ra", {{"a-m", "ra@127.0.0.1"}, {"n-z", "rb@127.0.0.1"}});
  // b's own table differs: it owns every letter, so what a forwards to b stays there.
  Node& b = start("rb", {{"a-z", "rb@127.0.0.1"}});
  EXPECT_EQ(route(a, "hello"), Term(a.name()));
  EXPECT_EQ(route(a, "world"), Term(b.name()));
  EXPECT_EQ(route(b, "hello"), Term(b.name()));  // b's table differs: b owns everything it sees
  const std::string missing = route(a, "Zed").to_string();
  EXPECT_NE(missing.find("could not find entry for"), std::string::npos) << missing;
}

TEST_F(RouterTest, TablesPointingAtEachOtherEndInAnError) {
  Node& a = start("la", {{"a-z", "lb@127.0.0.1"}});
  start("lb", {{"a-z", "la@127.0.0.1"}});
  const std::string r = route(a, "loop").to_string();
  EXPECT_NE(r.find("routing loop"), std::string::npos) << r;
}

}  // namespace
}  // namespace hypha
