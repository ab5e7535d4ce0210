// Formation: how a node finds the other nodes of its cluster and stays connected to them (what
// libcluster does for Elixir), for C++ and mixed clusters. One process, `hypha_formation`, keeps
// the set of nodes it wants, from each configured strategy:
//   static  a fixed list of node names;
//   epmd    every node registered with the EPMD of some hosts, polled (ERL_EPMD_PORT honoured);
//   dns     basename@address for every A and AAAA record of a name, polled (libcluster's DNSPoll);
//   gossip  heartbeats on UDP multicast: authenticated and encrypted ("hypha" format), or
//           libcluster's Gossip packet, so Elixir nodes running it find us and we them;
//   mesh    the peers of every connected peer (asked with rpc erlang:nodes(), as global's
//           connect_all makes a BEAM cluster a full mesh), refreshed every mesh interval.
// It connects to each wanted node and, whichever strategy found it, retries forever with a
// capped exponential backoff: a node that dies and comes back under its name is connected again
// within backoff_max of being reachable (libcluster's polling strategies never reconnect).
// A node that cannot be reached or refuses the cookie is logged once per change of state, not
// once per attempt.
//
// Events go to subscribers as {hypha_formation, connected | disconnected | failed, Node,
// Strategy} (Strategy: the atom of the strategy that found the node) and are counted in
// hypha_formation_events_total{node, strategy, event}; gossip packets received in
// hypha_gossip_packets_total{node, result} (accepted, oversized, malformed, bad_auth,
// foreign_cluster, replayed).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/otp/supervisor.hpp"

namespace hypha::formation {

// [cluster.gossip]: heartbeats on UDP multicast (cluster/gossip.hpp has the packets).
struct GossipOptions {
  std::uint16_t port = 45892;
  std::string multicast_addr = "233.252.1.32";
  std::string if_addr = "0.0.0.0";   // the address the socket binds
  std::string multicast_if;          // the interface address multicast goes out of (empty: the default)
  int multicast_ttl = 1;
  bool broadcast_only = false;       // send to multicast_addr as a broadcast address instead
  std::string secret;                // required for format "hypha"
  std::string format = "hypha";      // or "libcluster"
  std::string cluster = "hypha";     // format "hypha": heartbeats of other clusters are dropped
  std::chrono::milliseconds interval{5000};  // heartbeats at random times up to this
  bool operator==(const GossipOptions&) const = default;
};

struct Options {
  std::vector<std::string> strategies;  // "static", "epmd", "gossip", "dns"; empty: no formation process
  bool mesh = true;
  // epmd, dns: disconnect nodes that drop out of discovery (and no other strategy wants).
  bool disconnect_dropped = false;
  std::vector<std::string> static_nodes;               // [cluster.static] nodes
  std::vector<std::string> epmd_hosts{"127.0.0.1"};    // [cluster.epmd] hosts
  std::chrono::milliseconds epmd_interval{5000};       // [cluster.epmd] interval_ms
  // [cluster.dns]: the A/AAAA records of `dns_query` are nodes dns_basename@address (as
  // libcluster's DNSPoll), asked of dns_server ("host:port") or else of the system resolver.
  std::string dns_query, dns_basename, dns_server;
  std::chrono::milliseconds dns_interval{5000};
  GossipOptions gossip;
  std::chrono::milliseconds mesh_interval{5000};
  std::chrono::milliseconds backoff_min{200}, backoff_max{5000};
  bool operator==(const Options&) const = default;
};

// For config checks: a name the dns strategy can look up; a dns server "host:port" (else the
// error).
bool dns_name_ok(std::string_view name);
Result<bool, std::string> dns_server_ok(std::string_view server);

// The formation process (registered as hypha_formation) as a supervised child.
ChildSpec spec(Node& node, Options opts);
// A reload (hyphad's SIGHUP): the running formation process takes `opts` in place of the ones it
// started with, keeping its connections and the state of every node still listed. Strategies may
// be turned on or off (gossip's socket is reopened when its options change); nodes no strategy
// lists any more are no longer wanted (disconnected if disconnect_dropped). Blocking (up to 5 s);
// an error (none runs here, a gossip socket that cannot be opened) changes nothing.
Result<bool, std::string> reconfigure(Runtime& rt, Options opts);
// Events to `subscriber` until it exits (a cast to hypha_formation).
void subscribe(Runtime& rt, const Pid& subscriber);

}  // namespace hypha::formation
