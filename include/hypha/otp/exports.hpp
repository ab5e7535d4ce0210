// Exports: C++ functions callable by module and function name, the module-function-arguments
// form every remote call uses (rpc:call and erpc from Erlang/Elixir, hypha's rpc, remote tasks).
// A C++ lambda runs only on the node that created it, as in Erlang, where remote calls should
// name a function rather than ship a closure.
//
//   auto exports = std::make_shared<hypha::Exports>();
//   exports->add("math", "add", [](std::int64_t a, std::int64_t b) { return a + b; });
//   exports->add("kv", "get", [](hypha::Process& self, std::string bucket) -> hypha::Task<hypha::Term> {
//     co_return co_await lookup(self, bucket);   // a coroutine may receive, call and await
//   });
//
// Arguments are converted with from_term<T> (a Term parameter takes anything), results with
// to_term. A function is Mod:Fun/Arity, as in Erlang: math:add/2 and math:add/3 are different.
//
// Failures follow Erlang's exception classes, so callers on BEAM see the shapes they know:
// - no such function: error undef, stack [{Mod, Fun, Args, []}];
// - an argument that does not convert: error badarg, stack [{Mod, Fun, Args,
//   [{error_info, #{cause => <<"argument 2: expected integer, found foo">>}}]}];
// - throw hypha::Error(reason) / hypha::Throw(value) / hypha::Exit(reason): error / throw / exit;
// - any other C++ exception: error {exception, <<"what()">>}.
#pragma once

#include <functional>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "hypha/process/process.hpp"
#include "hypha/term/convert.hpp"

namespace hypha {

// erlang:error(Reason): `cause` (optional) explains it in the stack frame's error_info.
class Error {
 public:
  explicit Error(Term reason, std::string cause = {}) : reason_(std::move(reason)), cause_(std::move(cause)) {}
  const Term& reason() const noexcept { return reason_; }
  const std::string& cause() const noexcept { return cause_; }

 private:
  Term reason_;
  std::string cause_;
};

// erlang:throw(Value).
class Throw {
 public:
  explicit Throw(Term value) : value_(std::move(value)) {}
  const Term& value() const noexcept { return value_; }

