// The stack server of Elixir's GenServer guide, as a C++ node. Elixir calls it unchanged:
//
//   GenServer.cast({:stack, :"stack@127.0.0.1"}, {:push, :hello})
//   GenServer.call({:stack, :"stack@127.0.0.1"}, :pop)            #=> :hello
//   GenServer.call({:global, :stack}, :size)                        # registered in :global too
//
// Besides its gen_server calls it speaks the messaging intro's plain messages (Name a binary):
//   {subscribe, Name, Pid}   Pid gets the notifications from now on, as Name
//   {unsubscribe, Name}
//   {push, Name, Item}       every subscriber gets {notify, push, Name, Item}
//   {pop, Name}              every subscriber gets {notify, pop, Name, {From, Item}} (From: who
//                            pushed it); on an empty stack the popper gets {notify, empty}
//   {get, Name}              that subscriber gets {notify, get, Stack}: [{From, Item}], newest first
//   anything else            ignored
// One stack for both: an item pushed by a gen_server cast has From undefined.
//
// It registers itself in :global as `stack` through every BEAM peer it meets (cluster/global.hpp:
// hypha nodes do not run global; its BEAM peers do), exports a few functions for rpc from
// Erlang/Elixir (:rpc.call(node, :stack, :size, [])), runs them as tasks for Elixir's
// Task.Supervisor.async({:tasks, node}, ...), and shows a deferred reply: a pop call on an empty
// stack waits for the next push.
//
//   stack_server --name stack@127.0.0.1 --cookie secret [--connect NODE...]
#include <signal.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "hypha/cluster/cluster.hpp"
#include "hypha/node/node.hpp"
#include "hypha/otp/kernel.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/otp/task.hpp"

using namespace hypha;

class Stack : public GenServer {
 public:
  Task<Action> handle_call(Process& self, const Term& req, const From& from) override {
    if (req.is_atom(Atom("pop"))) {
      if (items_.empty()) {  // answered by the next push
        waiting_.push_back(from);
        co_return Action::noreply();
      }
      Term top = items_.back().second;
      const Term pusher = items_.back().first;
      items_.pop_back();
      notify(self, Term::tuple({Term(Atom("notify")), Term(Atom("pop")), Term(Atom("undefined")), Term::tuple({pusher, top})}));
      co_return top;
    }
    if (req.is_atom(Atom("size"))) co_return Term(static_cast<std::int64_t>(items_.size()));
    if (req.is_atom(Atom("waiting"))) co_return Term(static_cast<std::int64_t>(waiting_.size()));  // pops held
    if (req.is_atom(Atom("never"))) co_return Action::noreply();  // a call that is never answered
    co_return Action::stop(Term::tuple({Term(Atom("bad_call")), req}), Term(Atom("error")));
  }
  Task<Action> handle_cast(Process& self, const Term& msg) override {
    if (msg.is_tuple() && msg.tuple_size() == 2 && msg[0].is_atom(Atom("push"))) push(self, Term(Atom("undefined")), msg[1]);
    co_return Action::noreply();
  }
  // The intro's plain messages.
  Task<Action> handle_info(Process& self, const Term& msg) override {
    const auto is = [&msg](const char* tag, std::size_t n) {
      return msg.is_tuple() && msg.tuple_size() == n && msg[0].is_atom(Atom(tag)) && msg[1].is_binary();
    };
    if (is("subscribe", 3) && msg[2].is_pid()) {
      subscribers_[msg[1]] = msg[2].pid();
    } else if (is("unsubscribe", 2)) {
      subscribers_.erase(msg[1]);
    } else if (is("push", 3)) {
      push(self, msg[1], msg[2]);
      notify(self, Term::tuple({Term(Atom("notify")), Term(Atom("push")), msg[1], msg[2]}));
    } else if (is("pop", 2)) {
      if (items_.empty()) {
        if (auto it = subscribers_.find(msg[1]); it != subscribers_.end())
          self.send(it->second, Term::tuple({Term(Atom("notify")), Term(Atom("empty"))}));
      } else {
        auto [pusher, item] = items_.back();
        items_.pop_back();
        notify(self, Term::tuple({Term(Atom("notify")), Term(Atom("pop")), msg[1], Term::tuple({pusher, item})}));
      }
    } else if (is("get", 2)) {
      if (auto it = subscribers_.find(msg[1]); it != subscribers_.end()) {
        std::vector<Term> stack;
        for (auto i = items_.rbegin(); i != items_.rend(); ++i) stack.push_back(Term::tuple({i->first, i->second}));
        self.send(it->second, Term::tuple({Term(Atom("notify")), Term(Atom("get")), Term::list(std::move(stack))}));
      }
    }
    co_return Action::noreply();
  }

 private:
  void push(Process& self, const Term& pusher, const Term& item) {
    if (!waiting_.empty()) {  // a pop call held for it takes it
      gen_server::reply(self, waiting_.front(), item);
      waiting_.erase(waiting_.begin());
      return;
    }
    items_.emplace_back(pusher, item);
  }
  void notify(Process& self, const Term& note) {
    for (const auto& [name, pid] : subscribers_) self.send(pid, note);
  }

  std::vector<std::pair<Term, Term>> items_;  // (who pushed it, the item), the top last
  std::vector<From> waiting_;
  std::map<Term, Pid> subscribers_;           // by name
};

int main(int argc, char** argv) {
  NodeOptions opts;
  opts.name = "stack@127.0.0.1";
  std::vector<std::string> connect;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
    if (flag == "--name" && has_value) opts.name = argv[++i];
    else if (flag == "--cookie" && has_value) opts.cookie = argv[++i];
    else if (flag == "--connect")
      while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) connect.push_back(argv[++i]);
    else {
      std::cerr << "usage: stack_server --name NAME --cookie COOKIE [--connect NODE...]\n";
      return 2;
    }
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto exports = std::make_shared<Exports>();  // what :rpc.call may run here, filled below
  // global_names: `stack` is registered in :global through every BEAM peer that connects.
  cluster::Options services;
  services.global_names = {Atom("stack")};
  auto node = start_cluster_node(opts, {.exports = exports}, services);
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

  for (const auto& peer : connect) {
    auto name = Atom::make(peer);
    if (!name || !(*node)->connect(*name, std::chrono::seconds(5)).ok())
      std::cerr << "stack_server: cannot connect to " << peer << "\n";
  }
  std::cout << "stack server " << (*node)->name().text() << " ready" << std::endl;
  int sig = 0;
  sigwait(&sigs, &sig);
  (*node)->stop();
  return 0;
}
