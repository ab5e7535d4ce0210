#include "node_commands.hpp"

#include "client.hpp"
#include "config.hpp"

#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <iostream>
#include <memory>

#include "hypha/otp/kernel.hpp"
#include "hypha/net/epmd.hpp"
#include "hypha/node/node.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/term/text.hpp"

namespace hypha::cli {

namespace {

struct NodeCmd {
  std::string config;
  std::string name, cookie;
  std::vector<std::string> inboxes;
  bool hidden = false;
  int ticktime = 60;
  int port = 0;
  CLI::App* cmd = nullptr;  // to tell which flags were given
  bool given(const char* flag) const { return cmd->count(flag) > 0; }
};

// An inbox: a registered process that prints every message it receives (a window into the node
// from the shell), and obeys a few commands so that other nodes can exercise links and monitors:
//   {ping, From} -> From ! {pong, self()}     {link, Pid}     {monitor, Pid}
//   {trap_exit, Bool}                         {exit, Reason}: ends with Reason
//   {alias, From} -> From ! {alias, Alias}    (messages to Alias arrive here too)
//   {nodes, From} -> From ! {nodes, [Node]}   (the connected nodes, as erlang:nodes/0)
ProcessBody inbox_process(const std::string& name, Node& node) {
  return [name, &node](Process& self) -> Task<> {
    const Atom ping("ping"), link("link"), monitor("monitor"), trap("trap_exit"), exit("exit"), alias("alias"),
        nodes("nodes");
    for (;;) {
      Term m = co_await self.receive();
      // A command is carried out before its line is printed: the line means it is done.
      const bool command = m.is_tuple() && m.tuple_size() == 2 && m[0].is_atom();
      const Atom cmd = command ? m[0].atom_value() : Atom();
      const Term arg = command ? m[1] : Term();
      if (cmd == ping && arg.is_pid()) self.send(arg.pid(), Term::tuple({Term(Atom("pong")), Term(self.pid())}));
      else if (cmd == link && arg.is_pid()) self.link(arg.pid());
      else if (cmd == monitor && arg.is_pid()) self.monitor(arg.pid());
      else if (cmd == trap && arg.is_atom()) self.trap_exit(arg.is_atom(atoms::true_()));
      else if (cmd == alias && arg.is_pid()) self.send(arg.pid(), Term::tuple({Term(alias), Term(self.alias())}));
      else if (cmd == nodes && arg.is_pid()) {
        std::vector<Term> names;
        for (Atom n : node.nodes()) names.emplace_back(n);
        self.send(arg.pid(), Term::tuple({Term(nodes), Term::list(std::move(names))}));
      }
      std::cout << name << " received " << m.to_string() << std::endl;
      if (cmd == exit) self.exit(arg);
    }
  };
}

int run_node(const NodeCmd& o) {
  // Signals go to sigwait below, not to the node's threads.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  // The file first, then the flags given on the command line over it.
  NodeOptions opts;
  cluster::Options services;
  std::vector<std::string> inboxes;
  config::LogSettings logs;
  if (!o.config.empty()) {
    auto r = config::Reader::load(o.config);
    if (r) {
      config::read_node(*r, opts, &inboxes);
      config::read_cluster(*r, services);
      config::read_log(*r, logs);
    }
    auto done = r ? r->finish() : Result<bool, config::Error>(unexpected(r.error()));
    if (!done) {
      fail(done.error().text());
      return 2;
    }
  }
  if (o.given("--name")) opts.name = o.name;
  if (o.given("--cookie")) opts.cookie = o.cookie;
  if (o.given("--hidden")) opts.hidden = o.hidden;
  if (o.given("--ticktime")) opts.net_ticktime = std::chrono::seconds(o.ticktime);
  if (o.given("--port")) opts.listen_port = static_cast<std::uint16_t>(o.port);
  if (o.given("--inbox")) inboxes = o.inboxes;
  if (opts.name.empty()) {
    fail("node: no name: give --name, or name in the [node] section of --config");
    return 2;
  }
  config::apply_log(logs, opts, services);
  // With its kernel (:rpc.call and erpc from other nodes, built-ins only) and cluster services.
  auto node = start_cluster_node(opts, {}, services);
  if (!node) return fail("node: " + node.error());
  Node& n = **node;
  for (const auto& inbox : inboxes) n.runtime().register_name(Atom(inbox), n.runtime().spawn(inbox_process(inbox, n)));
  std::cout << "node " << n.name().text() << " started (port " << n.port() << ", epmd "
            << (n.serves_epmd() ? "embedded" : "external") << ")" << std::endl;
  int sig = 0;
  sigwait(&sigs, &sig);
  std::cout << "node " << n.name().text() << " stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ")"
            << std::endl;
  cluster::stop(n);  // leave cleanly: the distributed supervisor hands its children over first
  n.stop();
  return 0;
}

int run_ping(const std::string& target, const ClientOptions& o) {
  auto node = client_node(o, target);
  if (!node) return fail("ping: " + node.error());
  auto name = Atom::make(target);
  const bool pong = name && (*node)->ping(*name, std::chrono::milliseconds(o.timeout_ms));
  std::cout << (pong ? "pong" : "pang") << std::endl;
  return pong ? 0 : 1;
}

int run_send(const std::string& target, const std::string& dest, const std::string& text, const ClientOptions& o) {
  auto term = parse_term(text);
  if (!term) return fail("send: " + term.error().message());
  auto name = Atom::make(target);
  auto to = Atom::make(dest);
  if (!name || !to) return fail("send: bad node or process name");
  auto node = client_node(o, target);
  if (!node) return fail("send: " + node.error());
  auto up = (*node)->connect(*name, std::chrono::milliseconds(o.timeout_ms));
  if (!up) return fail("send: " + up.error());
  (*node)->runtime().send(*to, *name, for_node(**node, *name, *term));
  (*node)->stop();  // flushes the message before leaving
  return 0;
}

int run_names(const std::string& host) {
  asio::io_context io;
  const std::uint16_t port = net::epmd_port();
  auto fut = asio::co_spawn(io, net::epmd_names(host, port), asio::use_future);
  io.run();
  auto r = fut.get();
  if (!r) {
    std::cerr << "epmd: Cannot connect to " << (host == "127.0.0.1" || host == "localhost" ? "local epmd" : host)
              << "\n";
    return 1;
  }
  std::cout << "epmd: up and running on port " << port << " with data:\n" << *r;
  return 0;
}

}  // namespace

