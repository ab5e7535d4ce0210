// gen_server: OTP's client-server behaviour, wire-compatible with Erlang's and Elixir's, so that
// `GenServer.call({:stack, :"cpp@127.0.0.1"}, :pop)` on an Elixir node reaches a C++ server and a
// C++ client calls an Elixir GenServer.
//
//   struct Stack : hypha::GenServer {
//     std::vector<hypha::Term> items;
//     hypha::Task<hypha::Action> handle_call(hypha::Process&, const hypha::Term& req, const hypha::From&) override {
//       if (req.is_atom("pop"_a)) { ... co_return top; }                  // a Term is a reply
//       co_return hypha::Action::stop("bad_call"_a, "error"_a);            // reply, then stop
//     }
//   };
//   auto pid = hypha::gen_server::start(rt, std::make_unique<Stack>(), {.name = "stack"_a});
//   auto top = hypha::gen_server::call(rt, "stack"_a, "pop"_a);           // Result<Term, Term>
//
// Callbacks are coroutines, so a server may itself call, receive and await. A callback runs in the
// server's process, one message at a time: the object needs no locks. A deferred reply keeps the
// From and answers later with gen_server::reply(). Messages are OTP's: {'$gen_call', {Pid, Tag},
// Request} answered with {Tag, Reply} (to the caller's alias when Tag is [alias | Ref]),
// {'$gen_cast', Msg}, anything else is handle_info.
//
// A failed call gives the reason gen_server:call exits with: {Reason, {gen_server, call,
// [Server, Request, Timeout]}} where Reason is noproc (no such server), {nodedown, Node} (the
// connection was lost), timeout, or the server's own exit reason. It never hangs past the timeout.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <variant>

#include "hypha/otp/via.hpp"
#include "hypha/process/gen.hpp"
#include "hypha/process/runtime.hpp"
#include "hypha/term/result.hpp"

namespace hypha {

// What a callback decides: reply (handle_call), no reply (deferred, or a cast/info), stop.
class Action {
 public:
  Action() = default;  // no reply
  template <class T>
    requires std::constructible_from<Term, T>
  Action(T&& reply) : reply_(Term(std::forward<T>(reply))) {}  // NOLINT: a value is a reply
  static Action noreply() { return {}; }
  static Action reply(Term r) { return Action(std::move(r)); }
  static Action stop(Term reason) {
    Action a;
    a.stop_ = std::move(reason);
    return a;
  }
  static Action stop(Term reason, Term reply) {
    Action a(std::move(reply));
    a.stop_ = std::move(reason);
    return a;
  }
  // OTP's Timeout in {reply, R, S, Timeout} / {noreply, S, Timeout}: when no message comes
  // within `t`, handle_info gets the atom timeout.
  Action&& with_timeout(std::chrono::milliseconds t) && {
    timeout_ = t;
    return std::move(*this);
  }
  // OTP's {continue, Arg}: handle_continue(Arg) runs next, before any message.
  Action&& with_continue(Term arg) && {
    continue_ = std::move(arg);
    return std::move(*this);
  }
  // OTP's hibernate in {reply, R, S, hibernate} / {noreply, S, hibernate}: before waiting for
  // the next message the server calls on_hibernate (drop what can be rebuilt) and the process
  // gives back what it keeps for reuse (Process::hibernate).
  Action&& with_hibernate() && {
    hibernate_ = true;
    return std::move(*this);
  }
  const std::optional<Term>& reply_value() const noexcept { return reply_; }
  bool hibernate() const noexcept { return hibernate_; }
  const std::optional<Term>& stop_reason() const noexcept { return stop_; }
  const std::optional<std::chrono::milliseconds>& timeout() const noexcept { return timeout_; }
  const std::optional<Term>& continue_arg() const noexcept { return continue_; }

 private:
  std::optional<Term> reply_;
  std::optional<Term> stop_;
  std::optional<std::chrono::milliseconds> timeout_;
  std::optional<Term> continue_;
  bool hibernate_ = false;
};

namespace gen_server {
// Thrown by init: OTP's `ignore`. The server does not start (its process ends normal), start()
// returns the error `ignore`, and a supervisor keeps the child's place without a process.
struct Ignore {};
}  // namespace gen_server

class GenServer {
 public:
  virtual ~GenServer() = default;
  // Runs before start() returns. Throw (hypha::Exit(reason), or any exception) to refuse to start:
  // start() then returns the reason; throw gen_server::Ignore for OTP's `ignore`.
  virtual Task<> init(Process& self);
  // Default: stop with {bad_call, Request}, as a server without the clause would crash.
  virtual Task<Action> handle_call(Process& self, const Term& request, const From& from);
  virtual Task<Action> handle_cast(Process& self, const Term& msg);  // default: ignore
  virtual Task<Action> handle_info(Process& self, const Term& msg);  // default: ignore
  // After an action made with with_continue(arg). Default: stop with {bad_continue, Arg}.
  virtual Task<Action> handle_continue(Process& self, const Term& arg);
  // An action asked to hibernate: release what the server can rebuild (caches, spare capacity),
  // as a hibernating BEAM process keeps only its live data. Default: nothing.
  virtual void on_hibernate(Process& self);
  // The server is stopping with `reason` (a stop action, an exception from a callback, or its
  // parent's exit while it traps exits). Not called when the process is killed.
  virtual Task<> terminate(Process& self, const Term& reason);

