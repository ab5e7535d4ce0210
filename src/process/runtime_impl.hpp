// Runtime::Impl: the process table, names, scheduler and timers (private to the process library).
#pragma once

#include <array>
#include <map>
#include <memory>
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "core.hpp"
#include "scheduler.hpp"
#include "timers.hpp"

namespace hypha {

struct Runtime::Impl {
  Impl(Runtime* owner, const RuntimeOptions& opts);
  ~Impl();
  // False once the runtime is going away: a Mailbox that outlives it then does nothing.
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);

  // --- process table ---
  detail::ProcessCore* acquire(const Pid& pid) const;  // +1 ref, or nullptr when gone
  static void release(detail::ProcessCore* p);
  detail::ProcessCore* create(bool blocking);
  void remove(detail::ProcessCore* p);

  // --- delivery ---
  void push(detail::ProcessCore* p, detail::Envelope* e);
  void wake(detail::ProcessCore* p);
  bool make_runnable(detail::ProcessCore* p);
  // Into the process's inbox; true when it became runnable (the caller schedules it).
  bool enqueue(detail::ProcessCore* p, detail::Envelope* e);
  void send(const Pid* from, const Pid& to, Term msg);
  void send_each(const Pid* from, std::span<const Pid> to, const Term& msg);
  bool send_name(const Pid* from, Atom name, Term msg);
  void send_exit(const Pid& from, const Pid& to, Term reason, bool linked);
  void send_down(const Pid& watcher, const Ref& ref, const Term& watched, const Term& reason);

  // --- the life of a process ---
  void run(detail::ProcessCore* p);
  void drain(detail::ProcessCore* p);
  static void append_message(detail::ProcessCore* p, detail::Envelope* e);
  void exit_signal(detail::ProcessCore* p, const Pid& from, Term reason, bool linked);
  bool try_match(detail::ProcessCore* p);
  void terminate(detail::ProcessCore* p, Term reason);

  // --- links and monitors, from a local process ---
  void link(detail::ProcessCore* self, const Pid& other);
  void unlink(detail::ProcessCore* self, const Pid& other);
  Ref monitor(detail::ProcessCore* self, const Term& target, Atom node, bool alias = false);
  // Deactivates `ref` if it is an alias of p (call with p->lock held).
  void drop_alias_locked(detail::ProcessCore* p, const Ref& ref);
  bool demonitor(detail::ProcessCore* self, const Ref& ref, bool flush);
  void drop_monitor(const Pid& watcher, const Ref& ref, const Term& target);
  std::optional<Pid> resolve(const Term& target) const;
  bool add_watcher(const Pid& pid, detail::Monitor m);
  void erase_watcher(const Pid& pid, const Ref& ref);
  detail::ProcessCore* prepare(ProcessBody body, bool trap_exit);
  Pid spawn(ProcessBody body, const SpawnOptions& opts, detail::ProcessCore* link_with = nullptr);

  Ref make_ref();
  bool is_local(const Pid& p) const noexcept { return p.node == node && p.creation == creation; }

  Runtime* owner;
  Atom node;
  std::uint32_t creation;
  std::atomic<RemoteTransport*> remote{nullptr};

  static constexpr std::size_t kShards = 64;
  struct Shard {
    mutable detail::SpinLock lock;
    std::unordered_map<std::uint64_t, detail::ProcessCore*> procs;
  };
  mutable std::array<Shard, kShards> shards;
  std::atomic<std::uint64_t> next_pid{1};
  std::atomic<std::size_t> count{0};

  mutable std::shared_mutex names_mu;
  std::unordered_map<Atom, Pid> names;

  mutable std::mutex aliases_mu;
  std::map<Ref, Pid> aliases;
  bool send_alias(const Pid* from, const Ref& alias, Term msg);

  mutable std::mutex spawn_mu;  // the spawn handler and group leader
  std::shared_ptr<const SpawnHandler> spawn_handler;
  std::optional<Pid> group_leader;
  ProcessBody body_for(Atom mod, Atom fun, const Term& args) const;

  std::atomic<std::uint64_t> next_ref{1};
  std::uint32_t ref_salt;

  detail::Timers timers;
  detail::Scheduler sched;  // last: its threads stop first
};

inline std::uint64_t pid_key(const Pid& p) { return (std::uint64_t{p.serial} << 32) | p.id; }

}  // namespace hypha
