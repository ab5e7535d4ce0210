// hypha sup start NODE ID MOD FUN 'ARGS' [--restart permanent|transient|temporary] [--cookie C]
//   Starts the child ID (text, used as a binary) running the export MOD:FUN(ARGS...) (ARGS: a
//   list in Erlang syntax) on the member the distributed supervisor picks: prints {ok,Pid}, or
//   the error term (exit 1).
// hypha sup which NODE [--cookie C]
//   One line per child the cluster runs, as NODE knows them: `ID PID NODE` (a binary id as its
//   text, any other id in Erlang syntax; NODE as its name).
// hypha sup terminate NODE ID [--cookie C]
//   Stops the child wherever it runs: prints ok, or {error,not_found} (exit 1).
#include "sup_commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

#include "client.hpp"
#include "hypha/term/text.hpp"

namespace hypha::cli {

namespace {

struct Args {
  std::string node, id, mod, fun, args, restart = "permanent";
};

Term id_term(const std::string& id) { return Term::binary(id); }

int run_start(const Args& a, const ClientOptions& o) {
  auto mfa = parse_mfa("sup start", a.mod, a.fun, a.args);
  if (!mfa) return 1;
  const Term spec = Term::map({{Term(Atom("id")), id_term(a.id)},
                               {Term(Atom("start")), Term::tuple({Term(mfa->mod), Term(mfa->fun), mfa->args})},
                               {Term(Atom("restart")), Term(Atom(a.restart))}});
  auto r = rpc_on(a.node, o, "sup start", Atom("hypha_sup"), Atom("start_child"), {spec});
  if (!r) return 1;
  return print_result(*r, r->is_tuple() && r->tuple_size() == 2 && r->operator[](0).is_atom(Atom("ok")));
}

int run_which(const Args& a, const ClientOptions& o) {
  auto r = rpc_on(a.node, o, "sup which", Atom("hypha_sup"), Atom("which_children"), {});
  if (!r) return 1;
  if (!r->is_proper_list() && !r->is_nil()) return print_result(*r, false);
  if (r->is_proper_list())
    for (const Term& e : r->list_elements())
      if (e.is_tuple() && e.tuple_size() == 3)
        std::cout << (e[0].is_atom() ? e[0].to_string() : text_of(e[0])) << " " << e[1].to_string() << " "
                  << text_of(e[2]) << "\n";
  std::cout.flush();
  return 0;
}

int run_terminate(const Args& a, const ClientOptions& o) {
  auto r = rpc_on(a.node, o, "sup terminate", Atom("hypha_sup"), Atom("terminate_child"), {id_term(a.id)});
  if (!r) return 1;
  return print_result(*r, r->is_atom(Atom("ok")) && !is_error(*r));
}

}  // namespace

void add_sup_commands(CLI::App& app, int& exit_code) {
  auto* sup = app.add_subcommand("sup", "the distributed supervisor: start, which, terminate");
  sup->require_subcommand(1);
  const char* node_help = "a hypha node running the distributed supervisor, alive@host";

  auto sa = std::make_shared<Args>();
  auto so = std::make_shared<ClientOptions>();
  auto* s = sup->add_subcommand("start", "Start child ID running MOD:FUN(ARGS) somewhere in the cluster: {ok,Pid}");
  s->add_option("NODE", sa->node, node_help)->required();
  s->add_option("ID", sa->id, "the child's id (text, used as a binary)")->required();
  s->add_option("MOD", sa->mod, "the export's module")->required();
  s->add_option("FUN", sa->fun, "the export's function")->required();
  s->add_option("ARGS", sa->args, "its arguments: a list in Erlang syntax")->required();
  s->add_option("--restart", sa->restart, "permanent (default), transient or temporary")
      ->check(CLI::IsMember({"permanent", "transient", "temporary"}));
  add_client_options(s, *so);
  s->callback([sa, so, &exit_code] { exit_code = run_start(*sa, *so); });

  auto wa = std::make_shared<Args>();
  auto wo = std::make_shared<ClientOptions>();
  auto* w = sup->add_subcommand("which", "Every child of the cluster: ID PID NODE lines");
  w->add_option("NODE", wa->node, node_help)->required();
  add_client_options(w, *wo);
  w->callback([wa, wo, &exit_code] { exit_code = run_which(*wa, *wo); });

  auto ta = std::make_shared<Args>();
  auto to = std::make_shared<ClientOptions>();
  auto* t = sup->add_subcommand("terminate", "Stop child ID wherever it runs");
  t->add_option("NODE", ta->node, node_help)->required();
  t->add_option("ID", ta->id, "the child's id (text, used as a binary)")->required();
  add_client_options(t, *to);
  t->callback([ta, to, &exit_code] { exit_code = run_terminate(*ta, *to); });
}

}  // namespace hypha::cli
