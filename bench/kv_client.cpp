// KV benchmark client: the same load against any server of the text protocol (hypha kv, or the
// Elixir guide's KV app in bench/kv_bench.exs).
//   kv_client LABEL PORT_A PORT_B CLIENTS SECONDS
// Creates the buckets "apples" (a-m: owned by the first node) and "zebras" (n-z: the second),
// then CLIENTS connections, half to each server, alternate PUT and GET over both buckets for
// SECONDS: keys spread over two nodes, so half the requests are forwarded by the router.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace {

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Sends one command and reads until the reply's final line (OK, NOT FOUND, ...).
bool request(int fd, const std::string& cmd, std::string& buf) {
  const std::string line = cmd + "\r\n";
  if (::send(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) return false;
  const bool get = cmd.rfind("GET", 0) == 0;
  int lines_needed = get ? 2 : 1;
  buf.clear();
  char chunk[4096];
  for (;;) {
    int lines = 0;
    for (char c : buf) lines += c == '\n';
    if (get && buf.rfind("NOT FOUND", 0) == 0) lines_needed = 1;
    if (lines >= lines_needed) return buf.find("ERROR") == std::string::npos;
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: kv_client LABEL PORT_A PORT_B CLIENTS SECONDS\n");
    return 2;
  }
  const std::string label = argv[1];
  const int ports[2] = {std::atoi(argv[2]), std::atoi(argv[3])};
  const int clients = std::atoi(argv[4]);
  const double seconds = std::atof(argv[5]);
  {
    const int fd = connect_to(ports[0]);
    std::string buf;
    if (!request(fd, "CREATE apples", buf) || !request(fd, "CREATE zebras", buf)) {
      std::fprintf(stderr, "kv_client: setup failed: %s\n", buf.c_str());
      return 1;
    }
    ::close(fd);
  }
  std::atomic<long> done{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      const int fd = connect_to(ports[c % 2]);
      std::string buf;
      for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const char* bucket = (i / 2) % 2 ? "zebras" : "apples";
        const std::string key = "k" + std::to_string(c) + "_" + std::to_string(i % 100);
        const std::string cmd = i % 2 ? std::string("GET ") + bucket + " " + key
                                      : std::string("PUT ") + bucket + " " + key + " v" + std::to_string(i);
        if (request(fd, cmd, buf)) done.fetch_add(1, std::memory_order_relaxed);
        else failed.fetch_add(1, std::memory_order_relaxed);
      }
      ::close(fd);
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failed.load() > 0) std::fprintf(stderr, "kv_client: %ld requests failed\n", failed.load());
  hypha::bench::print_metric(label, "kv_requests_per_s_" + std::to_string(clients) + "clients",
                             static_cast<double>(done.load()) / secs, "req/s");
  return failed.load() > 0 ? 1 : 0;
}
