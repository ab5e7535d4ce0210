// Distribution benchmark, C++ side. The BEAM side is bench/dist_bench.escript with the same roles
// and the same protocol, so any sender can drive any server:
//   dist_bench serve NAME                 a node with `sink` and `echo` registered, until killed
//   dist_bench send NODE SIZE COUNT LABEL COUNT messages of SIZE bytes to {sink, NODE}, then
//                                         {done, Self}; the sink answers {count, N} after the
//                                         last: prints messages/s and MB/s
//   dist_bench pingpong NODE COUNT LABEL  COUNT round trips with {echo, NODE}: p50/p99 in us
// The cookie is "bench"; EPMD is whatever ERL_EPMD_PORT names.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <unistd.h>

#include "bench_node.hpp"
#include "bench_util.hpp"
#include "hypha/node/node.hpp"

using namespace hypha;
using Steady = std::chrono::steady_clock;

namespace {

std::unique_ptr<Node> start(const std::string& name) { return bench::start_node(name); }

int serve(const std::string& name) {
  bench::StopSignals stop;
  auto node = start(name);
  Runtime& rt = node->runtime();
  rt.register_name(Atom("sink"), rt.spawn([](Process& self) -> Task<> {
    std::int64_t n = 0;
    const Atom done("done");
    for (;;) {
      Term m = co_await self.receive();
      if (m.is_tuple() && m.tuple_size() == 2 && m[0].is_atom(done)) {
        self.send(m[1].pid(), Term::tuple({Term::atom("count"), Term(n)}));
        n = 0;
      } else {
        ++n;
      }
    }
  }));
  rt.register_name(Atom("echo"), rt.spawn([](Process& self) -> Task<> {
    for (;;) {
      Term m = co_await self.receive();  // {ping, From, I}
      self.send(m[1].pid(), Term::tuple({Term::atom("pong"), m[2]}));
    }
  }));
  stop.serve_until_signalled();
  return 0;
}

std::string client_name() { return "bench_client_" + std::to_string(::getpid()) + "@127.0.0.1"; }

int send(const std::string& target, std::size_t size, long count, const std::string& label) {
  auto node = start(client_name());
  const Atom to(target);
  if (!node->connect(to)) return 2;
  Mailbox me = node->runtime().mailbox();
  const Term payload = Term::binary(std::string(size, 'x'));
  const Atom sink("sink");
  const auto t0 = Steady::now();
  // The sender is a process, as the BEAM sender is: its sends in one run leave in gathered writes
  // (corking), and past the connection's queue limit it is held in its send, as a BEAM process
  // on a busy distribution port. It yields every 64 messages, as a BEAM process is preempted.
  node->runtime().spawn([=, done = me.pid()](Process& self) -> Task<> {
    for (long i = 0; i < count; ++i) {
      self.send(sink, to, payload);
      if ((i & 63) == 63) co_await self.sleep(std::chrono::milliseconds(0));
    }
    self.send(sink, to, Term::tuple({Term::atom("done"), Term(done)}));
  });
  auto reply = me.receive(std::chrono::minutes(2));
  const double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  if (!reply || (*reply)[1].small_integer() != count) {
    std::cerr << "dist_bench: sink counted " << (reply ? reply->to_string() : "nothing") << "\n";
    return 1;
  }
  bench::print_metric(label, "msgs_per_s_" + std::to_string(size), count / secs, "msgs/s");
  bench::print_metric(label, "mb_per_s_" + std::to_string(size), count * size / secs / 1e6, "MB/s");
  return 0;
}

int pingpong(const std::string& target, long count, const std::string& label) {
  auto node = start(client_name());
  const Atom to(target);
  if (!node->connect(to)) return 2;
  // The client is a process, as the BEAM client is.
  auto us = std::make_shared<std::vector<double>>();
  us->reserve(count);
  Mailbox me = node->runtime().mailbox();
  node->runtime().spawn([to, count, us, done = me.pid()](Process& self) -> Task<> {
    const Atom echo("echo"), ping("ping");
    for (long i = 0; i < count; ++i) {
      const auto t0 = Steady::now();
      self.send(echo, to, Term::tuple({Term(ping), Term(self.pid()), Term(i)}));
      co_await self.receive();
      us->push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    }
    self.send(done, Term::atom("done"));
  });
  if (!me.receive(std::chrono::minutes(2))) return 1;
  auto& v = *us;
  std::sort(v.begin(), v.end());
  bench::print_metric(label, "rtt_p50", v[v.size() / 2], "us");
  bench::print_metric(label, "rtt_p99", v[v.size() * 99 / 100], "us");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 2 && a[0] == "serve") return serve(a[1]);
  if (a.size() == 5 && a[0] == "send") return send(a[1], std::stoul(a[2]), std::stol(a[3]), a[4]);
  if (a.size() == 4 && a[0] == "pingpong") return pingpong(a[1], std::stol(a[2]), a[3]);
  std::cerr << "usage: dist_bench serve NAME | send NODE SIZE COUNT LABEL | pingpong NODE COUNT LABEL\n";
  return 2;
}
