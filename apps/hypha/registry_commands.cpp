// hypha registry whereis NODE 'NAME' [--cookie C]
//   The pid holding NAME (Erlang syntax) in NODE's cluster registry, or `undefined` (exit 1).
// hypha registry list NODE [--cookie C]
//   One line per name: `NAME PID`, NAME in Erlang syntax, sorted by name.
#include "registry_commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

#include "client.hpp"
#include "hypha/term/text.hpp"

namespace hypha::cli {

namespace {

struct Args {
  std::string node, name;
};

std::optional<Term> ask(const Args& a, const ClientOptions& o, const char* what, const char* fun, std::vector<Term> args) {
  return rpc_on(a.node, o, std::string("registry ") + what, Atom("hypha_registry"), Atom(fun), std::move(args));
}

int run_whereis(const Args& a, const ClientOptions& o) {
  auto name = parse_term(a.name);
  if (!name) return fail("registry whereis: NAME: " + name.error().message());
  auto r = ask(a, o, "whereis", "whereis_name", {*name});
  if (!r) return 1;
  std::cout << r->to_string() << std::endl;
  return r->is_pid() ? 0 : 1;
}

int run_list(const Args& a, const ClientOptions& o) {
  auto r = ask(a, o, "list", "list", {});
  if (!r) return 1;
  if (!r->is_proper_list()) {
    std::cout << r->to_string() << std::endl;
    return 1;
  }
  for (const Term& e : r->list_elements())
    if (e.is_tuple() && e.tuple_size() == 2) std::cout << e[0].to_string() << " " << e[1].to_string() << "\n";
  std::cout.flush();
  return 0;
}

}  // namespace

void add_registry_commands(CLI::App& app, int& exit_code) {
  auto* reg = app.add_subcommand("registry", "the cluster registry: whereis and list");
  reg->require_subcommand(1);

  auto wa = std::make_shared<Args>();
  auto wo = std::make_shared<ClientOptions>();
  auto* w = reg->add_subcommand("whereis", "The pid holding NAME, or undefined (exit 1)");
  w->add_option("NODE", wa->node, "a hypha node running the registry, alive@host")->required();
  w->add_option("NAME", wa->name, "the name, in Erlang syntax")->required();
  add_client_options(w, *wo);
  w->callback([wa, wo, &exit_code] { exit_code = run_whereis(*wa, *wo); });

  auto la = std::make_shared<Args>();
  auto lo = std::make_shared<ClientOptions>();
  auto* l = reg->add_subcommand("list", "Every name and its pid: NAME PID lines");
  l->add_option("NODE", la->node, "a hypha node running the registry, alive@host")->required();
  add_client_options(l, *lo);
  l->callback([la, lo, &exit_code] { exit_code = run_list(*la, *lo); });
}

}  // namespace hypha::cli
