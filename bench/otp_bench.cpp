// OTP benchmark, hypha side: the same roles as bench/otp_bench.escript.
//   serve NAME | call NODE COUNT LABEL | rpc NODE COUNT LABEL | task NODE COUNT LABEL
// call: sequential gen_server calls ({bench_server, Node} ! ping -> pong), latencies p50/p99, then
// 8 calling processes at once (calls/s). rpc: the same with rpc:call(Node, erlang, node, []).
// task: a task of the node's task supervisor bench_tasks running erlang:node/0, awaited.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <vector>

#include "bench_node.hpp"
#include "bench_util.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/otp/task.hpp"

using namespace hypha;
using Steady = std::chrono::steady_clock;

namespace {

struct Pong : GenServer {
  Task<Action> handle_call(Process&, const Term&, const From&) override { co_return Term(Atom("pong")); }
};

std::unique_ptr<Node> start(const std::string& name, std::shared_ptr<Exports> exports = std::make_shared<Exports>()) {
  return bench::start_node(name, std::move(exports));
}

enum class Mode { Call, Rpc, Task };

Task<> one(Process& self, Mode mode, Atom to) {
  if (mode == Mode::Task) {
    auto t = co_await task::async(self, ServerRef(Atom("bench_tasks"), to), Atom("erlang"), Atom("node"), Term());
    if (!t) throw Exit(t.error());
    auto r = co_await task::await(self, *t);
    if (!r) throw Exit(r.error());
  } else if (mode == Mode::Call) {
    auto r = co_await gen_server::call(self, ServerRef(Atom("bench_server"), to), Term(Atom("ping")));
    if (!r) throw Exit(r.error());
  } else {
    const Term r = co_await rpc::call(self, to, Atom("erlang"), Atom("node"), Term());
    if (!(r == Term(to))) throw Exit(r);
  }
}

int client(const std::string& mode, const std::string& node, long n, const std::string& label) {
  auto me = start("bench_otp_" + std::to_string(::getpid()) + "@127.0.0.1");
  const Atom to(node);
  if (!me->ping(to)) return 1;
  const Mode call = mode == "call" ? Mode::Call : mode == "rpc" ? Mode::Rpc : Mode::Task;
  std::vector<double> us = block_on(me->runtime(), [&](Process& self) -> Task<std::vector<double>> {
    for (int i = 0; i < 200; ++i) co_await one(self, call, to);  // warm up
    std::vector<double> v;
    v.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) {
      const auto t0 = Steady::now();
      co_await one(self, call, to);
      v.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    }
    co_return v;
  });
  std::sort(us.begin(), us.end());
  bench::print_metric(label, mode + "_p50", us[us.size() / 2], "us");
  bench::print_metric(label, mode + "_p99", us[us.size() * 99 / 100], "us");
  // 8 callers at once.
  Mailbox done = me->runtime().mailbox();
  const Pid done_pid = done.pid();
  const auto t0 = Steady::now();
  for (int k = 0; k < 8; ++k)
    me->runtime().spawn([=](Process& self) -> Task<> {
      for (long i = 0; i < n; ++i) co_await one(self, call, to);
      self.send(done_pid, Term(Atom("done")));
    });
  for (int k = 0; k < 8; ++k) done.receive();
  const double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  bench::print_metric(label, mode + "_per_s_8way", 8.0 * static_cast<double>(n) / secs, "ops/s");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 2 && a[0] == "serve") {
    bench::StopSignals stop;
    auto exports = std::make_shared<Exports>();
    auto node = start(a[1], exports);
    if (!gen_server::start(node->runtime(), std::make_unique<Pong>(), {.name = Atom("bench_server")})) return 1;
    if (!task::serve_supervisor(node->runtime(), exports, Atom("bench_tasks"))) return 1;
    stop.serve_until_signalled();
    return 0;
  }
  if (a.size() == 4 && (a[0] == "call" || a[0] == "rpc" || a[0] == "task"))
    return client(a[0], a[1], std::stol(a[2]), a[3]);
  std::cerr << "usage: otp_bench serve NAME | (call | rpc | task) NODE COUNT LABEL\n";
  return 2;
}
