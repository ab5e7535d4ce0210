// The inside of a process (private to the process library).
#pragma once

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <mutex>
#include <optional>
#include <vector>

#include "hypha/process/process.hpp"
#include "hypha/process/runtime.hpp"

namespace hypha::detail {

// One item of a mailbox: a message, or a signal the runtime handles for the process.
struct Envelope {
  enum class Type : std::uint8_t {
    Message,  // a = the message
    Exit,     // a = from (pid), b = reason; linked = from a link
    Timeout,  // a = the wait generation it ends
  };
  Envelope* next = nullptr;
  Type type = Type::Message;
  bool linked = false;
  Term a;
  Term b;
};

// Multi-producer inbox: producers push with one CAS; the owner takes everything at once and
// restores arrival order.
class Inbox {
 public:
  // Returns true if the inbox was empty before (the owner may need waking).
  bool push(Envelope* e) noexcept {
    Envelope* head = head_.load(std::memory_order_relaxed);
    do {
      e->next = head;
    } while (!head_.compare_exchange_weak(head, e, std::memory_order_release, std::memory_order_relaxed));
    return head == nullptr;
  }
  // Everything pushed so far, oldest first.
  Envelope* take_all() noexcept {
    Envelope* e = head_.exchange(nullptr, std::memory_order_acquire);
    Envelope* fifo = nullptr;
    while (e) {
      Envelope* n = e->next;
      e->next = fifo;
      fifo = e;
      e = n;
    }
    return fifo;
  }
  bool empty() const noexcept { return head_.load(std::memory_order_acquire) == nullptr; }

 private:
  std::atomic<Envelope*> head_{nullptr};
};

// A tiny lock for the rarely touched parts of a process (links, monitors, liveness).
class SpinLock {
 public:
  void lock() noexcept {
    while (flag_.exchange(true, std::memory_order_acquire))
      while (flag_.load(std::memory_order_relaxed)) {
      }
  }
  bool try_lock() noexcept { return !flag_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

enum class State : std::uint8_t { Runnable, Running, Waiting, Exiting, Dead };

struct Monitor {
  Ref ref;
  Pid watcher;     // who gets the DOWN
  Term watched;    // what the DOWN names: the pid, or {Name, Node}
};

// What most processes never use, allocated on first use to keep idle processes small.
struct Extra {
  std::vector<Pid> links;
  std::vector<Monitor> monitored_by;   // monitors on this process
  std::vector<std::pair<Ref, Term>> monitoring;  // monitors this process holds: ref -> target pid
  std::optional<Atom> name;
  std::vector<Ref> aliases;
  // Blocking mailboxes wait here instead of being scheduled.
  std::mutex mu;
  std::condition_variable cv;
};

struct ProcessCore {
  Runtime::Impl* rt = nullptr;
  std::atomic<std::uint32_t> refs{1};  // the process table holds one
  std::atomic<State> state{State::Runnable};
  bool trap_exit = false;
  bool blocking = false;  // a Mailbox: woken by condition variable, never scheduled
  SpinLock lock;          // guards extra's links/monitors and the Alive -> Exiting transition
  bool alive = true;      // under lock
  Pid pid;
  Process handle{nullptr};  // what the body's `Process& self` refers to

  Inbox inbox;
  std::atomic<std::uint32_t> queued{0};  // messages not yet received (for process_info)

  // Received-but-not-taken messages, in order, and the selective-receive scan position.
  Envelope* msg_head = nullptr;
  Envelope* msg_tail = nullptr;
  Envelope* scan_prev = nullptr;  // last message already tested by the current wait (nullptr: none)

  // The current receive.
  bool waiting = false;
  MatchRef match;
  std::uint32_t wait_gen = 0;
  std::uint64_t wait_timer = 0;
  bool timed_out = false;
  std::optional<Term> received;

  std::coroutine_handle<> resume_point;  // innermost suspended coroutine
  Task<> body_task;                      // the outermost coroutine
  ProcessBody body;                      // keeps the body's captures alive
  std::optional<Term> pending_exit;      // an exit decided while the process could not die yet
  std::optional<Term> return_reason;     // the exit reason when the body returns (else normal)

  Extra* extra = nullptr;
  Extra& ext() {
    if (!extra) extra = new Extra();
    return *extra;
  }

  ~ProcessCore();
};

}  // namespace hypha::detail
