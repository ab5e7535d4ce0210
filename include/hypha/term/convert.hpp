// Conversions between terms and C++ values.
//
//   Term t = hypha::to_term(std::map<std::string, int>{{"a", 1}});   // #{<<"a">> => 1}
//   auto v = hypha::from_term<std::vector<int>>(t);                  // Result: value or error
//
// Built in: integers (range-checked), double (also from integers), bool (true/false), std::string
// (a binary; from_term also accepts a charlist), std::string_view (to_term only), Atom, Term,
// std::vector, std::map / std::unordered_map (maps), std::pair / std::tuple (tuples),
// std::optional (the atom undefined when empty; from_term also accepts nil).
//
// User structs: one customization point. Either list the fields, which become an atom-keyed map
// (#{x => 1, y => 2}, the shape of an Elixir struct without __struct__):
//
//   struct Point {
//     int x; int y;
//     static constexpr auto hypha_fields = hypha::fields(hypha::field("x", &Point::x),
//                                                        hypha::field("y", &Point::y));
//   };
//
// or specialize hypha::TermConverter<T> with to_term(const T&) and from_term(const Term&).
//
// A failed conversion returns a ConversionError that says what was expected, what was found,
// and where in a nested value: "expected integer, found <<"x">> (at element 2 of tuple)".
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hypha/term/result.hpp"
#include "hypha/term/term.hpp"

