// Process: what a running hypha process sees of itself. Every process body receives one:
//
//   rt.spawn([](hypha::Process& self) -> hypha::Task<> {
//     for (;;) {
//       hypha::Term msg = co_await self.receive();
//       ...
//     }
//   });
//
// Processes are lightweight (a few hundred bytes plus their coroutine frames), run on the
// runtime's worker threads one at a time each, and share nothing: they talk by messages. A
// receive suspends the process, never the worker thread.
//
// Receive is Erlang's selective receive: receive(pred) takes the first message in the mailbox
// for which pred is true and leaves the others in order; receive(pred, timeout) gives nullopt
// when nothing matched in time. While one receive waits, each new message is tested once, not
// the whole mailbox again.
//
// A Process reference is valid only inside its own body, on its own thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <coroutine>
#include <functional>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hypha/process/remote.hpp"
#include "hypha/process/task.hpp"
#include "hypha/term/term.hpp"

namespace hypha {

class Runtime;
class Process;

namespace detail {
struct ProcessCore;

// A non-owning reference to a callable bool(const Term&); nullptr matches everything.
class MatchRef {
 public:
  MatchRef() = default;
  template <class F>
  explicit MatchRef(F& f) noexcept
      : obj_(&f), call_([](void* o, const Term& t) { return static_cast<bool>((*static_cast<F*>(o))(t)); }) {}
  bool operator()(const Term& t) const { return !call_ || call_(obj_, t); }

 private:
  void* obj_ = nullptr;
  bool (*call_)(void*, const Term&) = nullptr;
};

void begin_wait(ProcessCore* p, std::coroutine_handle<> h, MatchRef match, std::int64_t timeout_ms);
std::optional<Term> take_received(ProcessCore* p);
}  // namespace detail

// Thrown to end the current process with a reason: `throw hypha::Exit(reason)` or
// self.exit(reason). Any other exception that leaves a process body ends it with the reason
// {exception, <<"what()">>}.
class Exit {
 public:
  explicit Exit(Term reason) : reason_(std::move(reason)) {}
  const Term& reason() const noexcept { return reason_; }

 private:
  Term reason_;
};

// Reasons and tags Erlang code expects.
namespace atoms {
Atom normal();
Atom kill();
Atom killed();
Atom noproc();
Atom noconnection();
Atom EXIT();   // 'EXIT'
Atom DOWN();   // 'DOWN'
Atom process();
}  // namespace atoms

// One timeout spread over several receives (a multicall, awaiting many tasks): left() is what
// remains for the next receive, zero once it has passed; a timeout of milliseconds::max() never
// passes.
class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds timeout)
      : never_(timeout == std::chrono::milliseconds::max()),
        at_(never_ ? std::chrono::steady_clock::time_point::max() : std::chrono::steady_clock::now() + timeout) {}
  std::chrono::milliseconds left() const {
    if (never_) return std::chrono::milliseconds::max();
    const auto rest = std::chrono::ceil<std::chrono::milliseconds>(at_ - std::chrono::steady_clock::now());
    return std::max(rest, std::chrono::milliseconds(0));
  }

 private:
  bool never_;
  std::chrono::steady_clock::time_point at_;
};

// A timer started with send_after; cancel it with Runtime::cancel_timer.
struct TimerRef {
  std::uint64_t id = 0;
};

// The outcome of receive(timeout): the message, or nullopt when the time ran out.
template <class Pred, bool kTimed>
class ReceiveAwaiter {
 public:
  ReceiveAwaiter(detail::ProcessCore* p, Pred pred, std::int64_t timeout_ms)
      : p_(p), pred_(std::move(pred)), timeout_ms_(timeout_ms) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { detail::begin_wait(p_, h, match(), timeout_ms_); }
  auto await_resume() {
    if constexpr (kTimed) {
      return detail::take_received(p_);
    } else {
      return std::move(*detail::take_received(p_));
    }
  }

 private:
  detail::MatchRef match() {
    if constexpr (std::is_same_v<Pred, std::nullptr_t>) return {};
    else return detail::MatchRef(pred_);
  }
  detail::ProcessCore* p_;
  Pred pred_;
  std::int64_t timeout_ms_;
};

using ProcessBody = std::function<Task<>(Process&)>;

class Process {
 public:
  explicit Process(detail::ProcessCore* core) noexcept : core_(core) {}

