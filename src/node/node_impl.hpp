// Node::Impl (private to the node library): peers, connection setup, the RemoteTransport.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <array>
#include <list>
#include <atomic>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "hypha/base/log.hpp"
#include "hypha/net/connection.hpp"
#include "hypha/net/epmd.hpp"
#include "hypha/net/handshake.hpp"
#include "hypha/net/listener.hpp"
#include "hypha/net/packet.hpp"
#include "hypha/node/node.hpp"
#include "hypha/process/inbound.hpp"

namespace hypha {

using Bytes = net::Frame;

inline Atom a(std::string_view s) { return Atom(s); }
using AtomCache = net::AtomCache;
// What a connection's reader keeps between packets (touched only by it).
struct Inbound {
  AtomCache cache;
  std::size_t atom_budget = 0;  // new atoms this peer may still add to the table
  std::shared_ptr<net::Connection> accepted;  // an accepted connection's place in the listener's count
  std::weak_ptr<net::FrameLink> link;         // the connection this reader reads
  bool hello_answered = false;                // the heartbeat hello (see NodeOptions::detect)
};

// One other node: a connection being set up or up, and what depends on it.
struct Peer {
  enum class State { Pending, Up };
  // Who is setting up a pending connection: our outgoing attempt, or nobody yet because our
  // attempt lost a simultaneous connect (or gave way to the peer's) and the peer's is on its way.
  // (An accepted connection claims a peer only once it has authenticated, in establish().)
  enum class Owner { Connecting, Awaiting };
  Atom name;
  State state = State::Pending;
  Owner owner = Owner::Connecting;
  std::uint64_t attempt = 0;  // our latest outgoing attempt (0: none)
  std::shared_ptr<net::FrameLink> conn;
  bool conn_ours = false;       // `conn` is our attempt (else the peer's, accepted)
  bool conn_confirmed = false;  // `conn` replaced one the other side said was stale ("alive")
  std::uint64_t flags = 0;
  std::uint32_t creation = 0;
  std::chrono::system_clock::time_point since;  // when it came up
  // The heartbeat hello of a hypha peer on `conn` (NodeOptions::detect): its detect time, and
  // whether it has heard ours (then it ticks fast enough for our detect).
  bool hypha = false, heard_ours = false;
  std::chrono::milliseconds peer_detect{0};

  // Simultaneous connects (establish() has the rule). `replacing`: our attempt that told the peer
  // to replace the connection it has. `yielding`: accepted handshakes of the peer's that we told
  // ok_simultaneous (so our own attempt gives way to them); `held`: our attempt, set up while one
  // of those was still in flight, kept in case that one fails.
  std::uint64_t replacing = 0;
  std::uint64_t peer_yields = 0;  // our attempt the peer gave way to (ok_simultaneous)
  int yielding = 0;
  std::shared_ptr<net::FrameLink> held;
  net::PeerInfo held_info;

  std::vector<Bytes> queued;  // frames sent while pending
  std::size_t queued_bytes = 0;
  std::vector<std::function<void(bool)>> waiters;  // connect() calls

  // What must hear noconnection when this peer goes.
  std::set<std::pair<Pid, Pid>> links;                 // (local, remote)
  std::map<Ref, std::pair<Pid, Term>> monitors_out;    // local watcher -> remote target (pid or {Name, Node})
  std::map<Ref, std::pair<Pid, Term>> monitors_in;     // remote watcher -> local target (pid or name)
  std::vector<Pid> node_monitors;                      // monitor_node subscribers
  struct PendingSpawn {
    Pid from;
    SpawnRequestOptions opts;
    bool abandoned = false;
  };
  std::map<Ref, PendingSpawn> spawns_out;  // our spawn requests awaiting a reply
};


struct Node::Impl : RemoteTransport {
  explicit Impl(NodeOptions o);
  ~Impl() override;

  Result<bool, std::string> start();
  Result<bool, std::string> start_simulated();
  void start_runtime();  // the runtime, once name, cookie and creation are known
  void stop();

