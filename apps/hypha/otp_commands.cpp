#include "otp_commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

#include "client.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/term/text.hpp"

namespace hypha::cli {

namespace {

struct RpcArgs {
  std::string node, mod, fun, args = "[]";
};

// Prints the result in Erlang syntax: exit 0, or 1 for a {badrpc, Reason}.
int run_rpc(const RpcArgs& a, const ClientOptions& o) {
  auto args = parse_term(a.args);
  if (!args) return fail("rpc: ARGS: " + args.error().message());
  if (!args->is_proper_list()) return fail("rpc: ARGS must be a list, such as '[1, foo]'");
  auto node_name = Atom::make(a.node);
  auto mod = Atom::make(a.mod);
  auto fun = Atom::make(a.fun);
  if (!node_name || !mod || !fun) return fail("rpc: bad node, module or function name");
  auto node = client_node(o, a.node);
  if (!node) return fail("rpc: " + node.error());
  // Without --timeout a call may take as long as it takes; the connection setup is still bounded.
  const auto timeout = o.timeout_given ? std::chrono::milliseconds(o.timeout_ms) : rpc::infinity;
  const Term r = rpc::call((*node)->runtime(), *node_name, *mod, *fun, for_node(**node, *node_name, *args), timeout);
  std::cout << r.to_string() << std::endl;
  const bool bad = r.is_tuple() && r.tuple_size() == 2 && r[0].is_atom(Atom("badrpc"));
  (*node)->stop();
  return bad ? 1 : 0;
}

struct CallArgs {
  std::string node, name, request;
};

// Prints the reply (exit 0), or the reason gen_server:call would exit with (exit 1).
int run_call(const CallArgs& a, const ClientOptions& o) {
  auto request = parse_term(a.request);
  if (!request) return fail("call: REQUEST: " + request.error().message());
  auto node_name = Atom::make(a.node);
  auto name = Atom::make(a.name);
  if (!node_name || !name) return fail("call: bad node or process name");
  auto node = client_node(o, a.node);
  if (!node) return fail("call: " + node.error());
  // gen_server:call's default timeout unless --timeout says otherwise.
  const auto timeout = o.timeout_given ? std::chrono::milliseconds(o.timeout_ms) : gen_server::default_timeout;
  auto r = gen_server::call((*node)->runtime(), ServerRef(*name, *node_name), for_node(**node, *node_name, *request),
                            timeout);
  std::cout << (r.ok() ? r.value() : r.error()).to_string() << std::endl;
  (*node)->stop();
  return r.ok() ? 0 : 1;
}

}  // namespace

void add_otp_commands(CLI::App& app, int& exit_code) {
  auto rpc_opts = std::make_shared<ClientOptions>();
  auto rpc_args = std::make_shared<RpcArgs>();
  auto* r = app.add_subcommand("rpc", "Call MOD:FUN(ARGS...) on NODE as rpc:call does; print the result");
  r->add_option("NODE", rpc_args->node, "the node, alive@host")->required();
  r->add_option("MOD", rpc_args->mod, "the module")->required();
  r->add_option("FUN", rpc_args->fun, "the function")->required();
  r->add_option("ARGS", rpc_args->args, "the arguments as an Erlang list (default [])");
  add_client_options(r, *rpc_opts);
  r->callback([rpc_opts, rpc_args, &exit_code] { exit_code = run_rpc(*rpc_args, *rpc_opts); });

  auto call_opts = std::make_shared<ClientOptions>();
  auto call_args = std::make_shared<CallArgs>();
  auto* c = app.add_subcommand("call", "gen_server:call({NAME, NODE}, REQUEST); print the reply");
  c->add_option("NODE", call_args->node, "the node, alive@host")->required();
  c->add_option("NAME", call_args->name, "the server's registered name")->required();
  c->add_option("REQUEST", call_args->request, "the request, in Erlang syntax")->required();
  add_client_options(c, *call_opts);
  c->callback([call_opts, call_args, &exit_code] { exit_code = run_call(*call_args, *call_opts); });
}

}  // namespace hypha::cli
