// The product stock of the Erlang distribution walkthrough: a central stock and points of sale
// on other nodes, all plain messages, so the Erlang/Elixir side of the walkthrough works unchanged.
//
//   product_stock --name stock@127.0.0.1 --cookie C
//     the central, registered as product_stock (and as server, which forwards to it):
//       {add, From, Product}   puts Product (any term) first; From gets the updated list
//       {status, From}         From gets the list
//   product_stock --name pos1@127.0.0.1 --cookie C --stock stock@127.0.0.1
//     a point of sale, registered as pos:
//       {ask, From, Product}   asks the central {status, self()}; From gets {print, Product} if
//                              the list holds it, else {print, <<"There is no Product P">>}
//                              (P: the product in Erlang syntax)
//
// Anything else is ignored. Every process is a plain hypha process (no behaviour): receive,
// match, send.
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/otp/kernel.hpp"

using namespace hypha;

namespace {

bool tagged(const Term& m, const char* tag, std::size_t n) {
  return m.is_tuple() && m.tuple_size() == n && m[0].is_atom(Atom(tag));
}

Task<> central(Process& self) {
  std::vector<Term> products;  // the first is the newest
  for (;;) {
    const Term m = co_await self.receive();
    if (tagged(m, "add", 3) && m[1].is_pid()) {
      products.insert(products.begin(), m[2]);
      self.send(m[1].pid(), Term::list(products));
    } else if (tagged(m, "status", 2) && m[1].is_pid()) {
      self.send(m[1].pid(), Term::list(products));
    }
  }
}

// `server`: the walkthrough's other name for the central (one process holds one name).
Task<> forwarder(Process& self) {
  for (;;) {
    Term m = co_await self.receive();
    self.send(Atom("product_stock"), std::move(m));
  }
}

Task<> point_of_sale(Process& self, Atom stock) {
  for (;;) {
    const Term m = co_await self.receive([](const Term& t) { return tagged(t, "ask", 3) && t[1].is_pid(); });
    const Pid from = m[1].pid();
    const Term& product = m[2];
    self.send(Atom("product_stock"), stock, Term::tuple({Term(Atom("status")), Term(self.pid())}));
    auto list = co_await self.receive([](const Term& t) { return t.is_nil() || t.is_proper_list(); },
                                      std::chrono::seconds(5));
    Term answer;
    if (!list) {
      answer = Term::binary("The stock does not answer");
    } else {
      bool held = false;
      for (const Term& p : list->list_elements()) held = held || p == product;
      answer = held ? product : Term::binary("There is no Product " + product.to_string());
    }
    self.send(from, Term::tuple({Term(Atom("print")), answer}));
  }
}

}  // namespace

int main(int argc, char** argv) {
  NodeOptions opts;
  std::string stock;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--name") opts.name = argv[i + 1];
    else if (flag == "--cookie") opts.cookie = argv[i + 1];
    else if (flag == "--stock") stock = argv[i + 1];
    else break;
  }
  if (opts.name.empty() || argc % 2 == 0) {
    std::cerr << "usage: product_stock --name NAME --cookie COOKIE [--stock NODE]\n";
    return 2;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  auto node = start_node(opts, {});
  if (!node) {
    std::cerr << "product_stock: " << node.error() << "\n";
    return 1;
  }
  Runtime& rt = (*node)->runtime();
  if (stock.empty()) {
    rt.register_name(Atom("product_stock"), rt.spawn(central));
    rt.register_name(Atom("server"), rt.spawn(forwarder));
    std::cout << "product stock " << (*node)->name().text() << " ready" << std::endl;
  } else {
    auto at = Atom::make(stock);
    if (!at) {
      std::cerr << "product_stock: --stock: " << at.error() << "\n";
      return 2;
    }
    const Atom stock_node = *at;
    rt.register_name(Atom("pos"), rt.spawn([stock_node](Process& self) { return point_of_sale(self, stock_node); }));
    if (!(*node)->connect(stock_node, std::chrono::seconds(5)).ok())
      std::cerr << "product_stock: cannot connect to " << stock << " yet (asks will try again)\n";
    std::cout << "point of sale " << (*node)->name().text() << " ready" << std::endl;
  }
  int sig = 0;
  sigwait(&sigs, &sig);
  (*node)->stop();
  return 0;
}
