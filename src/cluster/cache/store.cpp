// One node's replica of a cache: see store.hpp.
#include "store.hpp"

#include "hypha/cluster/routing.hpp"
#include "hypha/term/etf.hpp"

namespace hypha::cache::detail {

std::uint64_t key_hash(const Term& key) {
  thread_local std::vector<std::uint8_t> bytes;  // reused: a read allocates nothing here
  bytes.clear();
  etf::encode_append(bytes, key);
  return HashRing::hash(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::uint64_t Store::entry_hash(std::uint64_t kh, const Version& v) {
  const std::string_view o = v.origin.text();
  return HashRing::mix(kh ^ HashRing::mix(v.ts.wall_ms ^ HashRing::mix(v.ts.logical ^ HashRing::hash(o))));
}

Store::Store(std::size_t max_entries, std::uint64_t tombstone_ms)
    : max_entries_(max_entries), tombstone_ms_(tombstone_ms), parts_(kPartitions) {}

const Entry* Store::raw(const Term& key) const {
  const Partition& part = parts_[partition_of(key_hash(key))];
  auto it = part.map.find(key);
  return it == part.map.end() ? nullptr : &it->second.e;
}

const Entry* Store::get(const Term& key, std::uint64_t now_ms, bool touch) {
  return get(key, key_hash(key), now_ms, touch);
}

const Entry* Store::get(const Term& key, std::uint64_t kh, std::uint64_t now_ms, bool touch) {
  Partition& part = parts_[partition_of(kh)];
  auto it = part.map.find(key);
  if (it == part.map.end() || it->second.e.kind != Kind::Live) return nullptr;
  Slot& s = it->second;
  if (s.e.expires_ms != 0 && s.e.expires_ms <= now_ms) return nullptr;  // sweep() removes it
  if (touch) lru_.splice(lru_.begin(), lru_, s.lru);
  return &s.e;
}

void Store::unaccount(std::size_t p, std::uint64_t kh, Slot& s) {
  Partition& part = parts_[p];
  part.digest -= entry_hash(kh, s.e.version);
  if (s.e.kind == Kind::Live) {
    --part.live;
    --live_;
    lru_.erase(s.lru);
  }
}

void Store::account(std::size_t p, std::uint64_t kh, const Term& key, Slot& s, std::uint64_t now_ms) {
  Partition& part = parts_[p];
  part.digest += entry_hash(kh, s.e.version);
  if (s.e.kind == Kind::Live) {
    ++part.live;
    ++live_;
    s.lru = lru_.insert(lru_.begin(), {p, key});  // a write (here or on a replica) is a use
    if (s.e.expires_ms != 0) expiry_.emplace(s.e.expires_ms, key);
  } else {
    s.dead_since = now_ms;
    dead_.emplace_back(now_ms, key);
  }
}

void Store::erase(std::size_t p, std::uint64_t kh, const Term& key) {
  Partition& part = parts_[p];
  auto it = part.map.find(key);
  if (it == part.map.end()) return;
  unaccount(p, kh, it->second);
  part.map.erase(it);
}

bool Store::merge(const Term& key, const Entry& e, std::uint64_t now_ms) {
  const std::uint64_t kh = key_hash(key);
  const std::size_t p = partition_of(kh);
  Partition& part = parts_[p];
  auto it = part.map.find(key);
  if (it != part.map.end() && !(it->second.e.version < e.version)) return false;  // ours is as new or newer
  const bool expired = e.kind == Kind::Live && e.expires_ms != 0 && e.expires_ms <= now_ms;
  const bool old_tombstone = e.kind != Kind::Live && e.version.ts.wall_ms + tombstone_ms_ <= now_ms;
  if (expired || old_tombstone) {
    if (it == part.map.end()) return false;
    erase(p, kh, key);
    return true;
  }
  if (it == part.map.end()) {
    it = part.map.emplace(key, Slot{}).first;
  } else {
    unaccount(p, kh, it->second);
  }
  it->second.e = e;
  if (e.kind != Kind::Live) it->second.e.value = Term();
  account(p, kh, key, it->second, now_ms);
  evict_over_limit(now_ms);
  return true;
}

void Store::evict_over_limit(std::uint64_t now_ms) {
  while (max_entries_ > 0 && live_ > max_entries_ && !lru_.empty()) {
    auto [p, key] = lru_.back();
    const std::uint64_t kh = key_hash(key);
    Slot& s = parts_[p].map.at(key);
    unaccount(p, kh, s);
    s.e.kind = Kind::Evicted;
    s.e.value = Term();
    account(p, kh, key, s, now_ms);
    ++counters_.evictions;
  }
}

std::size_t Store::sweep(std::uint64_t now_ms) {
  std::size_t expired = 0;
  while (!expiry_.empty() && expiry_.top().first <= now_ms) {
    auto [at, key] = expiry_.top();
    expiry_.pop();
    const std::uint64_t kh = key_hash(key);
    const std::size_t p = partition_of(kh);
    auto it = parts_[p].map.find(key);
    if (it == parts_[p].map.end() || it->second.e.kind != Kind::Live || it->second.e.expires_ms != at) continue;
    erase(p, kh, key);
    ++expired;
  }
  counters_.expirations += expired;
  while (!dead_.empty() && dead_.front().first + tombstone_ms_ <= now_ms) {
    auto [since, key] = dead_.front();
    dead_.pop_front();
    const std::uint64_t kh = key_hash(key);
    const std::size_t p = partition_of(kh);
    auto it = parts_[p].map.find(key);
    if (it == parts_[p].map.end() || it->second.e.kind == Kind::Live || it->second.dead_since != since) continue;
    erase(p, kh, key);
  }
  return expired;
}

void Store::drop_partition(std::size_t p) {
  Partition& part = parts_[p];
  for (auto& [key, s] : part.map)
    if (s.e.kind == Kind::Live) {
      lru_.erase(s.lru);
      --live_;
    }
  part.map.clear();
  part.digest = 0;
  part.live = 0;
}

std::uint64_t Store::next_expiry() const { return expiry_.empty() ? 0 : expiry_.top().first; }

}  // namespace hypha::cache::detail
