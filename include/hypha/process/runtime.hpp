// Runtime: the process runtime of one node. It owns the worker threads that run processes
// (default: one per core), the process table, registered names, and timers.
//
//   hypha::Runtime rt;                                  // nonode@nohost, one worker per core
//   hypha::Pid echo = rt.spawn([](hypha::Process& self) -> hypha::Task<> { ... });
//   hypha::Mailbox me = rt.mailbox();                   // receive from plain threads (main, tests)
//   rt.send(echo, hypha::Term::tuple({me.pid(), "hello"_atom}));
//   auto reply = me.receive(std::chrono::seconds(1));
//
// Scheduling: a process made runnable by a message is queued on the sender's worker, next in
// line (a ping-pong pair stays on one thread, as on the BEAM); idle workers steal. Sending never
// blocks. Messages between processes of this runtime are passed by reference, never copied or
// encoded. Everything addressed to another node goes to the RemoteTransport, if one is set (the
// node layer plugs it in through RuntimeInbound, inbound.hpp).
//
// Thread-safety: every member may be called from any thread. Destroying the runtime stops the
// workers and destroys the processes that are still alive (without exit signals).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "hypha/base/clock.hpp"
#include "hypha/process/mailbox.hpp"
#include "hypha/process/process.hpp"

namespace hypha {

struct RuntimeOptions {
  Atom node = atoms::nonode_nohost();
  std::uint32_t creation = 0;
  unsigned threads = 0;  // 0: one per core
  // How long one idle worker spins before it sleeps: a reply that comes within it is taken
  // without a thread wake-up (lower latency), at the cost of CPU the other threads could use
  // (on few cores, lower throughput under load). Zero: never spin.
  std::chrono::microseconds idle_spin{40};
  // Where timers (send_after, receive timeouts) read the time; null: the steady clock. With a
  // ManualClock (base/clock.hpp) time moves only when a test moves it, and the runtime counts its
  // runnable processes so that a harness can wait for it to go quiet (RuntimeInbound::quiet()).
  std::shared_ptr<Clock> clock;
};

struct SpawnOptions {
  bool trap_exit = false;  // start with trap_exit set (no window in which an exit kills it)
  // For spawn requests from other nodes (spawn_request, erpc): a link to this pid and a monitor by
  // (watcher, ref), both in place before the process can run, then `before_start(pid)` (which
  // sends the reply, so it precedes anything the new process does).
  std::optional<Pid> link;
  std::optional<std::pair<Pid, Ref>> monitored_by;
  std::function<void(const Pid&)> before_start;
};

// What runs Module:Function(Args) when a process is spawned by name: spawn requests from other
// nodes (Erlang's spawn/4, erpc, rpc) and Runtime::spawn(mod, fun, args). The otp layer installs
// one that serves its exports; without one every such process exits with
// {undef, [{Mod, Fun, Args, []}]}, as Erlang's do for a missing function.
using SpawnHandler = std::function<ProcessBody(Atom mod, Atom fun, const Term& args)>;

enum class ProcessStatus { Runnable, Running, Waiting, Exiting };

struct ProcessInfo {
  ProcessStatus status;
  std::size_t message_queue_len;
  std::optional<Atom> registered_name;
  std::vector<Pid> links;
  std::size_t monitors;      // monitors this process holds
  std::size_t monitored_by;  // monitors on this process
  bool trap_exit;
  // Bytes the runtime holds for the process (its control block, link/monitor tables at their
  // capacity, queued envelopes), as process_info(P, memory) without the terms themselves.
  std::size_t memory;
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions opts = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Atom node() const noexcept;
  std::uint32_t creation() const noexcept;
  bool is_local(const Pid& p) const noexcept;

  Pid spawn(ProcessBody body, const SpawnOptions& opts = {});
  // Spawns Mod:Fun(Args) through the spawn handler (`args` a proper list).
  Pid spawn(Atom mod, Atom fun, Term args, const SpawnOptions& opts = {});
  void set_spawn_handler(SpawnHandler handler);
  // The group leader named in spawn requests to other nodes (their processes send io requests
  // there). Unset: the requesting process itself.
  void set_group_leader(const Pid& pid);
  std::optional<Pid> group_leader() const;
  Mailbox mailbox();

  // Sends from outside any process (no sender). Local names: false when not registered.
  void send(const Pid& to, Term msg);
  bool send(Atom name, Term msg);
  void send(Atom name, Atom node, Term msg);
  void send(const Ref& alias, Term msg);  // dropped when the alias is not active, as in OTP
  // One message to each of `to` (local or not, in that order per receiver): what goes to other
  // nodes is encoded once, then framed for each of them.
  void send_each(std::span<const Pid> to, const Term& msg);
  // exit/2 from outside any process.
  void exit(const Pid& target, Term reason);

  bool register_name(Atom name, const Pid& pid);
  bool unregister_name(Atom name);
  std::optional<Pid> whereis(Atom name) const;
  std::vector<Atom> registered() const;

  Ref make_ref();
  TimerRef send_after(std::chrono::milliseconds delay, const Pid& to, Term msg);
  TimerRef send_after(std::chrono::milliseconds delay, Atom name, Term msg);
  bool cancel_timer(TimerRef t);  // false if it already fired or was cancelled

  bool alive(const Pid& p) const;
  std::optional<ProcessInfo> process_info(const Pid& p) const;
  std::size_t process_count() const noexcept;
  // Every local process (and Mailbox) alive now, in creation order: erlang:processes().
  std::vector<Pid> processes() const;
  unsigned threads() const noexcept;
  const std::shared_ptr<Clock>& clock() const noexcept;  // the one its timers read

  struct Impl;

 private:
  friend class Mailbox;
  friend class RuntimeInbound;  // the node-facing side (inbound.hpp)
  std::unique_ptr<Impl> impl_;
};

}  // namespace hypha
