// What the client commands share: --name/--sname/--cookie/--timeout, the short-lived hidden node
// they talk through, and the one-line error.
#pragma once

#include <memory>
#include <optional>
#include <vector>
#include <string>

#include "hypha/node/node.hpp"
#include "hypha/term/term.hpp"

namespace CLI {
class App;
}

namespace hypha::cli {

struct ClientOptions {
  std::string name;   // --name (long)
  std::string sname;  // --sname (short)
  std::string cookie;
  int timeout_ms = 5000;
  bool timeout_given = false;
};

void add_client_options(CLI::App* cmd, ClientOptions& o);

// Prints "hypha: WHAT" on stderr; returns exit code 1.
int fail(const std::string& what);

// A hidden, unpublished node for one command; its name is unique unless one is given, and long
// or short like the target's.
Result<std::unique_ptr<Node>, std::string> client_node(const ClientOptions& o, const std::string& target);

// Pids and ports written as text (<'node@host'.Id.Serial>) carry no creation: those that name
// `target` are given the creation of its current incarnation, so that they are its local pids
// there (as list_to_pid makes them on the node itself). Connects to `target` if needed.
Term for_node(Node& client, Atom target, const Term& t);

// rpc Mod:Fun(Args) on NODE through a client node (pids in Args given NODE's creation): the
// result, or nullopt after printing "hypha: WHAT: why" when NODE could not be asked.
std::optional<Term> rpc_on(const std::string& node, const ClientOptions& o, const std::string& what, Atom mod, Atom fun,
                           std::vector<Term> args);

// A name or id given as text and sent as a binary, printed back as its text (any other term in
// Erlang syntax); a node printed as its name.
std::string text_of(const Term& t);
// MOD and FUN (atoms) and ARGS (a list in Erlang syntax) as the start commands take them; nullopt
// after printing "hypha: WHAT: ..." when one is bad.
struct Mfa {
  Atom mod, fun;
  Term args;
};
std::optional<Mfa> parse_mfa(const std::string& what, const std::string& mod, const std::string& fun,
                             const std::string& args);
// {error, _}.
bool is_error(const Term& t);
// Prints the term on its own line: exit code 0 if `ok`, else 1.
int print_result(const Term& r, bool ok);

}  // namespace hypha::cli
