// hypha pubsub listen NODE PUBSUB TOPIC [--count N] [--timeout SECONDS] [--cookie C]
//   A visible node with a generated name joins NODE's cluster (NODE and NODE's peers), runs a
//   pubsub named PUBSUB, subscribes to TOPIC, says `subscribed` on stderr once NODE sees its
//   adapter in the pubsub's pg group, then prints each message on one line (Erlang syntax) on
//   stdout. Exit 0 after N messages (default 1), 1 at the timeout (default 30 s).
// hypha pubsub broadcast NODE PUBSUB TOPIC 'TERM' [--cookie C]
//   NODE broadcasts TERM on TOPIC: exit 0; exit 1 printing the error term if it cannot.
#include "pubsub_commands.hpp"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <iostream>
#include <random>
#include <thread>

#include "client.hpp"
#include "hypha/cluster/cluster.hpp"
#include "hypha/cluster/pg.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/term/text.hpp"

namespace hypha::cli {

namespace {

struct ListenArgs {
  std::string node, pubsub, topic, cookie;
  int count = 1;
  int timeout_s = 30;
};

std::string host_of(const std::string& node) {
  const auto at = node.find('@');
  return at == std::string::npos ? std::string() : node.substr(at + 1);
}

int run_listen(const ListenArgs& a) {
  auto target = Atom::make(a.node);
  auto ps = Atom::make(a.pubsub);
  if (!target || !ps || a.node.find('@') == std::string::npos) return fail("pubsub listen: bad node or pubsub name");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.timeout_s);
  NodeOptions opts;
  opts.name = "hypha_listen_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}() % 100000) + "@" +
              host_of(a.node);
  opts.cookie = a.cookie;
  opts.threads = 2;
  auto node = start_cluster_node(opts, {}, {.pg_scopes = {}, .pubsubs = {{.name = *ps}}});
  if (!node) return fail("pubsub listen: " + node.error());
  Node& n = **node;
  Runtime& rt = n.runtime();
  auto left = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  };
  if (auto up = n.connect(*target, left()); !up) return fail("pubsub listen: " + up.error());
  // NODE's peers too, as a node joining a mesh does.
  const Term peers = rpc::call(rt, *target, Atom("erlang"), Atom("nodes"), Term::list({}), left());
  if (peers.is_proper_list())
    for (const Term& p : peers.list_elements())
      if (p.is_atom() && p.atom_value() != n.name()) (void)n.connect(p.atom_value(), left());
  Mailbox me = rt.mailbox();
  if (auto s = pubsub::subscribe(rt, *ps, a.topic, me.pid()); !s) return fail("pubsub listen: " + s.error().to_string());
  // Subscribed once NODE counts this node's adapter among the pubsub's members.
  const Pid adapter = *rt.whereis(pubsub::adapter_name(*ps));
  const Term args = Term::list({Term(pubsub::scope()), Term(pubsub::adapter_name(*ps))});
  for (;;) {
    const Term members = rpc::call(rt, *target, Atom("pg"), Atom("get_members"), args, left());
    bool seen = false;
    if (members.is_proper_list())
      for (const Term& m : members.list_elements()) seen = seen || (m.is_pid() && m.pid() == adapter);
    if (seen) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "hypha: pubsub listen: " << a.node << " did not see this node's membership in time" << std::endl;
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "subscribed" << std::endl;
  for (int got = 0; got < a.count;) {
    auto m = me.receive(left());
    if (!m) {
      if (std::chrono::steady_clock::now() < deadline) continue;
      return 1;
    }
    std::cout << m->to_string() << std::endl;
    ++got;
  }
  n.stop();
  return 0;
}

struct BroadcastArgs {
  std::string node, pubsub, topic, term;
};

int run_broadcast(const BroadcastArgs& a, const ClientOptions& o) {
  auto msg = parse_term(a.term);
  if (!msg) return fail("pubsub broadcast: TERM: " + msg.error().message());
  auto target = Atom::make(a.node);
  auto ps = Atom::make(a.pubsub);
  if (!target || !ps) return fail("pubsub broadcast: bad node or pubsub name");
  auto node = client_node(o, a.node);
  if (!node) return fail("pubsub broadcast: " + node.error());
  const Term args = Term::list({Term(*ps), Term::binary(a.topic), for_node(**node, *target, *msg)});
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  const Term r = rpc::call((*node)->runtime(), *target, Atom("Elixir.Phoenix.PubSub"), Atom("broadcast"), args, timeout);
  (*node)->stop();
  if (r.is_atom(Atom("ok"))) return 0;
  std::cout << r.to_string() << std::endl;
  return 1;
}

}  // namespace

void add_pubsub_commands(CLI::App& app, int& exit_code) {
  auto* ps = app.add_subcommand("pubsub", "Phoenix.PubSub topics: listen and broadcast");
  ps->require_subcommand(1);

  auto la = std::make_shared<ListenArgs>();
  auto* l = ps->add_subcommand("listen", "Subscribe to TOPIC in NODE's cluster and print what arrives");
  l->add_option("NODE", la->node, "a node of the cluster, alive@host")->required();
  l->add_option("PUBSUB", la->pubsub, "the pubsub's name, as Erlang writes the atom (Elixir.MyApp.PubSub)")->required();
  l->add_option("TOPIC", la->topic, "the topic")->required();
  l->add_option("--count", la->count, "exit 0 after this many messages (default 1)")->check(CLI::Range(1, 1 << 30));
  l->add_option("--timeout", la->timeout_s, "exit 1 after this many seconds (default 30)")->check(CLI::Range(1, 86400));
  l->add_option("--cookie", la->cookie, "the cluster cookie (default: HYPHA_COOKIE, else ~/.erlang.cookie)");
  l->callback([la, &exit_code] { exit_code = run_listen(*la); });

  auto ba = std::make_shared<BroadcastArgs>();
  auto bo = std::make_shared<ClientOptions>();
  auto* b = ps->add_subcommand("broadcast", "NODE broadcasts TERM on TOPIC");
  b->add_option("NODE", ba->node, "the node, alive@host")->required();
  b->add_option("PUBSUB", ba->pubsub, "the pubsub's name (Elixir.MyApp.PubSub)")->required();
  b->add_option("TOPIC", ba->topic, "the topic")->required();
  b->add_option("TERM", ba->term, "the message, in Erlang syntax")->required();
  add_client_options(b, *bo);
  b->callback([ba, bo, &exit_code] { exit_code = run_broadcast(*ba, *bo); });
}

}  // namespace hypha::cli
