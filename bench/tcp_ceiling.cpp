// The loopback TCP ceiling for the distribution benchmark: SIZE-byte messages written BATCH per
// system call (as a hypha connection gathers queued frames) and read into a 1 MiB buffer, with
// no framing, decoding or delivery. No distribution implementation over TCP on this machine can
// carry more; bench/run.sh prints it next to the 64 KiB figures as side=tcp_ceiling.
//   tcp_ceiling SIZE COUNT BATCH
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace {

bool write_all(int fd, std::vector<iovec> iov) {
  std::size_t i = 0;
  while (i < iov.size()) {
    const ssize_t n = ::writev(fd, &iov[i], static_cast<int>(std::min<std::size_t>(iov.size() - i, IOV_MAX)));
    if (n <= 0) return false;
    auto left = static_cast<std::size_t>(n);
    while (i < iov.size() && left >= iov[i].iov_len) left -= iov[i++].iov_len;
    if (left > 0) {
      iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
      iov[i].iov_len -= left;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: tcp_ceiling SIZE COUNT BATCH\n";
    return 2;
  }
  const std::size_t size = std::stoul(argv[1]);
  const long count = std::stol(argv[2]);
  const long batch = std::max(1L, std::stol(argv[3]));
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::cerr << "tcp_ceiling: cannot listen\n";
    return 1;
  }
  std::thread writer([&] {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::exit(1);
    std::vector<std::vector<char>> msgs(static_cast<std::size_t>(batch), std::vector<char>(size, 'x'));
    for (long sent = 0; sent < count; sent += batch) {
      std::vector<iovec> iov;
      for (long k = 0; k < batch && sent + k < count; ++k) iov.push_back({msgs[static_cast<std::size_t>(k)].data(), size});
      if (!write_all(s, std::move(iov))) std::exit(1);
    }
    ::close(s);
  });
  const int c = ::accept(listener, nullptr, nullptr);
  std::vector<char> buf(1 << 20);
  std::size_t total = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    const ssize_t n = ::read(c, buf.data(), buf.size());
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  writer.join();
  const std::string sz = std::to_string(size);
  hypha::bench::print_metric("tcp_ceiling", "msgs_per_s_" + sz, static_cast<double>(total / size) / secs, "msgs/s");
  hypha::bench::print_metric("tcp_ceiling", "mb_per_s_" + sz, static_cast<double>(total) / secs / 1e6, "MB/s");
  return 0;
}
