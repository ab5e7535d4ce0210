// hypha task start NODE NAME MOD FUN 'ARGS' [--restart] [--callback MOD:FUN] [--cookie C]
//   Runs the export MOD:FUN(ARGS...) (ARGS: a list in Erlang syntax) as the task NAME (text, used
//   as a binary), once in the cluster: prints {ok,{<<"NAME">>,Pid}}, or the error term (exit 1),
//   e.g. {error,{running,Pid}} while a task of that name runs.
// hypha task status NODE NAME
//   Prints the status term: {running,<<"NAME">>} or {done,<<"NAME">>} (exit 0), or
//   {error,{distributed_task_failed,_}}, {error,{distributed_task_not_found,_}},
//   {error,{distributed_tasks_not_available,orchestrator_not_running}} (exit 1).
// hypha task result NODE NAME
//   Prints what a done task returned (exit 0), else the error term (exit 1).
// hypha task list NODE
//   One line per task the orchestrator knows: `NAME STATUS NODE` (running, done or failed; the
//   node where it runs or ran).
// hypha task watch NODE NAME [--interval MS]
//   Follows the task until it ends: on a terminal, a progress bar redrawn in place
//   (`NAME [#########-----------]  45%  on b@host  12.3 s`); else a line at each change of
//   progress. Then `NAME done in 12.3 s: RESULT` (exit 0) or `NAME failed: REASON` (exit 1);
//   a task not found, or the orchestrator unreachable for 10 s: the error term, exit 1.
#include "task_commands.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "client.hpp"
#include "hypha/cluster/tasks.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/term/text.hpp"

namespace hypha::cli {

namespace {

struct Args {
  std::string node, name, mod, fun, args, callback;
  bool restart = false;
};

const Atom kMod("hypha_tasks");

int run_start(const Args& a, const ClientOptions& o) {
  auto mfa = parse_mfa("task start", a.mod, a.fun, a.args);
  if (!mfa) return 1;
  std::vector<Term> opts{Term::tuple({Term(Atom("restart")), Term(Atom(a.restart ? "true" : "false"))})};
  if (!a.callback.empty()) {
    const auto colon = a.callback.find(':');
    auto cm = Atom::make(a.callback.substr(0, colon));
    auto cf = colon == std::string::npos ? decltype(cm){} : Atom::make(a.callback.substr(colon + 1));
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.callback.size() || !cm || !cf)
      return fail("task start: --callback: expected MOD:FUN, got " + a.callback);
    opts.push_back(Term::tuple({Term(Atom("callback")), Term::tuple({Term(*cm), Term(*cf)})}));
  }
  auto r = rpc_on(a.node, o, "task start", kMod, Atom("start_async"),
                  {Term(mfa->mod), Term(mfa->fun), mfa->args, Term::binary(a.name), Term::list(std::move(opts))});
  if (!r) return 1;
  return print_result(*r, r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("ok")));
}

int run_status(const Args& a, const ClientOptions& o) {
  auto r = rpc_on(a.node, o, "task status", kMod, Atom("get_status"), {Term::binary(a.name)});
  if (!r) return 1;
  const bool ok = r->is_tuple() && r->tuple_size() == 2 && ((*r)[0].is_atom(Atom("running")) || (*r)[0].is_atom(Atom("done")));
  return print_result(*r, ok);
}

int run_result(const Args& a, const ClientOptions& o) {
  auto r = rpc_on(a.node, o, "task result", kMod, Atom("result"), {Term::binary(a.name)});
  if (!r) return 1;
  if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("ok"))) return print_result((*r)[1], true);
  return print_result(*r, false);
}

int run_list(const Args& a, const ClientOptions& o) {
  auto r = rpc_on(a.node, o, "task list", kMod, Atom("list"), {});
  if (!r) return 1;
  if (!r->is_proper_list() && !r->is_nil()) return print_result(*r, false);
  if (r->is_proper_list())
    for (const Term& e : r->list_elements())
      if (e.is_tuple() && e.tuple_size() == 4)
        std::cout << text_of(e[0]) << " " << text_of(e[1]) << " " << text_of(e[2]) << "\n";
  std::cout.flush();
  return 0;
}

std::string bar(int percent) {
  constexpr int kWidth = 30;
  const int full = percent * kWidth / 100;
  return "[" + std::string(static_cast<std::size_t>(full), '#') + std::string(static_cast<std::size_t>(kWidth - full), '-') + "]";
}

