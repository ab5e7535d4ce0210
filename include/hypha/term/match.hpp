// Matching term shapes: Erlang's `{tag, X, Y} = Term`, for C++.
//
//   using namespace hypha::pattern;
//   Pid from; Term tag, request;
//   if (match(m, tuple("$gen_call"_a, tuple(bind(from), bind(tag)), bind(request)))) ...
//
// Patterns:
// - an Atom (or a string literal, made an atom once, when the pattern is built): that atom;
// - `eq(term)`: a term equal to it (=:=); `any`: anything;
// - `bind(x)`: anything x's type converts from (hypha/term/convert.hpp: integers, Atom, Pid, Ref,
//   std::string from a binary, vectors from proper lists, ...), stored in x; `bind(Term&)` takes
//   any term, `bind(const Term*&)` points into the matched term without a copy;
// - `tuple(p...)`: a tuple of exactly that many elements, each matching its pattern;
// - `list(p...)`: a proper list of exactly those elements; `cons(head, tail)`: a non-empty list;
// - `one_of(p...)`: the first alternative that matches;
// - `with(p, pred)`: p, and pred(term) holds (a guard).
// `match(t, p)` says whether t matches p (bindings are made as it goes: after a failed match,
// some may be made and others not); `mismatch(t, p)` says why not, or "" when it matches:
//   expected {'$gen_call', {pid, _}, _}, found {'$gen_call', foo, bar}: element 2: expected {pid, _}, found foo
// A pattern is cheap to build (no allocation but for string literals); build hot ones once.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "hypha/term/convert.hpp"
#include "hypha/term/term.hpp"

