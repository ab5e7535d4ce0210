// The cluster registry's replicated state: see state.hpp.
#include "state.hpp"

#include <algorithm>

namespace hypha::registry::detail {

State::State(Pid self) : self_(self) { origins_[self_]; }

const Entry* State::entry_of(const Pid& origin, const Term& name) const {
  auto o = origins_.find(origin);
  if (o == origins_.end()) return nullptr;
  auto e = o->second.names.find(name);
  return e == o->second.names.end() ? nullptr : &e->second;
}

bool State::older(const Pid& a, const Pid& b, const Term& name) const {
  const Entry& ea = *entry_of(a, name);
  const Entry& eb = *entry_of(b, name);
  if (ea.ts != eb.ts) return ea.ts < eb.ts;
  if (a.node != b.node) return a.node.text() < b.node.text();
  return a < b;
}

const Entry* State::winner(const Term& name) const {
  auto it = holders_.find(name);
  return it == holders_.end() ? nullptr : entry_of(it->second.front(), name);
}

const Pid* State::winner_origin(const Term& name) const {
  auto it = holders_.find(name);
  return it == holders_.end() ? nullptr : &it->second.front();
}

std::vector<Term> State::names_where(const Pid& pid, bool own_only) const {
  std::vector<Term> out;
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return out;
  for (const Term& name : it->second)
    if (const Entry* e = own_only ? own(name) : winner(name); e && e->pid == pid) out.push_back(name);
  return out;
}

std::vector<Term> State::names_of(const Pid& pid) const {
  std::vector<Term> out = names_where(pid, false);
  std::sort(out.begin(), out.end());
  return out;
}

void State::add_holder(const Pid& origin, const Term& name) {
  auto& hs = holders_[name];
  auto pos = std::find_if(hs.begin(), hs.end(), [&](const Pid& h) { return older(origin, h, name); });
  hs.insert(pos, origin);
}

void State::drop_holder(const Pid& origin, const Term& name) {
  auto it = holders_.find(name);
  if (it == holders_.end()) return;
  auto& hs = it->second;
  hs.erase(std::remove(hs.begin(), hs.end(), origin), hs.end());
  if (hs.empty()) holders_.erase(it);
}

void State::set(const Pid& origin, const Term& name, const std::optional<Entry>& e) {
  Origin& o = origins_[origin];
  auto old = o.names.find(name);
  if (old != o.names.end()) {
    drop_holder(origin, name);  // before the entry goes: the order reads it
    auto bp = by_pid_.find(old->second.pid);
    if (bp != by_pid_.end()) {
      // Another holder may have registered the same pid under this name: keep it indexed.
      bool still = false;
      for (const auto& [oid, other] : origins_)
        if (oid != origin) {
          auto x = other.names.find(name);
          still = still || (x != other.names.end() && x->second.pid == old->second.pid);
        }
      if (!still) bp->second.erase(name);
      if (bp->second.empty()) by_pid_.erase(bp);
    }
    o.names.erase(old);
  }
  if (!e) return;
  o.names.emplace(name, *e);
  by_pid_[e->pid].insert(name);
  add_holder(origin, name);
}

void State::check_conflict(const Term& name, std::vector<Conflict>& out) const {
  const Entry* mine = own(name);
  const Pid* w = winner_origin(name);
  if (mine && w && *w != self_) out.push_back({name, mine->pid, entry_of(*w, name)->pid});
}

const Entry* State::own(const Term& name) const { return entry_of(self_, name); }

void State::put_own(const Term& name, Entry e) {
  Origin& o = origins_[self_];
  ++o.counter;
  log_.emplace_back(o.counter, Change{name, e});
  set(self_, name, e);
}

bool State::remove_own(const Term& name) {
  if (!own(name)) return false;
  Origin& o = origins_[self_];
  ++o.counter;
  log_.emplace_back(o.counter, Change{name, std::nullopt});
  set(self_, name, std::nullopt);
  return true;
}

std::vector<std::pair<Term, Entry>> State::own_entries() const {
  const auto& names = origins_.at(self_).names;
  return {names.begin(), names.end()};
}

std::vector<Term> State::own_names_of(const Pid& pid) const { return names_where(pid, true); }

std::optional<std::vector<Change>> State::changes_since(std::uint64_t since) const {
  if (since < log_start_) return std::nullopt;
  std::vector<Change> out;
  for (const auto& [n, c] : log_)
    if (n > since) out.push_back(c);
  return out;
}

void State::truncate_log(std::uint64_t upto) {
  auto it = std::find_if(log_.begin(), log_.end(), [&](const auto& c) { return c.first > upto; });
  log_.erase(log_.begin(), it);
  log_start_ = std::max(log_start_, std::min(upto, counter()));
}

bool State::apply(const Pid& origin, std::uint64_t from, std::uint64_t to, const std::vector<Change>& changes,
                  std::vector<Conflict>& out) {
  if (origin == self_) return false;
  auto it = origins_.find(origin);
  if (it == origins_.end() || it->second.counter != from || to < from) return false;
  for (const Change& c : changes) set(origin, c.name, c.entry);
  origins_[origin].counter = to;
  for (const Change& c : changes) check_conflict(c.name, out);
  return true;
}

void State::replace(const Pid& origin, std::uint64_t counter, const std::vector<std::pair<Term, Entry>>& entries,
                    std::vector<Conflict>& out) {
  if (origin == self_) return;
  forget(origin);
  Origin& o = origins_[origin];
  o.counter = counter;
  for (const auto& [name, e] : entries) set(origin, name, e);
  for (const auto& [name, e] : entries) check_conflict(name, out);
}

void State::forget(const Pid& origin) {
  if (origin == self_) return;
  auto it = origins_.find(origin);
  if (it == origins_.end()) return;
  std::vector<Term> names;
  for (const auto& [name, e] : it->second.names) names.push_back(name);
  for (const Term& name : names) set(origin, name, std::nullopt);
  origins_.erase(origin);
}

std::optional<std::uint64_t> State::version(const Pid& origin) const {
  auto it = origins_.find(origin);
  if (it == origins_.end()) return std::nullopt;
  return it->second.counter;
}

std::vector<Pid> State::origins() const {
  std::vector<Pid> out;
  for (const auto& [o, _] : origins_) out.push_back(o);
  return out;
}

}  // namespace hypha::registry::detail