  // --- connections ---
  // The peer, created with a connection attempt under way when there is none. Call with `mu` held.
  Peer& peer_locked(Atom node);
  // Starts an attempt when there is neither connection nor attempt; `waiter` hears how it ends.
  void ensure_connection(Atom node, std::function<void(bool)> waiter);
  asio::awaitable<void> connect_attempt(Atom node, std::uint64_t attempt);
  asio::awaitable<void> accept_loop();
  // Watches the EPMD registration; when that EPMD goes away (the node serving it embedded
  // stopped or died), serves EPMD here if the port is free and registers again.
  asio::awaitable<void> watch_epmd();
  void serve_epmd_if_free();
  asio::awaitable<void> flush_log_summaries();
  asio::awaitable<void> accept_one(std::shared_ptr<net::Connection> c);
  // The status an incoming handshake gets; `yielded_to` is set to the peer entry whose attempt
  // gives way (ok_simultaneous), whose `yielding` the caller must take back when it ends.
  net::AcceptStatus decide(const net::PeerInfo& peer, std::shared_ptr<Peer>& yielded_to);
  // `attempt`: ours that succeeded, or 0 for an accepted connection; `confirmed`: it replaces one
  // the other side said was stale (or the simulated network made both ends at once). False when
  // the connection was not taken (superseded, lost the tie-break, held, or the node is
  // stopping): it is then just dropped.
  bool establish(Atom node, std::shared_ptr<net::FrameLink> conn, const net::PeerInfo& info, std::uint64_t attempt,
                 bool confirmed, std::shared_ptr<net::Connection> accepted = nullptr);
  // Whether a new connection replaces what `p` has (see establish()).
  bool new_connection_wins(const Peer& p, bool ours, bool confirmed) const;
  // An accepted handshake we had yielded to ended: the held attempt of ours goes up if it was
  // the last, or the pending peer fails if nothing is left to come.
  void yield_ended(const std::shared_ptr<Peer>& peer, bool accepted_up);
  std::shared_ptr<net::FrameLink> tcp_link(asio::ip::tcp::socket sock);
  // Gives up a pending peer if `owner` (and for Connecting, `attempt`) still owns it.
  void fail_attempt(Atom node, Peer::Owner owner, std::uint64_t attempt, const std::string& reason);
  void connection_lost(Atom node, const std::shared_ptr<net::FrameLink>& conn, const std::string& reason);
  // Signals everything that depended on a peer that is gone.
  void peer_gone(const std::shared_ptr<Peer>& peer);

  // --- outgoing ---
  // What sending to a node needs, taken under one lock: its flags (ours until the handshake tells)
  // and its connection when up. Creates the peer, connecting, when there is none.
  struct Route {
    std::uint64_t flags;
    std::shared_ptr<net::FrameLink> conn;
    bool stopped;
  };
  Route route_to(Atom node);
  Pid sender_of(const Pid* from) const;
  // Frames a control message (and payload) the way the peer accepts it; sends it now, or queues
  // it while the connection is being set up.
  void send_control(Atom node, const Term& ctrl, const Term* payload);
  void send_control(Atom node, const Route& r, const Term& ctrl, const Term* payload);
  void send_frame(Atom node, const Route& r, Bytes frame);
  static Term send_op(const Pid* from, const Pid& to, const Route& r);
  // Runs f(peer) under the lock if `node` has a peer entry.
  template <class F>
  void with_peer(Atom node, F&& f) {
    std::lock_guard lock(mu);
    auto it = peers.find(node);
    if (it != peers.end()) f(*it->second);
  }

