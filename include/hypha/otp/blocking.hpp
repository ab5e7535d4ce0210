// block_on: runs a coroutine in a new process and blocks the calling thread until it is done.
// For code outside processes (main, tests, other libraries' threads); never call it from a
// process, which must not block its worker thread.
//
//   hypha::Term v = hypha::block_on(rt, [&](hypha::Process& self) {
//     return hypha::rpc::call(self, node, "erlang"_a, "node"_a, hypha::Term());
//   });
//
// An exception that leaves the coroutine is rethrown here. If the runtime stops first, this
// throws std::future_error (broken_promise) instead of waiting forever.
#pragma once

#include <future>
#include <memory>
#include <type_traits>

#include "hypha/process/runtime.hpp"

namespace hypha {

template <class F>
auto block_on(Runtime& rt, F f) {
  using T = typename detail::IsTask<std::invoke_result_t<F&, Process&>>::Value;
  auto promise = std::make_shared<std::promise<T>>();
  auto result = promise->get_future();
  rt.spawn([promise, f = std::move(f)](Process& self) mutable -> Task<> {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await f(self);
        promise->set_value();
      } else {
        promise->set_value(co_await f(self));
      }
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  return result.get();
}

}  // namespace hypha
