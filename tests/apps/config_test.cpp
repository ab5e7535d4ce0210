// The config loader: typed keys onto NodeOptions, and one line (file, line, key, what was
// expected) for a syntax error, a wrong type, a bad value or a key nobody reads.
#include "config.hpp"

#include <gtest/gtest.h>

namespace hypha::config {
namespace {

using namespace std::chrono_literals;

// The error finish() gives for TEXT read as a node config, or "" when there is none.
std::string node_error(std::string_view text, NodeOptions* out = nullptr, std::vector<std::string>* inboxes = nullptr) {
  auto r = Reader::parse(text, "n.toml");
  if (!r) return r.error().text();
  NodeOptions o;
  read_node(*r, o, inboxes);
  if (out) *out = o;
  auto done = r->finish();
  return done ? "" : done.error().text();
}

// The error finish() gives for TEXT (c.toml) read as the cluster sections, or "accepted".
std::string cluster_error(std::string_view text) {
  auto r = Reader::parse(text, "c.toml");
  cluster::Options o;
  read_cluster(*r, o);
  auto done = r->finish();
  return done ? "accepted" : done.error().text();
}

TEST(Config, NodeKeysSetTheNodesOptions) {
  NodeOptions o;
  std::vector<std::string> inboxes;
  ASSERT_EQ(node_error(R"(
[node]
name = "a@127.0.0.1"
cookie = "secret"
hidden = true
ticktime = 20
setuptime = 3
port = 4370
threads = 2
epmd_port = 4400
embedded_epmd = false
epmd_bind = "127.0.0.1"
inbox = ["log", "jobs"]
[node.limits]
max_send_queue = 1048576
max_send_wait_ms = 100
max_frame = 65536
max_decoded = 2097152
max_partial_frames = 0
max_new_atoms_per_peer = 10
max_connections = 5
max_handshakes = 4
max_handshakes_per_source = 2
[cluster]
detect_ms = 1500
)", &o, &inboxes), "");
  EXPECT_EQ(o.name, "a@127.0.0.1");
  EXPECT_EQ(o.cookie, "secret");
  EXPECT_TRUE(o.hidden);
  EXPECT_EQ(o.net_ticktime, 20s);
  EXPECT_EQ(o.setup_timeout, 3s);
  EXPECT_EQ(o.listen_port, 4370);
  EXPECT_EQ(o.threads, 2u);
  EXPECT_EQ(o.epmd_port, 4400);
  EXPECT_FALSE(o.embedded_epmd);
  EXPECT_EQ(o.epmd_bind, "127.0.0.1");
  EXPECT_EQ(inboxes, (std::vector<std::string>{"log", "jobs"}));
  EXPECT_EQ(o.max_send_queue, 1048576u);
  EXPECT_EQ(o.max_send_wait, 100ms);
  EXPECT_EQ(o.max_frame, 65536u);
  EXPECT_EQ(o.max_decoded_bytes, 2097152u);
  EXPECT_EQ(o.max_partial_frames, 0u);
  EXPECT_EQ(o.max_new_atoms_per_peer, 10u);
  EXPECT_EQ(o.max_connections, 5u);
  EXPECT_EQ(o.max_handshakes, 4u);
  EXPECT_EQ(o.max_handshakes_per_source, 2u);
  EXPECT_EQ(o.detect, 1500ms);
}

TEST(Config, AbsentKeysKeepTheDefaults) {
  NodeOptions o;
  ASSERT_EQ(node_error("[node]\nname = \"a\"\n", &o), "");
  const NodeOptions d;
  EXPECT_EQ(o.name, "a");
  EXPECT_EQ(o.net_ticktime, d.net_ticktime);
  EXPECT_EQ(o.max_frame, d.max_frame);
  EXPECT_EQ(o.detect, 3s);
  EXPECT_EQ(node_error(""), "");  // an empty file is a valid (empty) config
}

TEST(Config, AWrongTypeNamesTheKeyItsLineAndWhatWasExpected) {
  EXPECT_EQ(node_error("[node]\nname = \"a@h\"\nticktime = \"60\"\n"),
            "n.toml:3: node.ticktime: expected an integer of 1..86400 (seconds), got a string");
  EXPECT_EQ(node_error("[node]\nhidden = 1\n"), "n.toml:2: node.hidden: expected true or false, got an integer");
  EXPECT_EQ(node_error("[node]\nname = 7\n"), "n.toml:2: node.name: expected a string, got an integer");
  EXPECT_EQ(node_error("[node]\ninbox = \"log\"\n"), "n.toml:2: node.inbox: expected an array of strings, got a string");
  EXPECT_EQ(node_error("[node]\ninbox = [\"log\", 3]\n"),
            "n.toml:2: node.inbox: expected an array of strings, got an integer in it");
  EXPECT_EQ(node_error("node = 3\n"), "n.toml:1: node: expected a table, got an integer");
}

TEST(Config, ABadValueIsRefused) {
  EXPECT_EQ(node_error("[node]\nport = 70000\n"), "n.toml:2: node.port: expected an integer of 0..65535, got 70000");
  EXPECT_EQ(node_error("[cluster]\ndetect_ms = -5\n"),
            "n.toml:2: cluster.detect_ms: expected an integer of 0..86400000 (milliseconds, 0: off), got -5");
  EXPECT_EQ(node_error("[node]\nticktime = 0\n"),
            "n.toml:2: node.ticktime: expected an integer of 1..86400 (seconds), got 0");
  EXPECT_EQ(node_error("[node]\nname = \"a b@host\"\n"),
            "n.toml:2: node.name: expected a node name (alive@host, or alive for a short name), got \"a b@host\"");
  EXPECT_EQ(node_error("[node]\ncookie = \"\"\n"), "n.toml:2: node.cookie: expected a cookie, got \"\"");
  EXPECT_EQ(node_error("[node.limits]\nmax_connections = -1\n"),
            "n.toml:2: node.limits.max_connections: expected an integer of 1..1000000, got -1");
}

TEST(Config, AnUnknownKeyOrSectionIsRefusedWithItsLine) {
  EXPECT_EQ(node_error("[node]\nname = \"a\"\ntick_time = 5\n"), "n.toml:3: node.tick_time: unknown key");
  EXPECT_EQ(node_error("[node]\nname = \"a\"\n\n[clustr]\nnodes = []\n"), "n.toml:5: clustr.nodes: unknown key");
  EXPECT_EQ(node_error("[nodes]\n"), "n.toml:1: nodes: unknown section");
  EXPECT_EQ(node_error("[[pubsub]]\nname = \"x\"\n"), "n.toml:2: pubsub.name: unknown key");
  // The first problem in the file wins.
  EXPECT_EQ(node_error("zzz = 1\n[node]\naaa = 2\n"), "n.toml:1: zzz: unknown key");
}

TEST(Config, ASyntaxErrorHasItsLine) {
  const std::string e = node_error("[node]\nname = \"a\"\nport = = 3\n");
  EXPECT_EQ(e.rfind("n.toml:3: ", 0), 0u) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;  // one line
}

TEST(Config, AFileThatCannotBeReadSaysSo) {
  auto r = Reader::load("/nonexistent/hypha.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().text(), "/nonexistent/hypha.toml: cannot read the file");
}

TEST(Config, PgScopesStartFromTheConfig) {
  auto r = Reader::parse("[pg]\nscopes = [\"pg\", \"jobs\", \"pg\"]\n", "p.toml");
  ASSERT_TRUE(r);
  cluster::Options o;
  read_cluster(*r, o);
  ASSERT_TRUE(r->finish());
  EXPECT_EQ(o.pg_scopes, (std::vector<Atom>{Atom("pg"), Atom("jobs")}));  // once each
  EXPECT_EQ(cluster::Options{}.pg_scopes, std::vector<Atom>{Atom("pg")});  // the default
  auto bad = Reader::parse("[pg]\nscopes = \"pg\"\n", "p.toml");
  read_cluster(*bad, o);
  EXPECT_EQ(bad->finish().error().text(), "p.toml:2: pg.scopes: expected an array of strings, got a string");
  auto none = Reader::parse("[pg]\nscopes = []\n", "p.toml");
  read_cluster(*none, o);
  EXPECT_TRUE(none->finish());
  EXPECT_TRUE(o.pg_scopes.empty());  // no scope at all
}

// The error a cluster section of `text` (read as the file `file`) is refused with.
std::string cluster_error(std::string_view text, const std::string& file) {
  auto r = Reader::parse(text, file);
  cluster::Options o;
  read_cluster(*r, o);
  return r->finish().error().text();
}

TEST(Config, PubsubTablesStartPubsubs) {
  auto r = Reader::parse("[[pubsub]]\nname = \"Elixir.MyApp.PubSub\"\n[[pubsub]]\nname = \"Elixir.Other\"\npool_size = 2\n",
                         "s.toml");
  ASSERT_TRUE(r);
  cluster::Options o;
  read_cluster(*r, o);
  ASSERT_TRUE(r->finish());
  ASSERT_EQ(o.pubsubs.size(), 2u);
  EXPECT_EQ(o.pubsubs[0].name, Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(o.pubsubs[0].pool_size, 1u);
  EXPECT_EQ(o.pubsubs[1].pool_size, 2u);
  auto error_of = [](std::string_view text) { return cluster_error(text, "s.toml"); };
  EXPECT_EQ(error_of("[[pubsub]]\nname = \"A\"\nsize = 2\n"), "s.toml:3: pubsub.size: unknown key (name, pool_size)");
  EXPECT_EQ(error_of("[[pubsub]]\npool_size = 2\n"), "s.toml:1: pubsub.name: missing: every [[pubsub]] needs a name");
  EXPECT_EQ(error_of("[[pubsub]]\nname = \"A\"\npool_size = 0\n"), "s.toml:3: pubsub.pool_size: expected an integer of 1..64");
  EXPECT_EQ(error_of("pubsub = 1\n"), "s.toml:1: pubsub: expected [[pubsub]] tables, got an integer");
}

TEST(Config, CacheTablesStartCaches) {
  auto r = Reader::parse("[[cache]]\nname = \"downloads\"\nmode = \"replicated\"\nmax_entries = 1000\n"
                         "[[cache]]\nname = \"sessions\"\nmode = \"partitioned\"\nreplicas = 3\n"
                         "anti_entropy_ms = 500\ntombstone_ms = 60000\n[[cache]]\nname = \"mine\"\nmode = \"local\"\n",
                         "k.toml");
  ASSERT_TRUE(r);
  cluster::Options o;
  read_cluster(*r, o);
  ASSERT_TRUE(r->finish());
  ASSERT_EQ(o.caches.size(), 3u);
  EXPECT_EQ(o.caches[0].name, Atom("downloads"));
  EXPECT_EQ(o.caches[0].mode, cache::Mode::Replicated);
  EXPECT_EQ(o.caches[0].max_entries, 1000u);
  EXPECT_EQ(o.caches[1].mode, cache::Mode::Partitioned);
  EXPECT_EQ(o.caches[1].replicas, 3u);
  EXPECT_EQ(o.caches[1].anti_entropy, std::chrono::milliseconds(500));
  EXPECT_EQ(o.caches[1].tombstone, std::chrono::milliseconds(60000));
  EXPECT_EQ(o.caches[1].max_entries, 1'000'000u);  // the default
  EXPECT_EQ(o.caches[2].mode, cache::Mode::Local);
  auto error_of = [](std::string_view text) { return cluster_error(text, "k.toml"); };
  EXPECT_EQ(error_of("[[cache]]\nname = \"a\"\nmode = \"sharded\"\n"),
            "k.toml:3: cache.mode: expected local, replicated or partitioned");
  EXPECT_EQ(error_of("[[cache]]\nname = \"a\"\nreplica = 2\n"),
            "k.toml:3: cache.replica: unknown key (name, mode, replicas, max_entries, anti_entropy_ms, tombstone_ms)");
  EXPECT_EQ(error_of("[[cache]]\nmode = \"local\"\n"), "k.toml:1: cache.name: missing: every [[cache]] needs a name");
  EXPECT_EQ(error_of("[[cache]]\nname = \"a\"\nmode = \"partitioned\"\nreplicas = 0\n"),
            "k.toml:4: cache.replicas: expected an integer of 1..16");
  EXPECT_EQ(error_of("[[cache]]\nname = \"a\"\nreplicas = 2\n"), "k.toml:1: cache.replicas: only for mode = \"partitioned\"");
  EXPECT_EQ(error_of("[[cache]]\nname = \"a\"\n[[cache]]\nname = \"a\"\n"),
            "k.toml:3: cache.name: a second [[cache]] of the same name");
  EXPECT_EQ(error_of("[[cache]]\nname = \"a\"\nmax_entries = -1\n"),
            "k.toml:3: cache.max_entries: expected an integer of 0..1000000000000 (0: no limit)");
}

// The cluster options a file gives; a failure to parse or a refused key fails the test.
cluster::Options cluster_of(std::string_view text) {
  cluster::Options o;
  auto r = Reader::parse(text, "c.toml");
  if (!r) {
    ADD_FAILURE() << r.error().text();
    return o;
  }
  read_cluster(*r, o);
  auto done = r->finish();
  if (!done) ADD_FAILURE() << done.error().text();
  return o;
}

TEST(Config, ClusterKeysConfigureFormation) {
  const cluster::Options o = cluster_of(R"(
[cluster]
strategies = ["static", "epmd"]
mesh = false
disconnect_dropped = true
[cluster.static]
nodes = ["b@127.0.0.1", "elixir@127.0.0.1"]
[cluster.epmd]
hosts = ["127.0.0.1", "10.0.0.2"]
interval_ms = 1000
)");
  EXPECT_EQ(o.formation.strategies, (std::vector<std::string>{"static", "epmd"}));
  EXPECT_FALSE(o.formation.mesh);
  EXPECT_TRUE(o.formation.disconnect_dropped);
  EXPECT_EQ(o.formation.static_nodes, (std::vector<std::string>{"b@127.0.0.1", "elixir@127.0.0.1"}));
  EXPECT_EQ(o.formation.epmd_hosts, (std::vector<std::string>{"127.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(o.formation.epmd_interval, std::chrono::milliseconds(1000));
  auto error_of = [](std::string_view text) { return cluster_error(text, "c.toml"); };
  EXPECT_EQ(error_of("[cluster]\nstrategies = [\"statik\"]\n"),
            "c.toml:2: cluster.strategies: expected static, epmd, gossip or dns, got \"statik\"");
  EXPECT_EQ(error_of("[cluster.static]\nnodes = [\"nohost\"]\n"),
            "c.toml:2: cluster.static.nodes: expected node names (alive@host), got \"nohost\"");
  EXPECT_EQ(error_of("[cluster]\nstrategies = [\"gossip\"]\n"),
            "c.toml: cluster.gossip.secret: missing: the hypha gossip format needs a secret (or format = \"libcluster\")");
  EXPECT_EQ(error_of("[cluster.gossip]\nmulticast_addr = \"233.252.1\"\n"),
            "c.toml:2: cluster.gossip.multicast_addr: expected an IP address, got \"233.252.1\"");
  EXPECT_EQ(error_of("[cluster.gossip]\nformat = \"plain\"\n"),
            "c.toml:2: cluster.gossip.format: expected hypha or libcluster, got \"plain\"");
  EXPECT_EQ(error_of("[cluster.dns]\nquery = \"a..b\"\n"),
            "c.toml:2: cluster.dns.query: expected a DNS name (labels of 1..63 bytes, 253 at most), got \"a..b\"");
  EXPECT_EQ(error_of("[cluster.dns]\nserver = \"dns.local:53\"\n"),
            "c.toml:2: cluster.dns.server: expected an IP address and port (\"127.0.0.1:5353\"), got \"dns.local:53\"");
  EXPECT_EQ(error_of("[cluster]\nstrategies = [\"dns\"]\n[cluster.dns]\nbasename = \"app\"\n"),
            "c.toml: cluster.dns.query: missing: the dns strategy needs the name to look up");
  EXPECT_EQ(error_of("[cluster.dns]\nresolver = \"x\"\n"), "c.toml:2: cluster.dns.resolver: unknown key");
  const cluster::Options od = cluster_of(R"([cluster]
strategies = ["dns"]
[cluster.dns]
query = "app.internal"
basename = "app"
server = "127.0.0.1:5353"
interval_ms = 2000
)");
  EXPECT_EQ(od.formation.dns_query, "app.internal");
  EXPECT_EQ(od.formation.dns_basename, "app");
  EXPECT_EQ(od.formation.dns_server, "127.0.0.1:5353");
  EXPECT_EQ(od.formation.dns_interval, std::chrono::milliseconds(2000));
  const cluster::Options go = cluster_of(R"([cluster]
strategies = ["gossip"]
[cluster.gossip]
port = 45900
multicast_addr = "233.252.1.33"
if_addr = "0.0.0.0"
multicast_if = "127.0.0.1"
multicast_ttl = 2
broadcast_only = false
secret = "s"
format = "libcluster"
cluster = "prod"
interval_ms = 250
)");
  EXPECT_EQ(go.formation.gossip.port, 45900);
  EXPECT_EQ(go.formation.gossip.multicast_addr, "233.252.1.33");
  EXPECT_EQ(go.formation.gossip.multicast_if, "127.0.0.1");
  EXPECT_EQ(go.formation.gossip.multicast_ttl, 2);
  EXPECT_EQ(go.formation.gossip.secret, "s");
  EXPECT_EQ(go.formation.gossip.format, "libcluster");
  EXPECT_EQ(go.formation.gossip.cluster, "prod");
  EXPECT_EQ(go.formation.gossip.interval, std::chrono::milliseconds(250));
}

TEST(Config, ARegistrySectionStartsTheRegistryWithItsKeys) {
  EXPECT_FALSE(cluster_of("[pg]\nscopes = [\"pg\"]\n").registry);
  const cluster::Options bare = cluster_of("[registry]\n");
  ASSERT_TRUE(bare.registry);
  EXPECT_EQ(bare.registry->sync_interval, std::chrono::milliseconds(50));
  EXPECT_EQ(bare.registry->name, registry::default_name());
  const cluster::Options o = cluster_of("[registry]\nsync_interval_ms = 20\nanti_entropy_ms = 500\nmembers = [\"a@h\", \"b@h\"]\n");
  ASSERT_TRUE(o.registry);
  EXPECT_EQ(o.registry->members, (std::vector<Atom>{Atom("a@h"), Atom("b@h")}));
  EXPECT_EQ(o.registry->sync_interval, std::chrono::milliseconds(20));
  EXPECT_EQ(o.registry->anti_entropy, std::chrono::milliseconds(500));
  EXPECT_EQ(cluster_error("[registry]\nsync_interval_ms = 0\n"),
            "c.toml:2: registry.sync_interval_ms: expected an integer of 1..60000 (milliseconds), got 0");
  EXPECT_EQ(cluster_error("[registry]\nsync_ms = 5\n"), "c.toml:2: registry.sync_ms: unknown key");
  EXPECT_EQ(cluster_error("[registry]\nmembers = [\"nohost\"]\n"),
            "c.toml:2: registry.members: expected node names (alive@host), got \"nohost\"");
  EXPECT_EQ(cluster_error("registry = 3\n"), "c.toml:1: registry: expected a table, got an integer");
}

TEST(Config, ASupervisorSectionStartsTheDistributedSupervisorAndTheRegistry) {
  EXPECT_FALSE(cluster_of("[registry]\n").supervisor);
  const cluster::Options bare = cluster_of("[supervisor]\n");
  ASSERT_TRUE(bare.supervisor);
  EXPECT_TRUE(bare.registry);  // what it keeps its children's ids in
  EXPECT_EQ(bare.supervisor->distribution, dsup::Distribution::Uniform);
  const cluster::Options o =
      cluster_of("[supervisor]\ndistribution = \"local\"\nredistribution = \"passive\"\nintensity = 5\nperiod_ms = 2000\n");
  ASSERT_TRUE(o.supervisor);
  EXPECT_EQ(o.supervisor->distribution, dsup::Distribution::Local);
  EXPECT_EQ(o.supervisor->intensity, 5);
  EXPECT_EQ(o.supervisor->period, std::chrono::milliseconds(2000));
  EXPECT_EQ(cluster_error("[supervisor]\ndistribution = \"random\"\n"),
            "c.toml:2: supervisor.distribution: expected uniform, quorum or local, got \"random\"");
  const cluster::Options q = cluster_of("[supervisor]\ndistribution = \"quorum\"\nmembers = [\"a@h\", \"b@h\", \"c@h\"]\n");
  EXPECT_EQ(q.supervisor->distribution, dsup::Distribution::Quorum);
  EXPECT_EQ(q.supervisor->members, (std::vector<Atom>{Atom("a@h"), Atom("b@h"), Atom("c@h")}));
  EXPECT_FALSE(o.supervisor->active_redistribution);
  EXPECT_TRUE(cluster_of("[supervisor]\nredistribution = \"active\"\n").supervisor->active_redistribution);
  EXPECT_EQ(cluster_error("[supervisor]\nredistribution = \"eager\"\n"),
            "c.toml:2: supervisor.redistribution: expected passive or active, got \"eager\"");
  EXPECT_EQ(cluster_error("[supervisor]\nstrategy = 1\n"), "c.toml:2: supervisor.strategy: unknown key");
}

TEST(Config, GlobalNamesAreNodeKeysReadForTheCluster) {
  auto r = Reader::parse("[node]\nname = \"a\"\nglobal_names = [\"stack\", \"jobs\"]\n", "n.toml");
  NodeOptions n;
  cluster::Options o;
  read_node(*r, n);
  read_cluster(*r, o);
  ASSERT_TRUE(r->finish());
  EXPECT_EQ(o.global_names, (std::vector<Atom>{Atom("stack"), Atom("jobs")}));
}

TEST(Config, AFreeFormTableCountsAsRead) {
  auto r = Reader::parse("[routing]\n\"a-m\" = \"foo@h\"\n[routing.hash]\nvnodes = 3\n", "k.toml");
  ASSERT_TRUE(r);
  ASSERT_NE(r->table("routing"), nullptr);
  EXPECT_TRUE(r->finish());
  auto bad = Reader::parse("routing = 1\n", "k.toml");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->table("routing"), nullptr);
  EXPECT_EQ(bad->finish().error().text(), "k.toml:1: routing: expected a table, got an integer");
}

TEST(Config, LogLevelAndFormat) {
  auto read = [](std::string_view text, LogSettings& s) {
    auto r = Reader::parse(text, "l.toml");
    read_log(*r, s);
    auto done = r->finish();
    return done ? std::string("accepted") : done.error().text();
  };
  LogSettings s;
  EXPECT_EQ(read("[log]\nlevel = \"info\"\nformat = \"json\"\n", s), "accepted");
  EXPECT_EQ(s.level, log::Level::Info);
  EXPECT_EQ(s.format, log::Format::Json);
  LogSettings d;
  EXPECT_EQ(read("", d), "accepted");
  EXPECT_FALSE(d.level);  // HYPHA_LOG decides
  EXPECT_EQ(d.format, log::Format::Human);
  EXPECT_EQ(read("[log]\nlevel = \"loud\"\n", d), "l.toml:2: log.level: expected error, warn, info or debug, got \"loud\"");
  EXPECT_EQ(read("[log]\nformat = \"xml\"\n", d), "l.toml:2: log.format: expected human or json, got \"xml\"");
  EXPECT_EQ(read("[log]\nlevels = \"info\"\n", d), "l.toml:2: log.levels: unknown key");
}

}  // namespace
}  // namespace hypha::config
