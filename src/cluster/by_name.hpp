// ByName (private to the cluster library): the shared state of a named service (a pg scope's
// table, a pubsub's subscriptions) by runtime and name, so that functions called from any
// thread (pg::get_members, pubsub::broadcast) reach it without a message to its process.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "hypha/process/runtime.hpp"

namespace hypha::cluster::detail {

template <class T>
class ByName {
 public:
  void put(const Runtime& rt, Atom name, std::shared_ptr<T> state) {
    std::lock_guard lock(mu_);
    map_[{&rt, name}] = std::move(state);
  }
  std::shared_ptr<T> find(const Runtime& rt, Atom name) const {
    std::lock_guard lock(mu_);
    auto it = map_.find({&rt, name});
    return it == map_.end() ? nullptr : it->second;
  }
  // Removes the entry if it is still `state` (a restarted service may have put its own).
  void remove(const Runtime& rt, Atom name, const std::shared_ptr<T>& state) {
    std::lock_guard lock(mu_);
    auto it = map_.find({&rt, name});
    if (it != map_.end() && it->second == state) map_.erase(it);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<const Runtime*, Atom>, std::shared_ptr<T>> map_;
};

}  // namespace hypha::cluster::detail