namespace hypha::pattern {

namespace detail {
std::string shorten(const Term& t);  // the term printed, cut to a readable length
}

// Every pattern has: bool test(const Term&) const; void shape(std::string&) const (appends its
// Erlang-like form); and std::string why(const Term&) const (why a term does not match, or "").
template <class P>
concept Pattern = requires(const P& p, const Term& t, std::string& out) {
  { p.test(t) } -> std::same_as<bool>;
  p.shape(out);
  { p.why(t) } -> std::same_as<std::string>;
};

template <class P>
std::string shape_of(const P& p) {
  std::string s;
  p.shape(s);
  return s;
}

// The common "expected <shape>, found <term>" line.
template <class P>
std::string expected(const P& p, const Term& t) {
  return "expected " + shape_of(p) + ", found " + detail::shorten(t);
}

struct Any {
  bool test(const Term&) const noexcept { return true; }
  void shape(std::string& out) const { out += '_'; }
  std::string why(const Term&) const { return {}; }
};
inline constexpr Any any{};

struct Lit {
  Term value;
  bool test(const Term& t) const noexcept { return t == value; }
  void shape(std::string& out) const { out += value.to_string(); }
  std::string why(const Term& t) const { return test(t) ? std::string() : expected(*this, t); }
};
inline Lit eq(Term value) { return Lit{std::move(value)}; }

struct AtomLit {
  Atom value;
  bool test(const Term& t) const noexcept { return t.is_atom(value); }
  void shape(std::string& out) const { out += Term(value).to_string(); }
  std::string why(const Term& t) const { return test(t) ? std::string() : expected(*this, t); }
};

// What a pattern argument becomes: atoms and string literals are atom literals.
template <class P>
auto as_pattern(P&& p) {
  using D = std::remove_cvref_t<P>;
  if constexpr (std::is_same_v<D, Atom>)
    return AtomLit{p};
  else if constexpr (std::is_convertible_v<P, std::string_view>)
    return AtomLit{Atom(std::string_view(p))};
  else {
    static_assert(Pattern<D>, "not a pattern: use an Atom, a string literal (an atom), eq(term), any, bind(x), tuple(...), ...");
    return D(std::forward<P>(p));
  }
}
template <class P>
using pattern_t = decltype(as_pattern(std::declval<P>()));

template <class T>
struct Bind {
  T* out;
  bool test(const Term& t) const {
    if constexpr (std::is_same_v<T, Term>) {
      *out = t;
      return true;
    } else if constexpr (std::is_same_v<T, const Term*>) {
      *out = &t;
      return true;
    } else if constexpr (std::is_same_v<T, Pid>) {
      if (!t.is_pid()) return false;
      *out = t.pid();
      return true;
    } else if constexpr (std::is_same_v<T, Ref>) {
      if (!t.is_ref()) return false;
      *out = t.ref();
      return true;
    } else if constexpr (std::is_same_v<T, Atom>) {
      if (!t.is_atom()) return false;
      *out = t.atom_value();
      return true;
    } else {
      auto v = from_term<T>(t);
      if (!v.ok()) return false;
      *out = std::move(*v);
      return true;
    }
  }
  void shape(std::string& out_text) const {
    if constexpr (std::is_same_v<T, Term> || std::is_same_v<T, const Term*>)
      out_text += '_';
    else if constexpr (std::is_same_v<T, Pid>)
      out_text += "pid";
    else if constexpr (std::is_same_v<T, Ref>)
      out_text += "reference";
    else if constexpr (std::is_same_v<T, Atom>)
      out_text += "atom";
    else if constexpr (std::is_integral_v<T>)
      out_text += "integer";
    else if constexpr (std::is_same_v<T, std::string>)
      out_text += "binary";
    else
      out_text += "term";
  }
  std::string why(const Term& t) const {
    if (test(t)) return {};
    if constexpr (requires { from_term<T>(t); }) {
      if constexpr (!std::is_same_v<T, Pid> && !std::is_same_v<T, Ref> && !std::is_same_v<T, Atom>)
        return from_term<T>(t).error().message();
    }
    return expected(*this, t);
  }
};
template <class T>
Bind<T> bind(T& out) {
  return Bind<T>{&out};
}

// The first element of `items` that does not match its pattern in `pats`, as "element N: why".
template <class Tuple, class Items, std::size_t... I>
std::string first_mismatch(const Tuple& pats, const Items& items, std::index_sequence<I...>) {
  std::string w;
  ((w.empty() && !(w = std::get<I>(pats).why(items[I])).empty() ? (void)(w = "element " + std::to_string(I + 1) + ": " + w)
                                                                  : (void)0),
   ...);
  return w;
}

// Appends the patterns' shapes, separated by `sep`.
template <class Tuple>
void shapes(const Tuple& pats, std::string& out, const char* sep) {
  std::apply([&](const auto&... p) {
    std::size_t i = 0;
    ((out += (i++ ? sep : ""), p.shape(out)), ...);
  }, pats);
}

template <class... Ps>
struct TuplePat {
  std::tuple<Ps...> elems;
  bool test(const Term& t) const {
    if (!t.is_tuple() || t.tuple_size() != sizeof...(Ps)) return false;
    return test_at(t, std::index_sequence_for<Ps...>{});
  }
  void shape(std::string& out) const {
    out += '{';
    shapes(elems, out, ", ");
    out += '}';
  }
  std::string why(const Term& t) const {
    if (!t.is_tuple() || t.tuple_size() != sizeof...(Ps)) return expected(*this, t);
    const std::string inner = first_mismatch(elems, t.tuple_elements(), std::index_sequence_for<Ps...>{});
    return inner.empty() ? std::string() : expected(*this, t) + ": " + inner;
  }

 private:
  template <std::size_t... I>
  bool test_at(const Term& t, std::index_sequence<I...>) const {
    return (std::get<I>(elems).test(t[I]) && ...);
  }
};
template <class... Ps>
TuplePat<pattern_t<Ps>...> tuple(Ps&&... ps) {
  return {{as_pattern(std::forward<Ps>(ps))...}};
}

template <class... Ps>
struct ListPat {
  std::tuple<Ps...> elems;
  bool test(const Term& t) const {
    if (!test_shape(t)) return false;
    if constexpr (sizeof...(Ps) == 0) return true;
    else return test_at(t.list_elements(), std::index_sequence_for<Ps...>{});
  }
  void shape(std::string& out) const {
    out += '[';
    shapes(elems, out, ", ");
    out += ']';
  }
  std::string why(const Term& t) const {
    if (!test_shape(t)) return expected(*this, t);
    const std::string inner = first_mismatch(elems, t.list_elements(), std::index_sequence_for<Ps...>{});
    return inner.empty() ? std::string() : expected(*this, t) + ": " + inner;
  }