 private:
  Term value_;
};

// How a call ended, in Erlang's terms: class return/error/throw/exit, the value or reason, and
// for errors the stack ([{Mod, Fun, ArgsOrArity, Location}]).
struct Outcome {
  enum class Class : std::uint8_t { Return, Error, Throw, Exit } cls = Class::Return;
  Term value;
  Term stack;
  std::string cause;  // an Error's explanation (error_info), when it gave one
  bool ok() const noexcept { return cls == Class::Return; }
};

using ExportFn = std::function<Task<Term>(Process& self, std::span<const Term> args)>;

namespace detail {

template <class R, class... A>
struct FnSig {
  using Ret = R;
  using Args = std::tuple<A...>;
};
template <class T>
struct FnTraits : FnTraits<decltype(&T::operator())> {};
template <class C, class R, class... A>
struct FnTraits<R (C::*)(A...) const> : FnSig<R, A...> {};
template <class C, class R, class... A>
struct FnTraits<R (C::*)(A...)> : FnSig<R, A...> {};
template <class R, class... A>
struct FnTraits<R (*)(A...)> : FnSig<R, A...> {};

// Converts args[I] to the parameter types, or throws Error(badarg) naming the argument.
template <class P>
std::decay_t<P> export_arg(const Term& t, std::size_t index) {
  auto v = from_term<std::decay_t<P>>(t);
  if (!v) throw Error(Term(Atom("badarg")), "argument " + std::to_string(index + 1) + ": " + v.error().message());
  return std::move(*v);
}

template <class R>
Term export_result(R&& r) {
  if constexpr (std::is_same_v<std::decay_t<R>, Term>) return std::forward<R>(r);
  else return to_term(r);
}

// Converts the arguments (left to right, so the first bad one is named) and calls f.
template <class F, class Params, bool kTakesProcess, std::size_t... J>
decltype(auto) invoke_export(F& f, Process& self, std::span<const Term> args, std::index_sequence<J...>) {
  constexpr std::size_t kOffset = kTakesProcess ? 1 : 0;
  (void)args;  // unused for a function of no arguments
  (void)self;
  std::tuple<std::decay_t<std::tuple_element_t<J + kOffset, Params>>...> converted{
      export_arg<std::tuple_element_t<J + kOffset, Params>>(args[J], J)...};
  if constexpr (kTakesProcess) return f(self, std::move(std::get<J>(converted))...);
  else return f(std::move(std::get<J>(converted))...);
}

template <class F, class Params, bool kTakesProcess, std::size_t N>
ExportFn make_export(F f) {
  return [f = std::move(f)](Process& self, std::span<const Term> args) mutable -> Task<Term> {
    using Ret = typename FnTraits<F>::Ret;
    constexpr auto seq = std::make_index_sequence<N>();
    if constexpr (IsTask<Ret>::value) {
      if constexpr (std::is_void_v<typename IsTask<Ret>::Value>) {
        co_await invoke_export<F, Params, kTakesProcess>(f, self, args, seq);
        co_return Term(Atom("ok"));
      } else {
        co_return export_result(co_await invoke_export<F, Params, kTakesProcess>(f, self, args, seq));
      }
    } else if constexpr (std::is_void_v<Ret>) {
      invoke_export<F, Params, kTakesProcess>(f, self, args, seq);
      co_return Term(Atom("ok"));
    } else {
      co_return export_result(invoke_export<F, Params, kTakesProcess>(f, self, args, seq));
    }
  };
}

}  // namespace detail

class Exports {
 public:
  // Registers Mod:Fun/N for a callable taking N converted arguments, optionally preceded by
  // `Process&` (the process the call runs in). It may return a value, void (the atom ok), or a
  // Task of either. Replaces an earlier export of the same Mod:Fun/N.
  template <class F>
  void add(std::string_view mod, std::string_view fun, F f) {
    using Params = typename detail::FnTraits<F>::Args;
    constexpr std::size_t n = std::tuple_size_v<Params>;
    constexpr bool takes_process = [] {
      if constexpr (n > 0) return std::is_same_v<std::tuple_element_t<0, Params>, Process&>;
      else return false;
    }();
    constexpr std::size_t arity = takes_process ? n - 1 : n;
    add_raw(Atom(mod), Atom(fun), arity, detail::make_export<F, Params, takes_process, arity>(std::move(f)));
  }
  // The untyped form: `fn` gets the arguments as terms (exactly `arity` of them).
  void add_raw(Atom mod, Atom fun, std::size_t arity, ExportFn fn);
  bool remove(Atom mod, Atom fun, std::size_t arity);
  bool exported(Atom mod, Atom fun, std::size_t arity) const;
  // Every export as {Mod, Fun, Arity}, sorted.
  std::vector<std::tuple<Atom, Atom, std::size_t>> list() const;

  // Runs Mod:Fun(Args) (`args` a proper list) in `self` and says how it ended, as Erlang's
  // try apply(M, F, A) catch Class:Reason:Stack would.
  Task<Outcome> apply(Process& self, Atom mod, Atom fun, Term args) const;

 private:
  struct Key {
    Atom mod, fun;
    std::size_t arity;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return std::hash<Atom>()(k.mod) * 31 + std::hash<Atom>()(k.fun) * 7 + k.arity;
    }
  };
  std::shared_ptr<const ExportFn> find(Atom mod, Atom fun, std::size_t arity) const;
  mutable std::shared_mutex mu_;
  std::unordered_map<Key, std::shared_ptr<const ExportFn>, KeyHash> fns_;
};

// Awaits `t` and says how it ended: Return with its value, or the class and reason of what it
// threw (hypha::Error, Throw, Exit; another C++ exception is error {exception, <<"what()">>}).
// The stack is left empty.
Task<Outcome> outcome_of(Task<Term> t);

// The value of a Return; otherwise throws what was caught, with its class (Error, Throw, Exit),
// so an outcome passes through a function that calls another (erlang:apply/3, a router).
Term value_or_rethrow(const Outcome& o);

// The exit reason of a process whose body ended with `o` (Erlang's: {Reason, Stack} for an
// error, {{nocatch, Value}, Stack} for a throw, the reason itself for an exit).
Term exit_reason_of(const Outcome& o);

}  // namespace hypha