void add_node_commands(CLI::App& app, int& exit_code) {
  auto node = std::make_shared<NodeCmd>();
  auto* n = app.add_subcommand("node", "Run a node in the foreground until SIGINT/SIGTERM");
  n->add_option("--config", node->config, "a TOML config file (docs/config.md); flags given override it");
  n->add_option("--name", node->name, "node name, alive@host (or alive for a short name)");
  n->add_option("--cookie", node->cookie, "the cluster cookie (default: HYPHA_COOKIE, else ~/.erlang.cookie)");
  n->add_flag("--hidden", node->hidden, "a hidden node, as erl -hidden");
  n->add_option("--ticktime", node->ticktime, "net_ticktime in seconds (default 60)")->check(CLI::Range(1, 86400));
  n->add_option("--port", node->port, "distribution port (default: any free one)")->check(CLI::Range(0, 65535));
  n->add_option("--inbox", node->inboxes,
                "register a process under this name that prints what it receives (repeatable; see inbox_process)");
  node->cmd = n;
  n->callback([node, &exit_code] { exit_code = run_node(*node); });

  auto ping_opts = std::make_shared<ClientOptions>();
  auto ping_target = std::make_shared<std::string>();
  auto* p = app.add_subcommand("ping", "Print pong (exit 0) or pang (exit 1)");
  p->add_option("NODE", *ping_target, "the node, alive@host")->required();
  add_client_options(p, *ping_opts);
  p->callback([ping_opts, ping_target, &exit_code] { exit_code = run_ping(*ping_target, *ping_opts); });

  auto send_opts = std::make_shared<ClientOptions>();
  auto send_args = std::make_shared<std::array<std::string, 3>>();
  auto* s = app.add_subcommand("send", "Send TERM to the process registered as NAME on NODE");
  s->add_option("NODE", (*send_args)[0], "the node, alive@host")->required();
  s->add_option("NAME", (*send_args)[1], "the registered name")->required();
  s->add_option("TERM", (*send_args)[2], "the message, in Erlang syntax")->required();
  add_client_options(s, *send_opts);
  s->callback([send_opts, send_args, &exit_code] {
    exit_code = run_send((*send_args)[0], (*send_args)[1], (*send_args)[2], *send_opts);
  });

  auto host = std::make_shared<std::string>("127.0.0.1");
  auto* nm = app.add_subcommand("names", "List the nodes registered with EPMD, as epmd -names does");
  nm->add_option("HOST", *host, "the host (default 127.0.0.1)");
  nm->callback([host, &exit_code] { exit_code = run_names(*host); });
}

}  // namespace hypha::cli
