// Node: a C++ program as a member of an Erlang cluster. It owns the process Runtime (whose pids
// carry this node's name and creation), registers with EPMD (starting an embedded one when the
// EPMD port is free), accepts and makes distribution connections, and routes everything between
// local processes and other nodes, C++ or BEAM, with Erlang's semantics: sends to remote pids and
// {Name, Node}, links and monitors across nodes, noconnection/nodedown when a peer is lost, and the
// net_kernel service that makes net_adm:ping/Node.ping answer pong.
//
//   auto node = hypha::Node::start({.name = "foo@127.0.0.1", .cookie = "secret"});
//   if (!node) { std::cerr << node.error(); return 1; }
//   hypha::Runtime& rt = (*node)->runtime();
//   bool up = (*node)->ping(hypha::Atom("bar@127.0.0.1"));
//
// Thread-safety: every member may be called from any thread. Processes run on the runtime's
// workers, and idle workers also run the node's network I/O (workers_poll_io).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hypha/process/runtime.hpp"
#include "hypha/term/result.hpp"

namespace asio {
class io_context;
}

namespace hypha {

class SimNetwork;

struct NodeOptions {
  // "alive@host" (long names need a host with a dot or an IP address) or just "alive", which
  // becomes a short name on this host.
  std::string name;
  // Empty: HYPHA_COOKIE, else ~/.erlang.cookie (created as erl creates it when missing).
  std::string cookie;
  bool hidden = false;                      // not in other nodes' nodes(), as erl -hidden
  std::chrono::milliseconds net_ticktime = std::chrono::seconds(60);
  std::chrono::milliseconds setup_timeout = std::chrono::seconds(7);  // net_setuptime
  // Failure detection between hypha nodes, faster than the tick: a hypha peer that falls silent
  // (stopped, a dead link) is declared down within `detect` (config `[cluster] detect_ms`).
  // Each hypha node says hello on a new connection (to the name `hypha_heartbeat`, which BEAM
  // nodes drop) with its own `detect`; each side then ticks fast enough for the other, and any
  // traffic counts. BEAM peers never answer, so they keep the tick protocol and net_ticktime.
  // 0: off (this node's connections close after net_ticktime; it still ticks as fast as a
  // hypha peer asks).
  std::chrono::milliseconds detect = std::chrono::seconds(3);
  unsigned threads = 0;                     // process workers; 0: one per core
  std::chrono::microseconds idle_spin{40};  // RuntimeOptions::idle_spin: latency vs. throughput
  // Idle process workers run the network I/O (no hand-off from an I/O thread to a worker, as
  // BEAM's schedulers poll); false: a dedicated I/O thread does, and hands every message over.
  bool workers_poll_io = true;
  std::uint16_t listen_port = 0;            // 0: any free port
  bool embedded_epmd = true;                // serve EPMD ourselves when its port is free
  bool publish = true;                      // register with EPMD (short-lived clients need not)
  std::uint16_t epmd_port = 0;              // 0: ERL_EPMD_PORT, else 4369
  // The address the embedded EPMD listens on: empty, every address (as OTP's epmd); "127.0.0.1"
  // keeps the port mapper off the network. Registrations are taken from loopback only, either way.
  std::string epmd_bind;
  // Per connection, bytes. A process sending past it is held in its send until there is room
  // again (as a busy distribution port suspends a BEAM sender); if none comes within
  // max_send_wait, or a plain thread sends past it, the connection is closed.
  std::size_t max_send_queue = 64u << 20;
  std::chrono::milliseconds max_send_wait = std::chrono::seconds(5);
  std::size_t max_frame = 64u << 20;        // largest accepted distribution packet
  // Memory one decoded message may take (estimated while decoding; see etf::DecodeOptions): a
  // packet past it is refused and its connection closed with the reason logged.
  std::size_t max_decoded_bytes = 256u << 20;
  // Bytes held by partial frames (received, not yet complete) over all connections of the
  // process, beyond each connection's first MiB; a frame that would pass it closes its
  // connection. A partial frame incomplete for longer than net_ticktime closes it too.
  std::size_t max_partial_frames = 256u << 20;
  // New atoms one connection may add to the (process-wide, never shrinking) atom table; a peer
  // past it is disconnected with a logged reason. However many peers spend their budgets,
  // atoms from outside stop Atom::kReserve below the table's limit (see atom.hpp).
  std::size_t max_new_atoms_per_peer = 100000;
  // Accepted distribution connections open at once (all listeners of the process also leave
  // net::descriptor_reserve() descriptors free for the node's own connections).
  std::size_t max_connections = 4096;
  // Accepted connections that have not proved the cookie yet, in all and from one address; past
  // either, the oldest such handshake is closed. Each lasts at most setup_timeout.
  std::size_t max_handshakes = 64;
  std::size_t max_handshakes_per_source = 16;
  // Deterministic tests (node/sim.hpp): the node reaches the other nodes of this simulated
  // network instead of TCP and EPMD (nothing listens, nothing registers), and its runtime's
  // timers run on the network's ManualClock.
  std::shared_ptr<SimNetwork> network;
};

// The cookie as erl would find it: HYPHA_COOKIE, else ~/.erlang.cookie, creating that file
// (20 random capital letters, mode 0400) when it does not exist.
Result<std::string, std::string> default_cookie();

// One connected peer, for dashboards and metrics (Node::peers()).
struct PeerInfo {
  Atom name;
  bool hidden = false;  // the peer did not publish itself (a hidden node, erl_call, a CLI)
  std::chrono::system_clock::time_point since;  // when this connection came up
  std::uint32_t creation = 0;                    // the peer's incarnation (its pids carry it)
  bool hypha = false;  // the peer said the hypha heartbeat hello (else a BEAM node, or not yet)
  std::chrono::milliseconds detect{0};  // how soon this node declares that peer down if silent
  std::uint64_t messages_in = 0, messages_out = 0;  // frames other than ticks
  std::uint64_t bytes_in = 0, bytes_out = 0;        // frames whole, ticks included
  std::size_t send_queue_bytes = 0;                 // queued, not yet written
};

class Node {
 public:
  static Result<std::unique_ptr<Node>, std::string> start(NodeOptions opts);
  ~Node();  // stop()
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  Runtime& runtime() noexcept;
  Atom name() const noexcept;
  std::uint32_t creation() const noexcept;
  std::uint16_t port() const noexcept;       // the distribution listen port
  std::chrono::milliseconds detect() const noexcept;  // NodeOptions::detect (0: off)
  // The node's asio io_context, for an application's own sockets (hypha kv's text server): their
  // handlers then run on the workers too, and a request reaches its process without a hand-off.
  asio::io_context& io_context() noexcept;
  bool serves_epmd() const noexcept;         // the embedded EPMD is running in this node