std::string seconds(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

int run_watch(const Args& a, const ClientOptions& o, int interval_ms) {
  auto target = Atom::make(a.node);
  if (!target || a.node.find('@') == std::string::npos) return fail("task watch: bad node name");
  auto client = client_node(o, a.node);
  if (!client) return fail("task watch: " + client.error());
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  std::optional<std::int64_t> shown;  // the progress last printed (-1: none yet)
  auto unreachable_since = std::chrono::steady_clock::now();
  int code = 1;
  for (;;) {
    const Term r = rpc::call((*client)->runtime(), *target, kMod, Atom("info"), Term::list({Term::binary(a.name)}),
                             std::chrono::milliseconds(o.timeout_ms));
    if (!(r.is_tuple() && r.tuple_size() == 2 && r[0].is_atom(Atom("ok")) && r[1].is_tuple() && r[1].tuple_size() == 8)) {
      // Unavailable (the orchestrator moving) or a failed call: tried again for a while.
      const bool moving = is_error(r) && r[1] == tasks::unavailable();
      const bool badrpc = r.is_tuple() && r.tuple_size() == 2 && r[0].is_atom(Atom("badrpc"));
      if ((moving || badrpc) && std::chrono::steady_clock::now() - unreachable_since < std::chrono::seconds(10)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
        continue;
      }
      if (tty && shown) std::cout << "\n";
      code = print_result(r, false);
      break;
    }
    unreachable_since = std::chrono::steady_clock::now();
    const Term& t = r[1];  // {Name, State, Node, Pid, Progress, StartedMs, EndedMs, Result}
    const std::string state = text_of(t[1]);
    const std::int64_t progress = t[4].is_integer() ? from_term<std::int64_t>(t[4]).value_or(0) : -1;
    const std::int64_t started = from_term<std::int64_t>(t[5]).value_or(0);
    const std::int64_t ended = from_term<std::int64_t>(t[6]).value_or(0);
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string took = started > 0 ? seconds((ended > 0 ? ended : now_ms) - started) : std::string("?");
    if (state != "running") {
      if (tty && shown) std::cout << "\r\033[K";
      if (state == "done") {
        std::cout << a.name << " done in " << took << ": " << t[7].to_string() << std::endl;
        code = 0;
      } else {
        std::cout << a.name << " failed: " << t[7].to_string() << std::endl;
      }
      break;
    }
    const std::string pct = progress < 0 ? " ---%" : (progress < 10 ? "   " : progress < 100 ? "  " : " ") +
                                                           std::to_string(progress) + "%";
    const std::string line = a.name + " " + bar(progress < 0 ? 0 : static_cast<int>(progress)) + pct + "  on " +
                             text_of(t[2]) + "  " + took;
    if (tty) {
      std::cout << "\r\033[K" << line << std::flush;
      shown = progress;
    } else if (!shown || *shown != progress) {
      std::cout << line << std::endl;
      shown = progress;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  (*client)->stop();
  return code;
}

}  // namespace

void add_task_commands(CLI::App& app, int& exit_code) {
  auto* task = app.add_subcommand("task", "unique cluster tasks: start, status, result, list, watch");
  task->require_subcommand(1);
  const char* node_help = "a hypha node running cluster tasks, alive@host";
  const char* name_help = "the task's name (text, used as a binary)";

  auto sa = std::make_shared<Args>();
  auto so = std::make_shared<ClientOptions>();
  auto* s = task->add_subcommand("start", "Run MOD:FUN(ARGS) once in the cluster as task NAME: {ok,{Name,Pid}}");
  s->add_option("NODE", sa->node, node_help)->required();
  s->add_option("NAME", sa->name, name_help)->required();
  s->add_option("MOD", sa->mod, "the export's module")->required();
  s->add_option("FUN", sa->fun, "the export's function")->required();
  s->add_option("ARGS", sa->args, "its arguments: a list in Erlang syntax")->required();
  s->add_flag("--restart", sa->restart, "start it again on a survivor if its node dies");
  s->add_option("--callback", sa->callback, "an export MOD:FUN/2 called with the name and the result when it ends");
  add_client_options(s, *so);
  s->callback([sa, so, &exit_code] { exit_code = run_start(*sa, *so); });

  const auto by_name = [&](const char* cmd, const char* help, int (*run)(const Args&, const ClientOptions&)) {
    auto a = std::make_shared<Args>();
    auto o = std::make_shared<ClientOptions>();
    auto* c = task->add_subcommand(cmd, help);
    c->add_option("NODE", a->node, node_help)->required();
    c->add_option("NAME", a->name, name_help)->required();
    add_client_options(c, *o);
    c->callback([a, o, run, &exit_code] { exit_code = run(*a, *o); });
  };
  by_name("status", "The task's status term (exit 0 for running and done)", run_status);
  by_name("result", "What the finished task returned (exit 1 if none)", run_result);

  auto wa = std::make_shared<Args>();
  auto wo = std::make_shared<ClientOptions>();
  auto interval = std::make_shared<int>(200);
  auto* w = task->add_subcommand("watch", "Follow task NAME until it ends: a progress bar, then its result");
  w->add_option("NODE", wa->node, node_help)->required();
  w->add_option("NAME", wa->name, name_help)->required();
  w->add_option("--interval", *interval, "how often to ask, in ms (default 200)")->check(CLI::Range(20, 60000));
  add_client_options(w, *wo);
  w->callback([wa, wo, interval, &exit_code] { exit_code = run_watch(*wa, *wo, *interval); });

  auto la = std::make_shared<Args>();
  auto lo = std::make_shared<ClientOptions>();
  auto* l = task->add_subcommand("list", "Every task known: NAME STATUS NODE lines");
  l->add_option("NODE", la->node, node_help)->required();
  add_client_options(l, *lo);
  l->callback([la, lo, &exit_code] { exit_code = run_list(*la, *lo); });
}

}  // namespace hypha::cli
