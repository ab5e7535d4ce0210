// EPMD, the Erlang port mapper: the client side (register a node, look one up, list names) and an
// embedded server that speaks the same protocol, so a machine needs no separate epmd program.
// Real `erl` nodes can register with the embedded server and find each other through it.
//
// The port is ERL_EPMD_PORT when set, else 4369, as for erl and epmd.
// All operations are asio coroutines on the caller's executor.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <map>
#include <span>
#include <memory>
#include <string>
#include <vector>

#include "hypha/term/result.hpp"

namespace hypha::net {

std::uint16_t epmd_port();

struct NodeEntry {
  std::string name;  // the part before '@'
  std::uint16_t port = 0;
  std::uint8_t type = 77;  // 77 normal, 72 hidden
  std::uint8_t protocol = 0;
  std::uint16_t highest = 6;
  std::uint16_t lowest = 6;
  std::string extra;
};

// A live registration: EPMD forgets the node when this socket closes.
struct EpmdRegistration {
  std::unique_ptr<asio::ip::tcp::socket> socket;
  std::uint32_t creation = 0;
};

asio::awaitable<Result<EpmdRegistration, std::string>> epmd_register(std::string alive, std::uint16_t listen_port,
                                                                     bool hidden, std::uint16_t port);
asio::awaitable<Result<NodeEntry, std::string>> epmd_port_please(std::string host, std::string alive,
                                                                 std::uint16_t port);
// Each line of `epmd -names`: the EPMD port, then "name N at port P" lines.
asio::awaitable<Result<std::string, std::string>> epmd_names(std::string host, std::uint16_t port);

// An ALIVE2_REQ body (after its 2-byte length), parsed from untrusted bytes, and written.
Result<NodeEntry, std::string> parse_alive2(std::span<const std::uint8_t> request);
std::vector<std::uint8_t> alive2_request(const NodeEntry& entry);

// The embedded port mapper. start() fails (with the reason) when the port is taken, which means
// another EPMD is already serving it. `bind`: the address to listen on (empty: every address,
// as OTP's epmd without ERL_EPMD_ADDRESS). As OTP's epmd, it takes ALIVE2 registrations only
// from loopback addresses; a connection must send its request within 5 s; at most 1024
// connections at once. Refused requests are logged (rate-limited).
class EpmdServer {
 public:
  // `owner`: the node that embeds it, named in its log lines (empty for a standalone EPMD).
  explicit EpmdServer(asio::any_io_executor ex, std::string owner = {});
  ~EpmdServer();
  Result<std::uint16_t, std::string> start(std::uint16_t port, const std::string& bind = {});
  void stop();
  std::vector<NodeEntry> nodes() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace hypha::net
