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
#include "task_commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

#include "client.hpp"
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

}  // namespace

void add_task_commands(CLI::App& app, int& exit_code) {
  auto* task = app.add_subcommand("task", "unique cluster tasks: start, status, result, list");
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

  auto la = std::make_shared<Args>();
  auto lo = std::make_shared<ClientOptions>();
  auto* l = task->add_subcommand("list", "Every task known: NAME STATUS NODE lines");
  l->add_option("NODE", la->node, node_help)->required();
  add_client_options(l, *lo);
  l->callback([la, lo, &exit_code] { exit_code = run_list(*la, *lo); });
}

}  // namespace hypha::cli
