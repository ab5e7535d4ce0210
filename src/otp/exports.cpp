#include "hypha/otp/exports.hpp"

#include <algorithm>
#include <mutex>

namespace hypha {

void Exports::add_raw(Atom mod, Atom fun, std::size_t arity, ExportFn fn) {
  auto f = std::make_shared<const ExportFn>(std::move(fn));
  std::unique_lock lock(mu_);
  fns_[Key{mod, fun, arity}] = std::move(f);
}

bool Exports::remove(Atom mod, Atom fun, std::size_t arity) {
  std::unique_lock lock(mu_);
  return fns_.erase(Key{mod, fun, arity}) > 0;
}

bool Exports::exported(Atom mod, Atom fun, std::size_t arity) const { return find(mod, fun, arity) != nullptr; }

std::vector<std::tuple<Atom, Atom, std::size_t>> Exports::list() const {
  std::vector<std::tuple<Atom, Atom, std::size_t>> out;
  {
    std::shared_lock lock(mu_);
    for (const auto& [k, _] : fns_) out.emplace_back(k.mod, k.fun, k.arity);
  }
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
    const auto& [m1, f1, a1] = x;
    const auto& [m2, f2, a2] = y;
    if (m1 != m2) return m1.text() < m2.text();
    if (f1 != f2) return f1.text() < f2.text();
    return a1 < a2;
  });
  return out;
}

std::shared_ptr<const ExportFn> Exports::find(Atom mod, Atom fun, std::size_t arity) const {
  std::shared_lock lock(mu_);
  auto it = fns_.find(Key{mod, fun, arity});
  return it == fns_.end() ? nullptr : it->second;
}

Task<Outcome> Exports::apply(Process& self, Atom mod, Atom fun, Term args) const {
  using C = Outcome::Class;
  // The frame Erlang would show for the failed call; `cause` explains a bad argument.
  const auto stack = [&](const std::string& cause) {
    Term location;
    if (!cause.empty())
      location = Term::list({Term::tuple({Term(Atom("error_info")),
                                          Term::map({{Term(Atom("cause")), Term::binary(cause)}})})});
    return Term::list({Term::tuple({Term(mod), Term(fun), args, location})});
  };
  if (!args.is_proper_list()) co_return Outcome{C::Error, Term(Atom("badarg")), stack("the arguments are not a proper list")};
  const std::vector<Term> argv(args.list_elements().begin(), args.list_elements().end());
  const auto fn = find(mod, fun, argv.size());
  if (!fn) co_return Outcome{C::Error, Term(Atom("undef")), stack({})};
  Outcome out = co_await outcome_of((*fn)(self, argv));
  if (out.cls == C::Error) out.stack = stack(out.cause);
  co_return out;
}

Task<Outcome> outcome_of(Task<Term> t) {
  using C = Outcome::Class;
  Outcome out;
  try {
    out.value = co_await std::move(t);
  } catch (const Error& e) {
    out = Outcome{C::Error, e.reason(), Term()};
    out.cause = e.cause();
  } catch (const Throw& x) {
    out = Outcome{C::Throw, x.value(), Term()};
  } catch (const Exit& x) {
    out = Outcome{C::Exit, x.reason(), Term()};
  } catch (const std::exception& e) {
    out = Outcome{C::Error, Term::tuple({Term(Atom("exception")), Term::binary(std::string_view(e.what()))}), Term()};
  }
  co_return out;
}

Term value_or_rethrow(const Outcome& o) {
  switch (o.cls) {
    case Outcome::Class::Return: return o.value;
    case Outcome::Class::Throw: throw Throw(o.value);
    case Outcome::Class::Exit: throw Exit(o.value);
    case Outcome::Class::Error: break;
  }
  throw Error(o.value, o.cause);
}

Term exit_reason_of(const Outcome& o) {
  switch (o.cls) {
    case Outcome::Class::Return: return Term(Atom("normal"));
    case Outcome::Class::Error: return Term::tuple({o.value, o.stack});
    case Outcome::Class::Throw: return Term::tuple({Term::tuple({Term(Atom("nocatch")), o.value}), o.stack});
    case Outcome::Class::Exit: return o.value;
  }
  return o.value;
}

}  // namespace hypha
