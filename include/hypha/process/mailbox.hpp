// Mailbox: a pid for code that is not a process (main, tests, callbacks of other libraries).
// Its receive blocks the calling thread, with an optional timeout. It always traps exits: exit
// signals, even kill, arrive as {'EXIT', From, Reason} messages, since a thread cannot be killed.
//
// A Mailbox belongs to one thread at a time. Its pid dies when it is destroyed, with reason
// normal, like a process that returns. One that outlives its Runtime (a node stopped first) is
// inert: receive gives nothing (receive() without a timeout throws std::logic_error), sends go
// nowhere, destroying it is safe.
#pragma once

#include <chrono>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>

#include "hypha/term/term.hpp"

namespace hypha {

namespace detail {
struct ProcessCore;
}
class Runtime;

class Mailbox {
 public:
  Mailbox(Mailbox&& o) noexcept;
  Mailbox& operator=(Mailbox&& o) noexcept;
  ~Mailbox();

  Pid pid() const noexcept;

  // Blocks until a message (matching `pred`) arrives; nullopt on timeout.
  Term receive();
  std::optional<Term> receive(std::chrono::milliseconds timeout);
  std::optional<Term> receive(const std::function<bool(const Term&)>& pred,
                              std::chrono::milliseconds timeout);

  void send(const Pid& to, Term msg);
  void link(const Pid& other);
  Ref monitor(const Pid& target);
  bool demonitor(const Ref& ref, bool flush = false);
  std::size_t queue_length() const;

 private:
  friend class Runtime;
  Mailbox(Runtime* rt, detail::ProcessCore* core, std::shared_ptr<std::atomic<bool>> alive) noexcept
      : rt_(rt), core_(core), alive_(std::move(alive)) {}
  bool runtime_alive() const noexcept { return core_ && alive_->load(std::memory_order_acquire); }
  Runtime* rt_;
  detail::ProcessCore* core_;  // this Mailbox holds a reference on it
  std::shared_ptr<std::atomic<bool>> alive_;
};

}  // namespace hypha
