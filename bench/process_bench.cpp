// Process runtime benchmark: local ping-pong, spawn rate, memory per idle process.
// The BEAM counterpart is bench/process_bench.escript; bench/run.sh runs both.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "bench_util.hpp"
#include "hypha/process.hpp"

using namespace hypha;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

double seconds_since(Steady::time_point t) { return std::chrono::duration<double>(Steady::now() - t).count(); }

// Two processes bounce a message `rounds` times; returns round trips per second.
double ping_pong(Runtime& rt, int rounds) {
  Mailbox me = rt.mailbox();
  Pid pong = rt.spawn([](Process& self) -> Task<> {
    for (;;) {
      Term m = co_await self.receive();
      if (!m.is_tuple()) co_return;
      self.send(m[0].pid(), m[1]);
    }
  });
  const auto start = Steady::now();
  rt.spawn([pong, rounds, done = me.pid()](Process& self) -> Task<> {
    const Term from(self.pid());
    for (int i = 0; i < rounds; ++i) {
      self.send(pong, Term::tuple({from, Term(i)}));
      co_await self.receive();
    }
    self.send(pong, Term::atom("stop"));
    self.send(done, Term::atom("done"));
  });
  me.receive();
  return rounds / seconds_since(start);
}

// Spawns n processes that each tell a collector they ran; returns processes per second.
double spawn_rate(Runtime& rt, int n) {
  Mailbox me = rt.mailbox();
  const auto start = Steady::now();
  rt.spawn([n, done = me.pid()](Process& self) -> Task<> {
    const Pid parent = self.pid();
    for (int i = 0; i < n; ++i)
      self.spawn([parent](Process& c) -> Task<> {
        c.send(parent, Term());
        co_return;
      });
    for (int i = 0; i < n; ++i) co_await self.receive();
    self.send(done, Term::atom("done"));
  });
  me.receive();
  return n / seconds_since(start);
}

long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

// Bytes of resident memory per process waiting in receive.
double idle_memory(Runtime& rt, int n) {
  Mailbox me = rt.mailbox();
  const long before = rss_bytes();
  std::vector<Pid> pids;
  pids.reserve(n);
  for (int i = 0; i < n; ++i)
    pids.push_back(rt.spawn([](Process& self) -> Task<> { co_await self.receive(); }));
  while (rt.process_info(pids.back())->status != ProcessStatus::Waiting) std::this_thread::yield();
  const long after = rss_bytes();
  for (const Pid& p : pids) rt.send(p, Term());
  while (rt.process_count() > 1) std::this_thread::yield();
  return static_cast<double>(after - before - static_cast<long>(n * sizeof(Pid))) / n;
}

}  // namespace

int main() {
  Runtime rt;
  double best = 0;
  for (int i = 0; i < 5; ++i) best = std::max(best, ping_pong(rt, 200000));
  bench::print_metric("hypha", "local_pingpong", best, "roundtrips/s");
  best = 0;
  for (int i = 0; i < 5; ++i) best = std::max(best, spawn_rate(rt, 100000));
  bench::print_metric("hypha", "spawn", best, "procs/s");
  bench::print_metric("hypha", "idle_process_memory", idle_memory(rt, 100000), "bytes");
  return 0;
}