  // Connects (if needed) and asks the peer's net_kernel, as net_adm:ping does.
  bool ping(Atom node, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Result<bool, std::string> connect(Atom node, std::chrono::milliseconds timeout = std::chrono::seconds(7));
  // Starts connecting (if needed) and returns at once; `done(true)` once the connection is up
  // (at once if it is), `done(false)` when it cannot be made. `done` runs on the node's threads
  // (an I/O handler, or the caller's): it must not block.
  void connect_async(Atom node, std::function<void(bool)> done);
  void disconnect(Atom node);
  // Connected nodes: visible ones, or all including hidden.
  std::vector<Atom> nodes(bool include_hidden = false) const;
  // Every connected peer (hidden ones too) with its connection's counters, sorted by name.
  std::vector<PeerInfo> peers() const;

  // Bytes waiting to be written to `node` (0 when not connected). Senders that produce faster than
  // the network carries can wait on this to stay below max_send_queue, as BEAM senders are
  // suspended by a busy distribution port.
  std::size_t send_queue_bytes(Atom node) const;
  // Blocks the calling thread (not a process: processes must not block) until the queue to `node`
  // holds at most `bytes`; false on timeout or when the connection is gone.
  bool wait_send_queue(Atom node, std::size_t bytes, std::chrono::milliseconds timeout);

  // {nodeup, Node} and {nodedown, Node} to `subscriber` for every connection (net_kernel:monitor_nodes).
  void monitor_nodes(const Pid& subscriber, bool on = true);
  // One {nodedown, Node} to `subscriber` when the connection to `node` goes (erlang:monitor_node);
  // immediately if it cannot be made.
  void monitor_node(const Pid& subscriber, Atom node);

  // Leaves the cluster: closes every connection (peers see nodedown), unregisters from EPMD,
  // stops the embedded EPMD and the runtime.
  void stop();

  struct Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hypha
