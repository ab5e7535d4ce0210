// Nodes NAME@sim with their kernel and cluster services on one SimNetwork (node/sim.hpp), for
// the deterministic cluster tests: the test acts, settles, and looks.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "hypha/cluster/cluster.hpp"
#include "hypha/node/sim.hpp"

namespace hypha::testing {

class SimCluster {
 public:
  std::shared_ptr<SimNetwork> net = std::make_shared<SimNetwork>();
  std::map<std::string, std::unique_ptr<Node>> nodes;

  // `exports`: the node's exports table (the built-ins and the services' are added to it).
  Node& start(const std::string& alive, NodeOptions o = {}, cluster::Options c = {},
              std::shared_ptr<Exports> exports = nullptr) {
    o.name = alive + "@sim";
    if (o.cookie.empty()) o.cookie = "cookie";
    o.threads = 2;
    o.network = net;
    auto n = start_cluster_node(o, {.exports = std::move(exports)}, std::move(c));
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error());
    return *(nodes[alive] = std::move(*n));
  }
  void stop(const std::string& alive) { nodes.erase(alive); }
  static Atom name(const std::string& alive) { return Atom(alive + "@sim"); }
  Node& operator[](const std::string& alive) { return *nodes.at(alive); }
  Runtime& rt(const std::string& alive) { return nodes.at(alive)->runtime(); }
  // Connects and settles.
  bool connect(const std::string& a, const std::string& b) {
    const bool up = nodes.at(a)->connect(name(b), std::chrono::seconds(5)).ok();
    return net->settle() && up;
  }
  bool settle() { return net->settle(); }
};

}  // namespace hypha::testing
