#include "client.hpp"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <iostream>
#include <random>
#include "hypha/otp/kernel.hpp"
#include "hypha/term/text.hpp"
#include "hypha/otp/rpc.hpp"

namespace hypha::cli {

void add_client_options(CLI::App* cmd, ClientOptions& o) {
  cmd->add_option("--name", o.name, "this client's long node name (default: a unique one)");
  cmd->add_option("--sname", o.sname, "this client's short node name");
  cmd->add_option("--cookie", o.cookie, "the cluster cookie (default: HYPHA_COOKIE, else ~/.erlang.cookie)");
  cmd->add_option_function<int>(
      "--timeout",
      [&o](const int& ms) {
        o.timeout_ms = ms;
        o.timeout_given = true;
      },
      "milliseconds to wait for the node (default 5000)");
}

int fail(const std::string& what) {
  std::cerr << "hypha: " << what << "\n";
  return 1;
}

Result<std::unique_ptr<Node>, std::string> client_node(const ClientOptions& o, const std::string& target) {
  std::string name = !o.name.empty() ? o.name : o.sname;
  if (name.empty()) {
    const auto at = target.find('@');
    const std::string host = at == std::string::npos ? "" : target.substr(at + 1);
    name = "hypha_client_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}() % 100000);
    if (!host.empty()) name += "@" + host;
  }
  NodeOptions opts;
  opts.name = name;
  opts.cookie = o.cookie;
  opts.hidden = true;
  opts.publish = false;
  opts.embedded_epmd = false;
  opts.threads = 1;
  opts.setup_timeout = std::chrono::milliseconds(o.timeout_ms);
  return start_node(opts);  // its kernel's group leader prints the output of what it runs elsewhere
}

namespace {

Term with_creation(const Term& t, Atom node, std::uint32_t creation) {
  if (t.is_pid() && t.pid().node == node && t.pid().creation == 0) {
    Pid p = t.pid();
    p.creation = creation;
    return Term(p);
  }
  if (t.is_tuple()) {
    std::vector<Term> e;
    for (const Term& x : t.tuple_elements()) e.push_back(with_creation(x, node, creation));
    return Term::tuple(e);
  }
  if (t.is_list()) {
    std::vector<Term> e;
    for (const Term& x : t.list_elements()) e.push_back(with_creation(x, node, creation));
    return Term::list(std::move(e), with_creation(t.list_tail(), node, creation));
  }
  if (t.is_map()) {
    std::vector<MapEntry> e;
    for (const auto& m : t.map_entries())
      e.push_back({with_creation(m.first, node, creation), with_creation(m.second, node, creation)});
    return Term::map(std::move(e));
  }
  return t;
}

}  // namespace

Term for_node(Node& client, Atom target, const Term& t) {
  if (!client.connect(target)) return t;
  for (const PeerInfo& p : client.peers())
    if (p.name == target) return with_creation(t, target, p.creation);
  return t;
}

std::optional<Term> rpc_on(const std::string& node, const ClientOptions& o, const std::string& what, Atom mod, Atom fun,
                           std::vector<Term> args) {
  auto target = Atom::make(node);
  if (!target || node.find('@') == std::string::npos) {
    fail(what + ": bad node name");
    return std::nullopt;
  }
  auto client = client_node(o, node);
  if (!client) {
    fail(what + ": " + client.error());
    return std::nullopt;
  }
  for (Term& t : args) t = for_node(**client, *target, t);
  const Term r = rpc::call((*client)->runtime(), *target, mod, fun, Term::list(std::move(args)),
                           std::chrono::milliseconds(o.timeout_ms));
  (*client)->stop();
  return r;
}

std::string text_of(const Term& t) {
  if (t.is_binary()) {
    const auto b = t.binary_bytes();
    return std::string(b.begin(), b.end());
  }
  if (t.is_atom()) return std::string(t.atom_value().text());
  return t.to_string();
}

std::optional<Mfa> parse_mfa(const std::string& what, const std::string& mod, const std::string& fun,
                             const std::string& args) {
  auto a = parse_term(args);
  if (!a) return fail(what + ": ARGS: " + a.error().message()), std::nullopt;
  if (!a->is_proper_list() && !a->is_nil()) return fail(what + ": ARGS: expected a list, got " + a->to_string()), std::nullopt;
  auto m = Atom::make(mod), f = Atom::make(fun);
  if (!m || !f) return fail(what + ": MOD and FUN must be atoms"), std::nullopt;
  return Mfa{*m, *f, *a};
}

bool is_error(const Term& t) { return t.is_tuple() && t.tuple_size() == 2 && t[0].is_atom(Atom("error")); }

int print_result(const Term& r, bool ok) {
  std::cout << r.to_string() << std::endl;
  return ok ? 0 : 1;
}

}  // namespace hypha::cli