  // RemoteTransport
  void send(const Pid* from, const Pid& to, const Term& msg) override;
  void send_each(const Pid* from, std::span<const Pid> to, const Term& msg) override;
  void send_name(const Pid* from, Atom name, Atom node, const Term& msg) override;
  void send_alias(const Pid* from, const Ref& alias, const Term& msg) override;
  void link(const Pid& from, const Pid& to) override;
  void unlink(const Pid& from, const Pid& to) override;
  void exit(const Pid& from, const Pid& to, const Term& reason, bool linked) override;
  void monitor(const Pid& from, const Term& target, Atom node, const Ref& ref) override;
  void demonitor(const Pid& from, const Term& target, Atom node, const Ref& ref) override;
  void monitor_exit(const Pid& from, const Term& watched, const Pid& watcher, const Ref& ref,
                    const Term& reason) override;
  void spawn_request(const Pid& from, const Pid& group_leader, Atom node, const Ref& req, Atom mod, Atom fun,
                     const Term& args, const SpawnRequestOptions& opts) override;
  bool spawn_abandon(const Pid& from, const Ref& req) override;

  // --- incoming ---
  void dispatch(Atom node, std::span<const std::uint8_t> packet, Inbound& in);
  void handle_control(Atom node, const Term& ctrl, const Term* payload);
  // The heartbeat hello {hypha_heartbeat, DetectMs, HeardYours} (NodeOptions::detect).
  void send_hello(Atom node, bool heard_yours);
  bool handle_hello(Atom node, const Term& ctrl, const Term* payload, Inbound& in);
  // How soon this node declares a silent peer down (the tick time unless the heartbeat is on).
  std::chrono::milliseconds detect_time(const Peer& p) const;
  void serve_spawn_request(Atom node, const Term& ctrl, const Term* payload);
  void spawn_reply(Atom node, const Term& ctrl);

  // A warn line (rate-limited) when peers' atoms near the table's limit for them.
  void warn_if_atoms_low();
  void notify_nodes(Atom node, bool up);
  void log_event(int level, std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> f);

  NodeOptions opts;
  Atom self_name;
  std::string alive, host;
  std::string cookie;
  std::uint32_t creation_ = 0;
  std::uint16_t epmd = 4369;
  net::HandshakeConfig hs;

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  // The I/O thread runs the io_context while the node starts; then the runtime's idle workers
  // take it over through `poller` (see process/io_poller.hpp) and the thread ends.
  struct AsioPoller final : IoPoller {
    explicit AsioPoller(asio::io_context& c) : io(c) {}
    void poll() override { run_one_guarded(true); }
    void wait() override { run_one_guarded(false); }
    // Runs handlers; one that throws is logged and the loop goes on (no exception leaves it:
    // each connection's own handlers close just that connection first).
    void run_one_guarded(bool poll_only) {
      try {
        poll_only ? io.poll() : io.run_one();
      } catch (const std::exception& e) {
        log::event(log::Level::Error, "", "io_handler_failed", {{"error", e.what()}});
      }
    }
    void interrupt() override { asio::post(io, [] {}); }
    void batch_begin(bool process_run) override { net::DistConnection::cork(process_run); }
    void batch_end() override { net::DistConnection::uncork(); }
    asio::io_context& io;
  };
  AsioPoller poller{io};
  std::atomic<bool> io_thread_stop{false};
  bool workers_poll = false;
  std::thread io_thread;
  std::unique_ptr<net::EpmdServer> epmd_server;  // I/O handlers only, once started
  std::atomic<bool> serving_epmd{false};
  std::atomic<bool> stopping{false};
  net::EpmdRegistration registration;
  asio::ip::tcp::acceptor acceptor{io};
  std::optional<net::Listener> listener;
  std::uint16_t listen_port = 0;

  std::unique_ptr<Runtime> rt;
  RuntimeInbound inbound() const { return RuntimeInbound(*rt); }  // the runtime's node-facing side

  std::mutex mu;
  std::unordered_map<Atom, std::shared_ptr<Peer>> peers;
  std::uint64_t next_attempt = 1;
  std::uint64_t next_unlink_id = 1;
  std::vector<Pid> node_subscribers;
  bool stopped = false;
};

}  // namespace hypha