 protected:
  // Called from init: the server starts as after action `a`. with_continue(arg) is OTP's
  // {ok, State, {continue, Arg}} (handle_continue runs before any message, after start() has
  // returned); with_timeout(t) is {ok, State, Timeout}. Other parts of `a` are ignored.
  void after_init(Action a) { after_init_ = std::move(a); }

 private:
  friend struct GenServerAccess;
  Action after_init_;
};

// A server to call: a pid, a name registered on this node, {Name, Node}, or a name of a name
// service ({via, Module, Name}: otp/via.hpp), looked up at each call.
class ServerRef {
 public:
  ServerRef(const Pid& pid) : v_(pid) {}                      // NOLINT
  ServerRef(Atom name) : v_(name) {}                          // NOLINT
  ServerRef(Atom name, Atom node) : v_(std::make_pair(name, node)) {}
  ServerRef(ViaName via) : v_(std::move(via)) {}              // NOLINT
  // As OTP names it in exit reasons: the pid, Name, {Name, Node} or {via, Module, Name}.
  Term to_term() const;
  const Pid* pid() const noexcept { return std::get_if<Pid>(&v_); }
  const Atom* name() const noexcept { return std::get_if<Atom>(&v_); }
  const std::pair<Atom, Atom>* remote_name() const noexcept { return std::get_if<std::pair<Atom, Atom>>(&v_); }
  const ViaName* via() const noexcept { return std::get_if<ViaName>(&v_); }

 private:
  std::variant<Pid, Atom, std::pair<Atom, Atom>, ViaName> v_;
};

namespace gen_server {

// normal, shutdown and {shutdown, _}: reasons that end a server (or a supervisor's transient
// child) without an error report, as in OTP.
bool is_clean_stop(const Term& reason);

inline constexpr std::chrono::milliseconds infinity = std::chrono::milliseconds::max();
inline constexpr std::chrono::milliseconds default_timeout = std::chrono::seconds(5);

struct StartOptions {
  std::optional<Atom> name;        // register locally; taken: {already_started, Pid}
  std::optional<ViaName> via;      // register with a name service (otp/via.hpp); taken: the same
  bool link = false;               // link to the starting process (only from a process)
  bool trap_exit = false;          // start trapping exits (the parent's exit then stops it cleanly)
  std::chrono::milliseconds timeout = infinity;  // for init
};

// Spawns the server, runs init and returns its pid, or the reason it did not start.
Task<Result<Pid, Term>> start(Process& self, std::unique_ptr<GenServer> server, StartOptions opts = {});
Result<Pid, Term> start(Runtime& rt, std::unique_ptr<GenServer> server, StartOptions opts = {});  // blocking

// gen_server:call: the reply, or the exit reason OTP's call would end the caller with.
Task<Result<Term, Term>> call(Process& self, ServerRef server, Term request,
                              std::chrono::milliseconds timeout = default_timeout);
Result<Term, Term> call(Runtime& rt, const ServerRef& server, Term request,
                        std::chrono::milliseconds timeout = default_timeout);  // blocking

// gen_server:cast: {'$gen_cast', Msg}; never fails (a missing server loses the message).
void cast(Process& self, const ServerRef& server, Term msg);
void cast(Runtime& rt, const ServerRef& server, Term msg);

// gen_server:send_request / receive_response / check_response: a call whose reply is collected
// later, so a process can have many calls out at once. The reply, or {Reason, ServerRef} with
// Reason noproc, {nodedown, Node}, timeout or the server's exit reason (OTP's {error, {Reason,
// ServerRef}}). After a timeout the request is abandoned: a late reply is dropped.
struct RequestId {
  std::optional<Ref> mref;  // the monitor whose alias the reply comes to; none: no such local server
  ServerRef server;
};
RequestId send_request(Process& self, const ServerRef& server, Term request);
Task<Result<Term, Term>> receive_response(Process& self, RequestId id, std::chrono::milliseconds timeout = infinity);
// For a process that receives by hand: the outcome if `msg` is the reply (or the server's DOWN)
// for `id`, nullopt if it is some other message.
std::optional<Result<Term, Term>> check_response(Process& self, const Term& msg, const RequestId& id);

// gen_server:multi_call: `request` to the server registered as `name` on each node, all at once.
// {Replies, BadNodes}: [{Node, Reply}] in the order of `nodes` for the servers that answered
// within `timeout`, and the nodes where there was no such server, the node was down, or no
// answer came in time.
Task<Term> multi_call(Process& self, std::vector<Atom> nodes, Atom name, Term request,
                      std::chrono::milliseconds timeout = infinity);
// gen_server:abcast: `msg` cast to the server registered as `name` on each node.
void abcast(Process& self, const std::vector<Atom>& nodes, Atom name, const Term& msg);

// gen_server:reply / gen:reply: answers a call (to the caller's alias when it has one).
void reply(Process& self, const From& from, Term reply);
void reply(Runtime& rt, const From& from, Term reply);

// Asks the server to stop with `reason` and waits until it has: ok, or the call's error.
Task<Result<Term, Term>> stop(Process& self, ServerRef server, Term reason = Term(Atom("normal")),
                              std::chrono::milliseconds timeout = infinity);

// Parses a {'$gen_call', {Pid, Tag}, Request} message (for processes that serve calls by hand).
std::optional<std::pair<From, Term>> parse_call(const Term& msg);

}  // namespace gen_server
}  // namespace hypha
