// Result<T, E>: the value of an operation that can fail in an expected way (a malformed frame, a
// failed conversion, a timeout), or the error that says why. Exceptions are kept for programmer
// errors; expected failures are values (docs: ../shared/docs/architecture.md, "Errors").
//
// A small stand-in for C++23 std::expected, which g++ 12 in C++20 mode does not provide.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace hypha {

template <class E>
struct Unexpected {
  E error;
};

// Wraps an error so that it can be returned where a Result is expected:
//   return hypha::unexpected(DecodeError{offset, "truncated"});
template <class E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
  return {std::forward<E>(e)};
}

// Thrown by Result::value() on an error: reading a value that is not there is a programmer error.
class BadResultAccess : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

template <class T, class E>
class [[nodiscard]] Result {
 public:
  // A default error, for generic code that needs default construction (asio's co_spawn does).
  Result() : v_(std::in_place_index<1>) {}
  Result(const T& v) : v_(std::in_place_index<0>, v) {}
  Result(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}
  template <class G>
  Result(Unexpected<G> e) : v_(std::in_place_index<1>, std::move(e.error)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return ok() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }

  const E& error() const& {
    if (ok()) throw BadResultAccess("Result::error() called on a value");
    return std::get<1>(v_);
  }
  E&& error() && {
    if (ok()) throw BadResultAccess("Result::error() called on a value");
    return std::get<1>(std::move(v_));
  }

 private:
  void check() const {
    if (!ok()) throw BadResultAccess("Result::value() called on an error");
  }
  std::variant<T, E> v_;
};

}  // namespace hypha
