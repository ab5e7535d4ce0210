// Uses an installed hypha: a term through the External Term Format, a node with its kernel, a
// process that answers a message. Prints one line; exit 0 when all of it worked.
#include <hypha/hypha.hpp>

#include <iostream>

int main(int argc, char** argv) {
  using namespace hypha;
  const Term t = Term::tuple({Term(Atom("ok")), Term::list({Term(1), Term(2)})});
  auto back = etf::decode(etf::encode(t));
  if (!back || !(*back == t)) return 1;
  NodeOptions o;
  o.name = "consumer@127.0.0.1";
  o.cookie = "consumer";
  o.epmd_port = static_cast<std::uint16_t>(argc > 1 ? std::stoi(argv[1]) : 4369);
  auto node = start_node(o, {});
  if (!node) {
    std::cerr << "consumer: " << node.error() << "\n";
    return 1;
  }
  Runtime& rt = (*node)->runtime();
  const Pid echo = rt.spawn([](Process& self) -> Task<> {
    Term m = co_await self.receive();
    self.send(m[0].pid(), m[1]);
  });
  Mailbox inbox = rt.mailbox();
  rt.send(echo, Term::tuple({Term(inbox.pid()), t}));
  auto got = inbox.receive(std::chrono::seconds(5));
  std::cout << "consumer: " << (*node)->name().text() << " " << (got ? got->to_string() : "nothing") << std::endl;
  (*node)->stop();
  return got && *got == t ? 0 : 1;
}