  Pid pid() const noexcept;
  Runtime& runtime() const noexcept;

  // Messages. Sending never blocks. To a name not registered: false (Erlang raises badarg).
  void send(const Pid& to, Term msg);
  bool send(Atom name, Term msg);
  void send(Atom name, Atom node, Term msg);

  auto receive() { return ReceiveAwaiter<std::nullptr_t, false>(core_, nullptr, -1); }
  // A timeout of milliseconds::max() waits forever (the result is then never nullopt).
  auto receive(std::chrono::milliseconds timeout) {
    return ReceiveAwaiter<std::nullptr_t, true>(core_, nullptr, timeout_ms(timeout));
  }
  template <class Pred>
    requires std::predicate<Pred&, const Term&>
  auto receive(Pred pred) {
    return ReceiveAwaiter<Pred, false>(core_, std::move(pred), -1);
  }
  template <class Pred>
    requires std::predicate<Pred&, const Term&>
  auto receive(Pred pred, std::chrono::milliseconds timeout) {
    return ReceiveAwaiter<Pred, true>(core_, std::move(pred), timeout_ms(timeout));
  }
  // Suspends for `d` (a receive that matches nothing).
  auto sleep(std::chrono::milliseconds d) {
    return receive([](const Term&) { return false; }, d);
  }

  // Links, monitors and exit signals, with Erlang's semantics.
  void link(const Pid& other);
  void unlink(const Pid& other);
  Ref monitor(const Pid& target);
  Ref monitor(Atom name, Atom node);       // a registered name; DOWN names {Name, Node}
  bool demonitor(const Ref& ref, bool flush = false);
  // A monitor whose reference is also an alias of this process, deactivated when the monitor
  // ends (demonitor or DOWN): OTP's monitor(process, T, [{alias, demonitor}]), which gen_server
  // calls use so that a late reply is dropped instead of landing in the mailbox.
  Ref monitor_alias(const Pid& target);
  Ref monitor_alias(Atom name, Atom node);
  bool trap_exit(bool on);                 // returns the previous setting
  // Gives back what the process keeps for reuse: its link, monitor and alias tables shrink to
  // what they hold (and go entirely when empty), as erlang:hibernate/3 shrinks a process to its
  // live data after a burst. The process goes on with its next receive.
  void hibernate();
  bool trapping_exits() const noexcept;
  [[noreturn]] void exit(Term reason);     // ends this process
  // The reason this process exits with when its body returns (instead of normal): the same end
  // as exit(reason) without the cost of an exception, for processes that end with a result.
  void exit_on_return(Term reason);
  void exit(const Pid& target, Term reason);  // exit/2: sends an exit signal

  Pid spawn(ProcessBody body);
  // Erlang's spawn_request(Node, Mod, Fun, Args, Opts): returns the request id at once; the
  // outcome arrives as {spawn_reply, ReqId, ok, Pid} or {spawn_reply, ReqId, error, Reason}
  // (as opts.reply says), and with opts.monitor a DOWN tagged ReqId when the process ends.
  Ref spawn_request(Atom node, Atom mod, Atom fun, Term args, const SpawnRequestOptions& opts = {});
  // spawn_request_abandon: true when the request was still waiting for its reply, which will
  // then not be delivered (nor its monitor or link set up here).
  bool spawn_request_abandon(const Ref& req);
  Pid spawn_link(ProcessBody body);
  std::pair<Pid, Ref> spawn_monitor(ProcessBody body);

  // Aliases (OTP 24): a reference that works as an address of this process until unaliased or
  // the process ends. Messages to it arrive like any other; Erlang nodes send to them too.
  Ref alias();
  bool unalias(const Ref& alias);
  void send(const Ref& alias, Term msg);
  // As Runtime::send_each, from this process.
  void send_each(std::span<const Pid> to, const Term& msg);

  bool register_name(Atom name);
  TimerRef send_after(std::chrono::milliseconds delay, const Pid& to, Term msg);
  Ref make_ref();

 private:
  static std::int64_t timeout_ms(std::chrono::milliseconds t) noexcept {
    return t == std::chrono::milliseconds::max() ? -1 : std::max<std::int64_t>(t.count(), 0);
  }
  detail::ProcessCore* core_;
};

}  // namespace hypha
