// The stack server of Elixir's GenServer guide, as a C++ node. Elixir calls it unchanged:
//
//   GenServer.cast({:stack, :"stack@127.0.0.1"}, {:push, :hello})
//   GenServer.call({:stack, :"stack@127.0.0.1"}, :pop)            #=> :hello
//
// It also exports a few functions for rpc from Erlang/Elixir (:rpc.call(node, :stack, :size, [])),
// runs them as tasks for Elixir's Task.Supervisor.async({:tasks, node}, ...), and shows a deferred
// reply: a pop on an empty stack waits for the next push.
//
//   stack_server --name stack@127.0.0.1 --cookie secret
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "hypha/node/node.hpp"
#include "hypha/otp/kernel.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/otp/task.hpp"

using namespace hypha;

class Stack : public GenServer {
 public:
  Task<Action> handle_call(Process&, const Term& req, const From& from) override {
    if (req.is_atom(Atom("pop"))) {
      if (items_.empty()) {  // answered by the next push
        waiting_.push_back(from);
        co_return Action::noreply();
      }
      Term top = items_.back();
      items_.pop_back();
      co_return top;
    }
    if (req.is_atom(Atom("size"))) co_return Term(static_cast<std::int64_t>(items_.size()));
    if (req.is_atom(Atom("waiting"))) co_return Term(static_cast<std::int64_t>(waiting_.size()));  // pops held
    if (req.is_atom(Atom("never"))) co_return Action::noreply();  // a call that is never answered
    co_return Action::stop(Term::tuple({Term(Atom("bad_call")), req}), Term(Atom("error")));
  }
  Task<Action> handle_cast(Process& self, const Term& msg) override {
    if (msg.is_tuple() && msg.tuple_size() == 2 && msg[0].is_atom(Atom("push"))) {
      if (!waiting_.empty()) {
        gen_server::reply(self, waiting_.front(), msg[1]);
        waiting_.erase(waiting_.begin());
      } else {
        items_.push_back(msg[1]);
      }
    }
    co_return Action::noreply();
  }

 private:
  std::vector<Term> items_;
  std::vector<From> waiting_;
};

int main(int argc, char** argv) {
  NodeOptions opts;
  opts.name = "stack@127.0.0.1";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--name") opts.name = argv[i + 1];
    else if (flag == "--cookie") opts.cookie = argv[i + 1];
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto exports = std::make_shared<Exports>();  // what :rpc.call may run here, filled below
  auto node = start_node(opts, {.exports = exports});
  if (!node) {
    std::cerr << "stack_server: " << node.error() << "\n";
    return 1;
  }
  Runtime& rt = (*node)->runtime();
  auto server = gen_server::start(rt, std::make_unique<Stack>(), {.name = Atom("stack")});
  if (!server) {
    std::cerr << "stack_server: " << server.error().to_string() << "\n";
    return 1;
  }
  // Exports that use the server: :rpc.call(node, :stack, :size, []) and friends.
  exports->add("stack", "size", [](Process& self) -> Task<Term> {
    auto r = co_await gen_server::call(self, Atom("stack"), Term(Atom("size")));
    if (!r) throw Exit(r.error());
    co_return *r;
  });
  exports->add("stack", "push", [](Process& self, Term item) {
    gen_server::cast(self, Atom("stack"), Term::tuple({Term(Atom("push")), item}));
  });
  exports->add("stack", "add", [](std::int64_t a, std::int64_t b) { return a + b; });
  exports->add("stack", "fail", []() -> Term { throw std::runtime_error("failed on purpose"); });
  // Runs until a message comes, and returns it: a task that is still running when looked at.
  exports->add("stack", "wait", [](Process& self) -> Task<Term> { co_return co_await self.receive(); });
  // Task.Supervisor.async({:tasks, :"stack@127.0.0.1"}, :stack, :add, [1, 2]) |> Task.await()
  if (!task::serve_supervisor(rt, exports, Atom("tasks"))) return 1;

  std::cout << "stack server " << (*node)->name().text() << " ready" << std::endl;
  int sig = 0;
  sigwait(&sigs, &sig);
  (*node)->stop();
  return 0;
}
