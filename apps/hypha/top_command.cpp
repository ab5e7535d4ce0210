// hypha top NODE [--by queue|memory] [--top N] [--interval MS] [--once]
//   What a hypha node runs: its processes holding the longest queues (or the most memory) and
//   its connections with their traffic, read with hypha_node:processes/2 and hypha_node:peers/0.
//   On a terminal the screen is redrawn in place every interval until Ctrl-C; otherwise (or
//   with --once) frames are printed one after another (--once: one, exit 0). A node that cannot
//   be asked (or is not a hypha node): the error, exit 1.
#include "top_command.hpp"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>
#include <thread>

#include "client.hpp"
#include "hypha/otp/rpc.hpp"

namespace hypha::cli {

namespace {

struct Args {
  std::string node, by = "queue";
  int top = 20, interval_ms = 1000;
  bool once = false;
};

std::string column(std::string s, std::size_t width, bool right = false) {
  if (s.size() > width) s = s.substr(0, width - 1) + "~";
  const std::string pad(width - s.size(), ' ');
  return right ? pad + s : s + pad;
}

std::string num(const Term& t) { return t.is_integer() ? t.to_string() : "-"; }

// One frame, or nullopt (after printing the error) when the node could not be asked.
std::optional<std::string> frame(Node& client, Atom target, const Args& a, int timeout_ms) {
  const auto timeout = std::chrono::milliseconds(timeout_ms);
  const Term procs = rpc::call(client.runtime(), target, Atom("hypha_node"), Atom("processes"),
                               Term::list({Term(Atom(a.by)), Term(static_cast<std::int64_t>(a.top))}), timeout);
  if (!procs.is_tuple() || procs.tuple_size() != 2 || !procs[0].is_integer()) {
    fail("top: " + std::string(target.text()) + " answered " + procs.to_string() +
         " (hypha top reads hypha_node:processes/2 of hypha nodes)");
    return std::nullopt;
  }
  const Term peers = rpc::call(client.runtime(), target, Atom("hypha_node"), Atom("peers"), Term::list({}), timeout);
  std::ostringstream out;
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  out << "hypha top " << target.text() << "   " << stamp << "   processes " << procs[0].to_string() << "   by "
      << a.by << "\n\n";
  out << column("PID", 26) << column("NAME", 28) << column("QUEUE", 9, true) << column("MEMORY", 11, true) << "  STATUS\n";
  if (procs[1].is_proper_list())
    for (const Term& r : procs[1].list_elements()) {
      if (!r.is_tuple() || r.tuple_size() != 5) continue;
      out << column(r[0].to_string(), 26) << column(r[1].is_atom(Atom("undefined")) ? "" : text_of(r[1]), 28)
          << column(num(r[2]), 9, true) << column(num(r[3]), 11, true) << "  " << text_of(r[4]) << "\n";
    }
  out << "\n"
      << column("PEER", 40) << column("KIND", 7) << column("MSGS IN", 11, true) << column("MSGS OUT", 11, true)
      << column("BYTES IN", 13, true) << column("BYTES OUT", 13, true) << column("SEND QUEUE", 12, true) << "\n";
  if (peers.is_proper_list())
    for (const Term& p : peers.list_elements()) {
      if (!p.is_tuple() || p.tuple_size() != 7) continue;
      out << column(text_of(p[0]), 40) << column(text_of(p[1]), 7) << column(num(p[2]), 11, true)
          << column(num(p[3]), 11, true) << column(num(p[4]), 13, true) << column(num(p[5]), 13, true)
          << column(num(p[6]), 12, true) << "\n";
    }
  return out.str();
}

int run_top(const Args& a, const ClientOptions& o) {
  auto target = Atom::make(a.node);
  if (!target || a.node.find('@') == std::string::npos) return fail("top: bad node name");
  auto client = client_node(o, a.node);
  if (!client) return fail("top: " + client.error());
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  int code = 0;
  for (bool first = true;; first = false) {
    auto f = frame(**client, *target, a, o.timeout_ms);
    if (!f) {
      code = 1;
      break;
    }
    if (tty && !a.once) std::cout << "\033[H\033[2J";  // home, clear: redrawn in place
    else if (!first) std::cout << "\n";
    std::cout << *f << std::flush;
    if (a.once) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
  }
  (*client)->stop();
  return code;
}

}  // namespace

void add_top_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto o = std::make_shared<ClientOptions>();
  auto* t = app.add_subcommand("top", "A hypha node's largest processes and its peers' traffic, refreshed in place");
  t->add_option("NODE", a->node, "a hypha node, alive@host")->required();
  t->add_option("--by", a->by, "queue (default) or memory")->check(CLI::IsMember({"queue", "memory"}));
  t->add_option("--top", a->top, "how many processes (default 20)")->check(CLI::Range(1, 1000));
  t->add_option("--interval", a->interval_ms, "refresh every MS (default 1000)")->check(CLI::Range(100, 3600000));
  t->add_flag("--once", a->once, "print one frame and exit");
  add_client_options(t, *o);
  t->callback([a, o, &exit_code] { exit_code = run_top(*a, *o); });
}

}  // namespace hypha::cli