 private:
  bool test_shape(const Term& t) const {
    if constexpr (sizeof...(Ps) == 0) return t.is_nil();
    else return t.is_list() && t.list_tail().is_nil() && t.list_elements().size() == sizeof...(Ps);
  }
  template <std::size_t... I>
  bool test_at(std::span<const Term> items, std::index_sequence<I...>) const {
    return (std::get<I>(elems).test(items[I]) && ...);
  }
};
template <class... Ps>
ListPat<pattern_t<Ps>...> list(Ps&&... ps) {
  return {{as_pattern(std::forward<Ps>(ps))...}};
}

// [Head | Tail]: Tail is matched against the rest of the list (a list, nil, or an improper tail).
template <class H, class T>
struct ConsPat {
  H head;
  T tail;
  bool test(const Term& t) const {
    if (!t.is_list()) return false;
    if (!head.test(t.list_elements()[0])) return false;
    return tail.test(rest(t));
  }
  void shape(std::string& out) const {
    out += '[';
    head.shape(out);
    out += " | ";
    tail.shape(out);
    out += ']';
  }
  std::string why(const Term& t) const {
    if (!t.is_list()) return expected(*this, t);
    if (auto w = head.why(t.list_elements()[0]); !w.empty()) return expected(*this, t) + ": head: " + w;
    if (auto w = tail.why(rest(t)); !w.empty()) return expected(*this, t) + ": tail: " + w;
    return {};
  }

 private:
  static Term rest(const Term& t) {
    const auto items = t.list_elements();
    if (items.size() == 1) return t.list_tail();
    return Term::list(std::vector<Term>(items.begin() + 1, items.end()), t.list_tail());
  }
};
template <class H, class T>
ConsPat<pattern_t<H>, pattern_t<T>> cons(H&& head, T&& tail) {
  return {as_pattern(std::forward<H>(head)), as_pattern(std::forward<T>(tail))};
}

template <class... Ps>
struct OneOf {
  std::tuple<Ps...> alts;
  bool test(const Term& t) const {
    return std::apply([&](const auto&... p) { return (p.test(t) || ...); }, alts);
  }
  void shape(std::string& out) const { shapes(alts, out, " | "); }
  std::string why(const Term& t) const { return test(t) ? std::string() : expected(*this, t); }
};
template <class... Ps>
OneOf<pattern_t<Ps>...> one_of(Ps&&... ps) {
  return {{as_pattern(std::forward<Ps>(ps))...}};
}

template <class P, class Pred>
struct With {
  P pattern;
  Pred pred;
  bool test(const Term& t) const { return pattern.test(t) && pred(t); }
  void shape(std::string& out) const {
    pattern.shape(out);
    out += " when ...";
  }
  std::string why(const Term& t) const {
    if (auto w = pattern.why(t); !w.empty()) return w;
    return pred(t) ? std::string() : "the guard fails for " + detail::shorten(t);
  }
};
template <class P, class Pred>
With<pattern_t<P>, std::decay_t<Pred>> with(P&& p, Pred&& pred) {
  return {as_pattern(std::forward<P>(p)), std::forward<Pred>(pred)};
}

template <class P>
bool match(const Term& t, const P& p) {
  if constexpr (Pattern<P>) return p.test(t);
  else return as_pattern(p).test(t);
}

template <class P>
std::string mismatch(const Term& t, const P& p) {
  if constexpr (Pattern<P>) return p.why(t);
  else return as_pattern(p).why(t);
}

}  // namespace hypha::pattern

namespace hypha {
using pattern::match;
using pattern::mismatch;
}  // namespace hypha
