// Test helper for otp_interop.escript: the C++ client of a task supervisor on another node.
//   task_client COOKIE SUPERVISOR NODE MOD FUN 'ARGS'
// Starts a hidden node, runs MOD:FUN(ARGS) as a task of {SUPERVISOR, NODE} (Elixir's
// Task.Supervisor or hypha's), awaits it (no link, 10 s) and prints `ok VALUE` or `error REASON`.
#include <iostream>
#include <string>
#include <unistd.h>

#include "hypha/node/node.hpp"
#include "hypha/otp/kernel.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/otp/task.hpp"
#include "hypha/term/text.hpp"

using namespace hypha;

int main(int argc, char** argv) {
  if (argc != 7) {
    std::cerr << "usage: task_client COOKIE SUPERVISOR NODE MOD FUN ARGS\n";
    return 2;
  }
  NodeOptions o;
  o.name = "task_client_" + std::to_string(::getpid()) + "@127.0.0.1";
  o.cookie = argv[1];
  o.hidden = true;
  o.publish = false;
  auto node = start_node(o);
  if (!node) {
    std::cerr << node.error() << "\n";
    return 1;
  }
  auto args = parse_term(argv[6]);
  if (!args) return 2;
  const ServerRef sup{Atom(argv[2]), Atom(argv[3])};
  const Atom mod{argv[4]}, fun{argv[5]};
  const Term out = block_on((*node)->runtime(), [&](Process& self) -> Task<Term> {
    auto t = co_await task::async(self, sup, mod, fun, *args, false);
    if (!t) co_return Term::tuple({Term(Atom("error")), t.error()});
    auto r = co_await task::await(self, *t, std::chrono::seconds(10));
    co_return r ? Term::tuple({Term(Atom("ok")), *r}) : Term::tuple({Term(Atom("error")), r.error()[0]});
  });
  std::cout << out[0].to_string() << " " << out[1].to_string() << std::endl;
  (*node)->stop();
  return 0;
}