namespace hypha {

struct ConversionError {
  std::string expected;
  std::string found;  // the term, printed and shortened
  std::string where;  // path into a nested value; empty at the top
  std::string message() const;
};

// Builds an error for `t` (shortens the printed term).
ConversionError conversion_error(std::string expected, const Term& t);
// Adds an outer step to the error's path ("element 2 of tuple", "key a of map").
ConversionError nest(ConversionError e, std::string step);

template <class T>
using Converted = Result<T, ConversionError>;

template <class T, class Enable = void>
struct TermConverter;  // specialize: static Term to_term(const T&); static Converted<T> from_term(const Term&)

template <class T>
Term to_term(const T& v) {
  return TermConverter<std::decay_t<const T>>::to_term(v);
}

template <class T>
Converted<T> from_term(const Term& t) {
  return TermConverter<T>::from_term(t);
}

// --- fields(): the customization point for structs ------------------------------------------

template <class S, class M>
struct Field {
  const char* name;
  M S::*member;
};
template <class S, class M>
constexpr Field<S, M> field(const char* name, M S::*member) {
  return {name, member};
}
template <class... Fs>
constexpr std::tuple<Fs...> fields(Fs... fs) {
  return {fs...};
}

// --- built-in conversions --------------------------------------------------------------------

template <>
struct TermConverter<Term> {
  static Term to_term(const Term& t) { return t; }
  static Converted<Term> from_term(const Term& t) { return t; }
};

template <>
struct TermConverter<Atom> {
  static Term to_term(Atom a) { return Term(a); }
  static Converted<Atom> from_term(const Term& t) {
    if (!t.is_atom()) return unexpected(conversion_error("atom", t));
    return t.atom_value();
  }
};

template <>
struct TermConverter<Pid> {
  static Term to_term(const Pid& p) { return Term(p); }
  static Converted<Pid> from_term(const Term& t) {
    if (!t.is_pid()) return unexpected(conversion_error("pid", t));
    return t.pid();
  }
};

template <>
struct TermConverter<Ref> {
  static Term to_term(const Ref& r) { return Term(r); }
  static Converted<Ref> from_term(const Term& t) {
    if (!t.is_ref()) return unexpected(conversion_error("reference", t));
    return t.ref();
  }
};

template <>
struct TermConverter<bool> {
  static Term to_term(bool b) { return Term(b); }
  static Converted<bool> from_term(const Term& t) {
    if (t.is_atom(atoms::true_())) return true;
    if (t.is_atom(atoms::false_())) return false;
    return unexpected(conversion_error("boolean (true or false)", t));
  }
};

template <class I>
struct TermConverter<I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>> {
  static Term to_term(I v) { return Term(v); }
  static Converted<I> from_term(const Term& t) {
    if (!t.is_integer()) return unexpected(conversion_error(range(), t));
    if (t.is_small_integer()) {
      const std::int64_t v = t.small_integer();
      if constexpr (std::is_signed_v<I>) {
        if (v >= static_cast<std::int64_t>(std::numeric_limits<I>::min()) &&
            v <= static_cast<std::int64_t>(std::numeric_limits<I>::max()))
          return static_cast<I>(v);
      } else {
        if (v >= 0 && static_cast<std::uint64_t>(v) <= std::numeric_limits<I>::max()) return static_cast<I>(v);
      }
    } else if constexpr (std::is_same_v<I, std::uint64_t> || std::is_same_v<I, unsigned long long> ||
                         std::is_same_v<I, unsigned long>) {
      if (auto u = t.big_integer().to_uint64()) return static_cast<I>(*u);
    }
    return unexpected(conversion_error(range(), t));
  }
  static std::string range() {
    return "integer in " + std::to_string(+std::numeric_limits<I>::min()) + ".." +
           std::to_string(+std::numeric_limits<I>::max());
  }
};

template <>
struct TermConverter<double> {
  static Term to_term(double d) { return Term(d); }
  static Converted<double> from_term(const Term& t) {
    if (t.is_float()) return t.float_value();
    if (t.is_small_integer()) return static_cast<double>(t.small_integer());
    if (t.is_integer()) {
      const double d = t.big_integer().to_double();
      if (d != std::numeric_limits<double>::infinity() && d != -std::numeric_limits<double>::infinity()) return d;
    }
    return unexpected(conversion_error("number", t));
  }
};

template <>
struct TermConverter<std::string> {
  static Term to_term(const std::string& s) { return Term::binary(std::string_view(s)); }
  static Converted<std::string> from_term(const Term& t);  // binary, or a charlist as UTF-8
};

template <>
struct TermConverter<std::string_view> {
  static Term to_term(std::string_view s) { return Term::binary(s); }
};

template <std::size_t N>
struct TermConverter<char[N]> {
  static Term to_term(const char (&s)[N]) { return Term::binary(std::string_view(s)); }
};

template <>
struct TermConverter<const char*> {
  static Term to_term(const char* s) { return Term::binary(std::string_view(s)); }
};

template <class T>
struct TermConverter<std::optional<T>> {
  static Term to_term(const std::optional<T>& v) {
    return v ? hypha::to_term(*v) : Term(atoms::undefined());
  }
  static Converted<std::optional<T>> from_term(const Term& t) {
    static const Atom nil("nil");
    if (t.is_atom(atoms::undefined()) || t.is_atom(nil)) return std::optional<T>();
    auto r = hypha::from_term<T>(t);
    if (!r) return unexpected(std::move(r).error());
    return std::optional<T>(std::move(*r));
  }
};

template <class T, class A>
struct TermConverter<std::vector<T, A>> {
  static Term to_term(const std::vector<T, A>& v) {
    std::vector<Term> elems;
    elems.reserve(v.size());
    for (const auto& e : v) elems.push_back(hypha::to_term(e));
    return Term::list(std::move(elems));
  }
  static Converted<std::vector<T, A>> from_term(const Term& t) {
    if (!t.is_proper_list()) return unexpected(conversion_error("proper list", t));
    std::vector<T, A> out;
    out.reserve(t.list_elements().size());
    std::size_t i = 0;
    for (const auto& e : t.list_elements()) {
      auto r = hypha::from_term<T>(e);
      if (!r) return unexpected(nest(std::move(r).error(), "element " + std::to_string(i + 1) + " of list"));
      out.push_back(std::move(*r));
      ++i;
    }
    return out;
  }
};

namespace detail {
template <class M>
Term map_to_term(const M& m) {
  std::vector<MapEntry> entries;
  entries.reserve(m.size());
  for (const auto& [k, v] : m) entries.emplace_back(hypha::to_term(k), hypha::to_term(v));
  return Term::map(std::move(entries));
}
template <class M>
Converted<M> map_from_term(const Term& t) {
  if (!t.is_map()) return unexpected(conversion_error("map", t));
  M out;
  for (const auto& [k, v] : t.map_entries()) {
    auto kr = hypha::from_term<typename M::key_type>(k);
    if (!kr) return unexpected(nest(std::move(kr).error(), "a key of map"));
    auto vr = hypha::from_term<typename M::mapped_type>(v);
    if (!vr) return unexpected(nest(std::move(vr).error(), "value of key " + k.to_string() + " of map"));
    out.emplace(std::move(*kr), std::move(*vr));
  }
  return out;
}
}  // namespace detail

template <class K, class V, class C, class A>
struct TermConverter<std::map<K, V, C, A>> {
  static Term to_term(const std::map<K, V, C, A>& m) { return detail::map_to_term(m); }
  static Converted<std::map<K, V, C, A>> from_term(const Term& t) {
    return detail::map_from_term<std::map<K, V, C, A>>(t);
  }
};

template <class K, class V, class H, class E, class A>
struct TermConverter<std::unordered_map<K, V, H, E, A>> {
  static Term to_term(const std::unordered_map<K, V, H, E, A>& m) { return detail::map_to_term(m); }
  static Converted<std::unordered_map<K, V, H, E, A>> from_term(const Term& t) {
    return detail::map_from_term<std::unordered_map<K, V, H, E, A>>(t);
  }
};

template <class... Ts>
struct TermConverter<std::tuple<Ts...>> {
  using Tup = std::tuple<Ts...>;
  static Term to_term(const Tup& v) {
    return std::apply([](const auto&... e) { return Term::tuple({hypha::to_term(e)...}); }, v);
  }
  static Converted<Tup> from_term(const Term& t) {
    if (!t.is_tuple() || t.tuple_size() != sizeof...(Ts))
      return unexpected(conversion_error("tuple of " + std::to_string(sizeof...(Ts)) + " elements", t));
    return convert(t, std::index_sequence_for<Ts...>{});
  }

 private:
  template <std::size_t... I>
  static Converted<Tup> convert(const Term& t, std::index_sequence<I...>) {
    std::optional<ConversionError> err;
    auto one = [&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
      using E = std::tuple_element_t<K, Tup>;
      auto r = hypha::from_term<E>(t[K]);
      if (!r) {
        if (!err) err = nest(std::move(r).error(), "element " + std::to_string(K + 1) + " of tuple");
        return std::optional<E>();
      }
      return std::optional<E>(std::move(*r));
    };
    std::tuple<std::optional<Ts>...> parts{one(std::integral_constant<std::size_t, I>{})...};
    if (err) return unexpected(std::move(*err));
    return Tup(std::move(*std::get<I>(parts))...);
  }
};

template <class A, class B>
struct TermConverter<std::pair<A, B>> {
  static Term to_term(const std::pair<A, B>& p) { return Term::tuple({hypha::to_term(p.first), hypha::to_term(p.second)}); }
  static Converted<std::pair<A, B>> from_term(const Term& t) {
    auto r = hypha::from_term<std::tuple<A, B>>(t);
    if (!r) return unexpected(std::move(r).error());
    return std::pair<A, B>(std::move(std::get<0>(*r)), std::move(std::get<1>(*r)));
  }
};

// Structs that list their fields with hypha_fields.
template <class S>
struct TermConverter<S, std::void_t<decltype(S::hypha_fields)>> {
  static Term to_term(const S& s) {
    std::vector<MapEntry> entries;
    std::apply([&](const auto&... f) { (entries.emplace_back(Term::atom(f.name), hypha::to_term(s.*(f.member))), ...); },
               S::hypha_fields);
    return Term::map(std::move(entries));
  }
  static Converted<S> from_term(const Term& t) {
    if (!t.is_map()) return unexpected(conversion_error("map with the fields of a struct", t));
    S out{};
    std::optional<ConversionError> err;
    std::apply(
        [&](const auto&... f) {
          auto one = [&](const auto& fd) {
            if (err) return;
            const Term* v = t.map_find(Term::atom(fd.name));
            if (!v) {
              err = conversion_error(std::string("map with key ") + fd.name, t);
              return;
            }
            using M = std::decay_t<decltype(out.*(fd.member))>;
            auto r = hypha::from_term<M>(*v);
            if (!r) err = nest(std::move(r).error(), std::string("field ") + fd.name);
            else out.*(fd.member) = std::move(*r);
          };
          (one(f), ...);
        },
        S::hypha_fields);
    if (err) return unexpected(std::move(*err));
    return out;
  }
};

}  // namespace hypha
