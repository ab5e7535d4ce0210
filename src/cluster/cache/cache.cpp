// The cluster cache (cluster/cache.hpp): the process of each member (it owns the replica, orders
// the writes it coordinates, replicates them and runs anti-entropy), the API, the rpc built-ins.
// store.hpp has the replica's rules.
//
// Between the cache processes of two members (registered as hypha_cache_<name>; the sender's
// pid second):
//   {hello, From, Mode, Replicas, Ready}      I run this cache (Ready: I hold my part)
//   {ready, From}                             I hold my part now
//   {replicate, From, Id, [E]}                entries a write I coordinate made; answer:
//   {replicated, From, Id}
//   {ae_digests, From, Id, [{P, D}]}          anti-entropy: my digests of the partitions we share
//   {ae_summary, From, Id, [{P, [{K, Wall, Logical, Origin}]}], More}   the versions I hold in those
//                                             that differ (More: more differ than fit)
//   {ae_push, From, [E]}                      entries newer here than there
//   {ae_pull, From, Id, [K]}                  send me these; answer:
//   {ae_entries, From, Id, [E]}
//   {handoff, From, Id, [E]}                  a partition I no longer hold; answer:
//   {handoff_ack, From, Id}
// E: {Key, live, Value, Wall, Logical, Origin, ExpiresMs} | {Key, deleted, nil, Wall, Logical, Origin, 0}.
// Calls from API users (gen_server calls to the owner): {op, Key, Op} and owned_size.
#include "hypha/cluster/cache.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "hypha/base/hlc.hpp"
#include "hypha/base/log.hpp"
#include "hypha/cluster/routing.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/term/match.hpp"
#include "../by_name.hpp"
#include "../wall.hpp"
#include "store.hpp"

namespace hypha::cache {

namespace {

using namespace pattern;
using detail::Entry;
using detail::Kind;
using detail::kPartitions;
using detail::Version;

constexpr std::chrono::milliseconds kSweepInterval{100};
constexpr std::size_t kSummaryBudget = 20'000;  // keys per ae_summary

const Atom& a_ok() { static const Atom a("ok"); return a; }
const Atom& a_error() { static const Atom a("error"); return a; }
const Atom& a_not_found() { static const Atom a("not_found"); return a; }
const Atom& a_infinity() { static const Atom a("infinity"); return a; }
const Atom& a_sweep() { static const Atom a("$hypha_cache_sweep"); return a; }
const Atom& a_ae() { static const Atom a("$hypha_cache_anti_entropy"); return a; }
const Atom& a_join() { static const Atom a("$hypha_cache_join_deadline"); return a; }

Term error(Term reason) { return Term::tuple({Term(a_error()), std::move(reason)}); }
Term ok(Term v) { return Term::tuple({Term(a_ok()), std::move(v)}); }

// Who holds each partition, as the cache process last worked it out (under Table::mu).
struct View {
  std::vector<Atom> ready, all;  // member nodes (this one included when it is one)
  std::array<std::vector<Atom>, kPartitions> pref_ready, pref_all;
};

// The replica and the view, read from any thread; written by the cache process (and reads'
// LRU touches) under the lock.
struct Table {
  Table(const Options& o, Atom self, HybridClock::WallMs w)
      : opts(o), self(self), wall(std::move(w)), store(o.max_entries, static_cast<std::uint64_t>(o.tombstone.count())) {}
  std::mutex mu;
  const Options opts;
  const Atom self;
  const HybridClock::WallMs wall;
  detail::Store store;
  View view;
  bool ready = false;
  // Partitions this node came to hold when the members changed (one left, say) and has not yet
  // compared with a node that held them: reads of those go to the owner meanwhile.
  std::array<bool, kPartitions> syncing{};
  std::atomic<std::uint64_t> hits{0}, misses{0}, writes{0};
};

cluster::detail::ByName<Table>& tables() {
  static cluster::detail::ByName<Table> t;
  return t;
}

bool contains(const std::vector<Atom>& v, Atom a) { return std::find(v.begin(), v.end(), a) != v.end(); }

// The nodes a write of partition p goes to: its holders now, and those it will have when the
// joining members are ready.
std::vector<Atom> write_set(const Table& t, std::size_t p) {
  if (t.opts.mode == Mode::Local) return {t.self};
  std::vector<Atom> out = t.view.pref_ready[p];
  for (Atom n : t.view.pref_all[p])
    if (!contains(out, n)) out.push_back(n);
  return out;
}

// --- terms

Term ttl_term(Ttl ttl) { return ttl ? Term(static_cast<std::int64_t>(ttl->count())) : Term(a_infinity()); }

std::optional<Ttl> ttl_of(const Term& t) {
  if (t.is_atom(a_infinity())) return Ttl{};
  std::int64_t ms = 0;
  if (match(t, bind(ms)) && ms >= 0) return Ttl{std::chrono::milliseconds(ms)};
  return std::nullopt;
}

Term entry_term(const Term& key, const Entry& e) {
  const bool live = e.kind == Kind::Live;
  return Term::tuple({key, Term(Atom(live ? "live" : "deleted")), live ? e.value : Term(Atom("nil")),
                      Term(e.version.ts.wall_ms), Term(e.version.ts.logical), Term(e.version.origin),
                      Term(live ? e.expires_ms : 0)});
}

std::optional<std::pair<Term, Entry>> entry_of(const Term& t) {
  if (!t.is_tuple() || t.tuple_size() != 7) return std::nullopt;
  Entry e;
  std::uint64_t wall = 0, expires = 0;
  std::uint32_t logical = 0;
  Atom origin;
  if (!match(t[3], bind(wall)) || !match(t[4], bind(logical)) || !match(t[5], bind(origin)) ||
      !match(t[6], bind(expires)))
    return std::nullopt;
  if (t[1].is_atom(Atom("live"))) e.kind = Kind::Live, e.value = t[2], e.expires_ms = expires;
  else if (t[1].is_atom(Atom("deleted"))) e.kind = Kind::Deleted;
  else return std::nullopt;
  e.version = Version{HlcTime{wall, logical}, origin};
  return std::pair{t[0], std::move(e)};
}

std::optional<std::vector<std::pair<Term, Entry>>> entries_of(const Term& items) {
  if (!items.is_proper_list()) return std::nullopt;
  std::vector<std::pair<Term, Entry>> out;
  for (const Term& t : items.list_elements()) {
    auto e = entry_of(t);
    if (!e) return std::nullopt;
    out.push_back(std::move(*e));
  }
  return out;
}

Term entries_term(const std::vector<std::pair<Term, Entry>>& entries) {
  std::vector<Term> out;
  out.reserve(entries.size());
  for (const auto& [k, e] : entries) out.push_back(entry_term(k, e));
  return Term::list(std::move(out));
}

class CacheServer final : public GenServer {
 public:
  CacheServer(Node& node, Options opts)
      : node_(node), opts_(opts), name_(process_name(opts.name)), hlc_(cluster::detail::wall_of(node.runtime())) {}

  Task<> init(Process& self) override {
    table_ = std::make_shared<Table>(opts_, node_.name(), cluster::detail::wall_ms_of(self.runtime()));
    rebuild();
    tables().put(self.runtime(), opts_.name, table_);
    self.send_after(kSweepInterval, self.pid(), Term(a_sweep()));
    if (opts_.mode == Mode::Local) {
      become_ready(self);
      co_return;
    }
    node_.monitor_nodes(self.pid());
    for (Atom n : node_.nodes(true)) say_hello(self, n);
    // Nodes that run this cache answer the hellos within a round trip: until then (or until
    // every member that answered has given us our part), this node does not serve its part.
    self.send_after(std::chrono::milliseconds(300), self.pid(), Term(a_join()));
    self.send_after(opts_.anti_entropy, self.pid(), Term(a_ae()));
  }

  Task<> terminate(Process& self, const Term&) override {
    node_.monitor_nodes(self.pid(), false);
    co_await leave(self);
    tables().remove(self.runtime(), opts_.name, table_);
  }

  Task<Action> handle_call(Process& self, const Term& req, const From& from) override {
    const Term* key = nullptr;
    const Term* op = nullptr;
    if (match(req, tuple("op", bind(key), bind(op)))) co_return coordinate(self, *key, *op, from);
    if (req.is_atom(Atom("owned_size"))) co_return Term(static_cast<std::uint64_t>(owned_size()));
    untrusted("unexpected_call", req);
    co_return error(Term(Atom("badarg")));
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    Pid from;
    Ref ref;
    Atom node, mode;
    std::uint64_t id = 0, replicas = 0;
    bool ready = false, more = false;
    const Term* items = nullptr;
    if (match(msg, tuple("hello", bind(from), bind(mode), bind(replicas), bind(ready))))
      hello(self, from, mode, replicas, ready);
    else if (match(msg, tuple("ready", bind(from)))) peer_ready(self, from);
    else if (match(msg, tuple("replicate", bind(from), bind(id), bind(items)))) replicate_in(self, from, id, *items, msg);
    else if (match(msg, tuple("replicated", bind(from), bind(id)))) replicated(self, from, id);
    else if (match(msg, tuple("ae_digests", bind(from), bind(id), bind(items)))) ae_digests(self, from, id, *items, msg);
    else if (match(msg, tuple("ae_summary", bind(from), bind(id), bind(items), bind(more)))) ae_summary(self, from, id, *items, more, msg);
    else if (match(msg, tuple("ae_push", bind(from), bind(items)))) entries_in(from, *items, msg);
    else if (match(msg, tuple("ae_pull", bind(from), bind(id), bind(items)))) ae_pull(self, from, id, *items, msg);
    else if (match(msg, tuple("ae_entries", bind(from), bind(id), bind(items)))) ae_entries(self, from, id, *items, msg);
    else if (match(msg, tuple("handoff", bind(from), bind(id), bind(items)))) handoff_in(self, from, id, *items, msg);
    else if (match(msg, tuple("handoff_ack", bind(from), bind(id)))) handoff_ack(from, id);
    else if (match(msg, tuple("DOWN", bind(ref), "process", bind(from), any))) member_down(self, ref, from);
    else if (match(msg, tuple("nodeup", bind(node)))) say_hello(self, node);
    else if (msg.is_atom(a_sweep())) sweep(self);
    else if (msg.is_atom(a_ae())) anti_entropy_tick(self);
    else if (msg.is_atom(a_join())) join_deadline(self);
    else if (!match(msg, tuple("nodedown", any)))
      untrusted("unexpected_message", msg);
    co_return Action::noreply();
  }

 private:
  struct Member {
    Ref mref;
    bool ready = false;
  };
  // A write waiting for copies: it is answered once `need` other nodes hold it and `must` (the
  // caller's node, when it holds the key) is one of them.
  struct Pending {
    From from;
    Term reply;
    std::size_t partition = 0;
    std::set<Atom> sent, acked;
    std::size_t need = 0;
    std::optional<Atom> must;
    Term item;  // the entry, to send to a new holder if one of `sent` goes
    Clock::time_point since;
  };
  struct Round {
    Pid peer;
    bool initial = false;
    bool more = false;
    Clock::time_point since;
    std::vector<std::size_t> partitions;  // compared in it
  };
  struct Handoff {
    std::size_t partition = 0;
    std::set<Atom> waiting;
    std::uint64_t digest = 0;
    Clock::time_point since;
  };

  std::uint64_t now_ms() const { return table_->wall(); }
  Clock::time_point clock_now(Process& self) const { return self.runtime().clock()->now(); }

  void untrusted(std::string_view what, const Term& msg) {
    log::limited(log::Level::Warn, node_.name().text(), "cache_message_dropped",
                 std::string(opts_.name.text()) + " " + std::string(what),
                 {{"cache", opts_.name.text()}, {"reason", what}, {"message", pattern::detail::shorten(msg)}});
  }

  Term hello_term(Process& self) const {
    return Term::tuple({Term(Atom("hello")), Term(self.pid()), Term(Atom(mode_name(opts_.mode))),
                        Term(static_cast<std::uint64_t>(opts_.replicas)), Term(ready_)});
  }
  void say_hello(Process& self, Atom node) {
    if (node != node_.name()) self.send(name_, node, hello_term(self));
  }

  const Member* member_of(const Pid& pid) const {
    auto it = members_.find(pid);
    return it == members_.end() ? nullptr : &it->second;
  }
  std::optional<Pid> pid_of(Atom node) const {
    for (const auto& [pid, m] : members_)
      if (pid.node == node) return pid;
    return std::nullopt;
  }

  // --- membership and the view

  // Works the view out again from the members; returns the partitions this node holds now and
  // did not before (they need a round of anti-entropy before they serve reads).
  std::vector<std::size_t> rebuild() {
    std::vector<Atom> ready, all{node_.name()};
    if (ready_) ready.push_back(node_.name());
    for (const auto& [pid, m] : members_) {
      all.push_back(pid.node);
      if (m.ready) ready.push_back(pid.node);
    }
    HashRing ring_ready, ring_all;
    for (Atom n : ready) ring_ready.add(n);
    for (Atom n : all) ring_all.add(n);
    auto copies = [&](std::size_t n) {
      return opts_.mode == Mode::Partitioned ? std::min<std::size_t>(std::max(1u, opts_.replicas), n) : n;
    };
    View v;
    for (std::size_t p = 0; p < kPartitions; ++p) {
      const std::string pk = "p" + std::to_string(p);
      if (opts_.mode == Mode::Local) {
        v.pref_ready[p] = v.pref_all[p] = {node_.name()};
        continue;
      }
      v.pref_ready[p] = ring_ready.lookup_n(pk, copies(ready.size()));
      v.pref_all[p] = ring_all.lookup_n(pk, copies(all.size()));
    }
    std::sort(ready.begin(), ready.end());
    std::sort(all.begin(), all.end());
    v.ready = std::move(ready);
    v.all = std::move(all);
    std::vector<std::size_t> gained;
    std::lock_guard lock(table_->mu);
    if (table_->ready && ready_)
      for (std::size_t p = 0; p < kPartitions; ++p)
        if (contains(v.pref_all[p], node_.name()) && !contains(table_->view.pref_all[p], node_.name()) &&
            v.pref_all[p].size() > 1) {
          table_->syncing[p] = true;
          gained.push_back(p);
        }
    table_->view = std::move(v);
    table_->ready = ready_;
    return gained;
  }

  // After rebuild(): the partitions gained are compared with every member now.
  void sync_gained(Process& self, const std::vector<std::size_t>& gained) {
    if (gained.empty()) return;
    for (const auto& [pid, m] : members_) start_round(self, pid, false);
  }

  void hello(Process& self, const Pid& from, Atom mode, std::uint64_t replicas, bool ready) {
    if (from.node == node_.name()) return;
    if (mode != Atom(mode_name(opts_.mode)) || (opts_.mode == Mode::Partitioned && replicas != opts_.replicas)) {
      log::limited(log::Level::Warn, node_.name().text(), "cache_member_refused",
                   std::string(opts_.name.text()) + " " + std::string(from.node.text()),
                   {{"cache", opts_.name.text()}, {"peer", from.node.text()}, {"reason", "another mode or replica count"}});
      return;
    }
    // A node's cache restarted: the old process is gone even if its DOWN has not come yet.
    if (auto old = pid_of(from.node); old && *old != from) forget_member(self, *old);
    const bool joined = !members_.count(from);
    Member& m = members_[from];
    if (joined) {
      m.mref = self.monitor(from);
      self.send(from, hello_term(self));
    }
    m.ready = ready;
    const auto gained = rebuild();
    if (joined) {
      // A new member (or one back after a partition): compare at once, not at the next interval.
      start_round(self, from, !ready_);
      if (!ready_) initial_.insert(from);
    }
    sync_gained(self, gained);
  }

  void peer_ready(Process& self, const Pid& from) {
    auto it = members_.find(from);
    if (it == members_.end()) return untrusted("not_a_member", Term(from));
    it->second.ready = true;
    sync_gained(self, rebuild());
    handoffs(self);
  }

  void forget_member(Process& self, const Pid& pid) {
    auto it = members_.find(pid);
    if (it == members_.end()) return;
    self.demonitor(it->second.mref, true);
    members_.erase(it);
    member_gone(self, pid);
  }

  void member_down(Process& self, const Ref& ref, const Pid& pid) {
    auto it = members_.find(pid);
    if (it == members_.end() || it->second.mref != ref) return;
    members_.erase(it);
    member_gone(self, pid);
  }

  void member_gone(Process& self, const Pid& pid) {
    const auto gained = rebuild();
    initial_.erase(pid);
    std::erase_if(rounds_, [&](const auto& r) { return r.second.peer == pid; });
    std::erase_if(handoffs_, [&](const auto& h) { return h.second.waiting.count(pid.node) > 0; });
    // Writes waiting for that node: it will not answer; their keys' new holders get them instead.
    std::vector<std::uint64_t> done;
    for (auto& [id, w] : pending_) {
      if (!w.sent.erase(pid.node)) {
        if (w.must == pid.node) w.must.reset();
      } else {
        if (w.must == pid.node) w.must.reset();
        std::vector<Atom> ws;
        {
          std::lock_guard lock(table_->mu);
          ws = write_set(*table_, w.partition);
        }
        for (Atom n : ws)
          if (n != node_.name() && !w.sent.count(n) && !w.acked.count(n))
            if (auto to = pid_of(n)) {
              w.sent.insert(n);
              self.send(*to, Term::tuple({Term(Atom("replicate")), Term(self.pid()), Term(id), Term::list({w.item})}));
            }
      }
      if (answerable(w)) done.push_back(id);
    }
    for (std::uint64_t id : done) answer(self, id);
    sync_gained(self, gained);
    maybe_ready(self);
  }

  void join_deadline(Process& self) {
    join_wait_over_ = true;
    maybe_ready(self);
  }

  void maybe_ready(Process& self) {
    if (ready_ || !join_wait_over_ || !initial_.empty()) return;
    become_ready(self);
  }

  void become_ready(Process& self) {
    ready_ = true;
    rebuild();
    log::event(log::Level::Info, node_.name().text(), "cache_ready",
               {{"cache", opts_.name.text()}, {"mode", mode_name(opts_.mode)},
                {"members", std::to_string(members_.size() + 1)}});
    for (const auto& [pid, m] : members_) self.send(pid, Term::tuple({Term(Atom("ready")), Term(self.pid())}));
    handoffs(self);
  }

  // --- writes this node coordinates

  Action coordinate(Process& self, const Term& key, const Term& op, const From& from) {
    const std::uint64_t kh = detail::key_hash(key);
    const std::size_t p = detail::partition_of(kh);
    std::vector<Atom> ws;
    Term reply;
    std::optional<Entry> write;
    {
      std::lock_guard lock(table_->mu);
      ws = write_set(*table_, p);
      if (!ws.empty() && !contains(ws, node_.name())) {
        // The caller's view is behind ours: the key's owner is another node.
        const auto& pr = table_->view.pref_ready[p];
        return Term::tuple({Term(Atom("redirect")), Term(pr.empty() ? ws.front() : pr.front())});
      }
      auto r = apply_op(key, op);
      if (!r) return error(r.error());
      reply = std::move(r->first);
      write = std::move(r->second);
      if (write) table_->store.merge(key, *write, now_ms());
    }
    if (!write) return reply;
    const std::uint64_t id = ++next_id_;
    Pending w{from, std::move(reply), p, {}, {}, 0, std::nullopt, entry_term(key, *write), clock_now(self)};
    const std::size_t copies = std::min<std::size_t>(2, ws.size());
    w.need = copies > 0 ? copies - 1 : 0;
    if (from.pid.node != node_.name() && contains(ws, from.pid.node)) w.must = from.pid.node;
    const Term msg = Term::tuple({Term(Atom("replicate")), Term(self.pid()), Term(id), Term::list({w.item})});
    for (Atom n : ws)
      if (n != node_.name())
        if (auto to = pid_of(n)) {
          w.sent.insert(n);
          self.send(*to, msg);
        }
    if (w.must && !w.sent.count(*w.must)) w.must.reset();  // not a member (yet): nothing to wait for
    if (answerable(w)) return std::move(w.reply);
    pending_.emplace(id, std::move(w));
    return Action::noreply();
  }

  // The reply to `op` on `key` and the entry it writes, if any (under the table's lock).
  Result<std::pair<Term, std::optional<Entry>>, Term> apply_op(const Term& key, const Term& op) {
    using R = std::pair<Term, std::optional<Entry>>;
    const std::uint64_t now = now_ms();
    const Entry* cur = table_->store.get(key, now, false);
    auto live = [&](Term value, std::uint64_t expires) {
      return Entry{std::move(value), Version{hlc_.now(), node_.name()}, expires, Kind::Live};
    };
    auto expiry = [&](Ttl ttl) -> std::uint64_t { return ttl ? now + static_cast<std::uint64_t>(ttl->count()) : 0; };
    const Term* value = nullptr;
    const Term* ttl_t = nullptr;
    std::int64_t by = 0, initial = 0;
    if (op.is_atom(Atom("get"))) return R{cur ? ok(cur->value) : Term(a_not_found()), std::nullopt};
    if (op.is_atom(Atom("has_key"))) return R{Term(cur != nullptr), std::nullopt};
    if (op.is_atom(Atom("ttl"))) {
      if (!cur) return R{Term(a_not_found()), std::nullopt};
      if (cur->expires_ms == 0) return R{Term(a_infinity()), std::nullopt};
      return R{Term(cur->expires_ms - std::min(cur->expires_ms, now)), std::nullopt};
    }
    if (op.is_atom(Atom("delete")) || op.is_atom(Atom("take"))) {
      Term reply = op.is_atom(Atom("delete")) ? Term(a_ok()) : cur ? ok(cur->value) : Term(a_not_found());
      if (op.is_atom(Atom("take")) && !cur) return R{reply, std::nullopt};
      return R{reply, Entry{Term(), Version{hlc_.now(), node_.name()}, 0, Kind::Deleted}};
    }
    if (match(op, tuple("put", bind(value), bind(ttl_t)))) {
      auto ttl = ttl_of(*ttl_t);
      if (!ttl) return unexpected(Term(Atom("bad_ttl")));
      return R{Term(a_ok()), live(*value, expiry(*ttl))};
    }
    if (match(op, tuple("put_new", bind(value), bind(ttl_t)))) {
      auto ttl = ttl_of(*ttl_t);
      if (!ttl) return unexpected(Term(Atom("bad_ttl")));
      if (cur) return R{Term(false), std::nullopt};
      return R{Term(true), live(*value, expiry(*ttl))};
    }
    if (match(op, tuple("replace", bind(value), bind(ttl_t)))) {
      if (!cur) return R{Term(false), std::nullopt};
      if (ttl_t->is_atom(Atom("keep"))) return R{Term(true), live(*value, cur->expires_ms)};
      auto ttl = ttl_of(*ttl_t);
      if (!ttl) return unexpected(Term(Atom("bad_ttl")));
      return R{Term(true), live(*value, expiry(*ttl))};
    }
    if (match(op, tuple("expire", bind(ttl_t)))) {
      auto ttl = ttl_of(*ttl_t);
      if (!ttl) return unexpected(Term(Atom("bad_ttl")));
      if (!cur) return R{Term(false), std::nullopt};
      return R{Term(true), live(cur->value, expiry(*ttl))};
    }
    if (match(op, tuple("incr", bind(by), bind(initial)))) {
      std::int64_t base = initial;
      if (cur && !match(cur->value, bind(base))) return unexpected(Term(Atom("not_an_integer")));
      const std::int64_t next = base + by;
      return R{ok(Term(next)), live(Term(next), cur ? cur->expires_ms : 0)};
    }
    return unexpected(Term::tuple({Term(Atom("bad_operation")), op}));
  }

  static bool answerable(const Pending& w) { return !w.must && (w.acked.size() >= w.need || w.sent.empty()); }

  void answer(Process& self, std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    gen_server::reply(self, it->second.from, std::move(it->second.reply));
    pending_.erase(it);
  }

  void replicated(Process& self, const Pid& from, std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end() || !it->second.sent.erase(from.node)) return;
    Pending& w = it->second;
    w.acked.insert(from.node);
    if (w.must == from.node) w.must.reset();
    if (answerable(w)) answer(self, id);
  }

  // --- entries from other members

  // Merges entries a member sent; false (and logged) when the message is malformed.
  bool merge_in(const Term& items, const Term& msg) {
    auto entries = entries_of(items);
    if (!entries) {
      untrusted("malformed_entries", msg);
      return false;
    }
    // A version too far ahead of our clock (a broken or hostile one) would win every later write
    // of its key: such entries are refused, not merged.
    std::vector<bool> refused(entries->size());
    for (std::size_t i = 0; i < entries->size(); ++i) refused[i] = !hlc_.observe((*entries)[i].second.version.ts);
    if (std::find(refused.begin(), refused.end(), true) != refused.end()) untrusted("version_in_the_future", msg);
    std::lock_guard lock(table_->mu);
    const std::uint64_t now = now_ms();
    for (std::size_t i = 0; i < entries->size(); ++i)
      if (!refused[i]) table_->store.merge((*entries)[i].first, (*entries)[i].second, now);
    return true;
  }

  bool from_member(const Pid& from, const Term& msg) {
    if (members_.count(from)) return true;
    untrusted("not_a_member", msg);
    return false;
  }

  void replicate_in(Process& self, const Pid& from, std::uint64_t id, const Term& items, const Term& msg) {
    if (!from_member(from, msg) || !merge_in(items, msg)) return;
    self.send(from, Term::tuple({Term(Atom("replicated")), Term(self.pid()), Term(id)}));
  }

  void entries_in(const Pid& from, const Term& items, const Term& msg) {
    if (from_member(from, msg)) merge_in(items, msg);
  }

  void handoff_in(Process& self, const Pid& from, std::uint64_t id, const Term& items, const Term& msg) {
    if (!from_member(from, msg) || !merge_in(items, msg)) return;
    self.send(from, Term::tuple({Term(Atom("handoff_ack")), Term(self.pid()), Term(id)}));
  }

  // --- anti-entropy

  // The partitions both this node and `peer` hold (as our view has it).
  std::vector<std::size_t> shared_with(Atom peer) const {
    std::vector<std::size_t> out;
    for (std::size_t p = 0; p < kPartitions; ++p) {
      const auto& pa = table_->view.pref_all[p];
      if (contains(pa, node_.name()) && contains(pa, peer)) out.push_back(p);
    }
    return out;
  }

  void start_round(Process& self, const Pid& peer, bool initial) {
    std::vector<Term> digests;
    std::vector<std::size_t> parts;
    {
      std::lock_guard lock(table_->mu);
      parts = shared_with(peer.node);
      for (std::size_t p : parts)
        digests.push_back(Term::tuple({Term(static_cast<std::uint64_t>(p)), Term(table_->store.digest(p))}));
    }
    const std::uint64_t id = ++next_id_;
    rounds_[id] = Round{peer, initial, false, clock_now(self), std::move(parts)};
    self.send(peer, Term::tuple({Term(Atom("ae_digests")), Term(self.pid()), Term(id), Term::list(std::move(digests))}));
  }

  void ae_digests(Process& self, const Pid& from, std::uint64_t id, const Term& items, const Term& msg) {
    if (!from_member(from, msg)) return;
    if (!items.is_proper_list()) return untrusted("malformed_digests", msg);
    std::vector<Term> out;
    std::size_t budget = kSummaryBudget;
    bool more = false;
    std::lock_guard lock(table_->mu);
    for (const Term& t : items.list_elements()) {
      std::uint64_t p = 0, d = 0;
      if (!match(t, tuple(bind(p), bind(d))) || p >= kPartitions) return untrusted("malformed_digests", msg);
      if (table_->store.digest(p) == d) continue;
      if (table_->store.held_in(p) > budget && !out.empty()) {
        more = true;
        break;
      }
      std::vector<Term> versions;
      table_->store.for_each_in(p, [&](const Term& k, const Entry& e) {
        versions.push_back(Term::tuple({k, Term(e.version.ts.wall_ms), Term(e.version.ts.logical), Term(e.version.origin)}));
      });
      budget -= std::min(budget, versions.size());
      out.push_back(Term::tuple({Term(p), Term::list(std::move(versions))}));
    }
    self.send(from, Term::tuple({Term(Atom("ae_summary")), Term(self.pid()), Term(id), Term::list(std::move(out)), Term(more)}));
  }

  void ae_summary(Process& self, const Pid& from, std::uint64_t id, const Term& items, bool more, const Term& msg) {
    auto r = rounds_.find(id);
    if (r == rounds_.end() || r->second.peer != from) return;
    if (!items.is_proper_list()) return untrusted("malformed_summary", msg);
    r->second.more = more;
    std::vector<std::pair<Term, Entry>> push;
    std::vector<Term> pull;
    {
      std::lock_guard lock(table_->mu);
      for (const Term& t : items.list_elements()) {
        std::uint64_t p = 0;
        const Term* versions = nullptr;
        if (!match(t, tuple(bind(p), bind(versions))) || p >= kPartitions || !versions->is_proper_list())
          return untrusted("malformed_summary", msg);
        std::map<Term, Version> theirs;
        for (const Term& v : versions->list_elements()) {
          std::uint64_t wall = 0;
          std::uint32_t logical = 0;
          Atom origin;
          if (!v.is_tuple() || v.tuple_size() != 4 || !match(v[1], bind(wall)) || !match(v[2], bind(logical)) ||
              !match(v[3], bind(origin)))
            return untrusted("malformed_summary", msg);
          theirs[v[0]] = Version{HlcTime{wall, logical}, origin};
        }
        table_->store.for_each_in(p, [&](const Term& k, const Entry& e) {
          auto it = theirs.find(k);
          if (e.kind != Kind::Evicted && (it == theirs.end() || it->second < e.version)) push.emplace_back(k, e);
        });
        for (const auto& [k, v] : theirs) {
          const Entry* mine = table_->store.raw(k);
          if (!mine || mine->version < v) pull.push_back(k);
        }
      }
    }
    if (!push.empty()) self.send(from, Term::tuple({Term(Atom("ae_push")), Term(self.pid()), entries_term(push)}));
    if (!pull.empty()) {
      self.send(from, Term::tuple({Term(Atom("ae_pull")), Term(self.pid()), Term(id), Term::list(std::move(pull))}));
      return;
    }
    round_done(self, id);
  }

  void ae_pull(Process& self, const Pid& from, std::uint64_t id, const Term& keys, const Term& msg) {
    if (!from_member(from, msg)) return;
    if (!keys.is_proper_list()) return untrusted("malformed_pull", msg);
    std::vector<std::pair<Term, Entry>> out;
    {
      std::lock_guard lock(table_->mu);
      for (const Term& k : keys.list_elements())
        if (const Entry* e = table_->store.raw(k); e && e->kind != Kind::Evicted) out.emplace_back(k, *e);
    }
    self.send(from, Term::tuple({Term(Atom("ae_entries")), Term(self.pid()), Term(id), entries_term(out)}));
  }

  void ae_entries(Process& self, const Pid& from, std::uint64_t id, const Term& items, const Term& msg) {
    auto r = rounds_.find(id);
    if (r == rounds_.end() || r->second.peer != from) return;
    if (merge_in(items, msg)) round_done(self, id);
  }

  void round_done(Process& self, std::uint64_t id) {
    auto r = rounds_.find(id);
    if (r == rounds_.end()) return;
    const Round round = r->second;
    rounds_.erase(r);
    if (round.more) return start_round(self, round.peer, round.initial);
    {
      std::lock_guard lock(table_->mu);
      for (std::size_t p : round.partitions) table_->syncing[p] = false;
    }
    if (round.initial && initial_.erase(round.peer)) maybe_ready(self);
  }

  void anti_entropy_tick(Process& self) {
    const auto now = clock_now(self);
    // A round or a handoff a member never finished (its answers lost): given up, tried again.
    std::vector<Pid> retry;
    for (auto it = rounds_.begin(); it != rounds_.end();)
      if (now - it->second.since > opts_.timeout) {
        if (it->second.initial) retry.push_back(it->second.peer);
        it = rounds_.erase(it);
      } else {
        ++it;
      }
    for (const Pid& p : retry) start_round(self, p, true);
    std::erase_if(handoffs_, [&](const auto& h) { return now - h.second.since > opts_.timeout; });
    // Writes whose copies never came back (a member stopped, not yet down): answered, logged.
    std::vector<std::uint64_t> late;
    for (const auto& [id, w] : pending_)
      if (now - w.since > opts_.timeout / 2) late.push_back(id);
    for (std::uint64_t id : late) {
      log::limited(log::Level::Warn, node_.name().text(), "cache_write_unconfirmed", std::string(opts_.name.text()),
                   {{"cache", opts_.name.text()}, {"reason", "a holder did not confirm a copy in time"}});
      answer(self, id);
    }
    // One member a tick, in turn: every pair compares within members' count of ticks.
    if (!members_.empty()) {
      auto it = members_.upper_bound(last_peer_);
      if (it == members_.end()) it = members_.begin();
      last_peer_ = it->first;
      start_round(self, it->first, false);
    }
    handoffs(self);
    self.send_after(opts_.anti_entropy, self.pid(), Term(a_ae()));
  }

  // Partitions this node holds entries of but no longer belongs to: sent to those that hold
  // them now, then forgotten once every one has confirmed.
  void handoffs(Process& self) {
    if (!ready_ || opts_.mode == Mode::Local) return;
    std::vector<std::pair<std::vector<Pid>, Term>> out;
    {
      std::lock_guard lock(table_->mu);
      for (std::size_t p = 0; p < kPartitions; ++p) {
        if (table_->store.held_in(p) == 0 || contains(table_->view.pref_all[p], node_.name())) continue;
        if (std::any_of(handoffs_.begin(), handoffs_.end(), [&](const auto& h) { return h.second.partition == p; }))
          continue;
        Handoff h{p, {}, table_->store.digest(p), clock_now(self)};
        std::vector<Pid> to;
        for (Atom n : table_->view.pref_all[p])
          if (auto pid = pid_of(n)) {
            to.push_back(*pid);
            h.waiting.insert(n);
          }
        if (to.empty()) continue;
        std::vector<std::pair<Term, Entry>> entries;
        table_->store.for_each_in(p, [&](const Term& k, const Entry& e) {
          if (e.kind != Kind::Evicted) entries.emplace_back(k, e);
        });
        const std::uint64_t id = ++next_id_;
        handoffs_[id] = std::move(h);
        out.emplace_back(std::move(to), Term::tuple({Term(Atom("handoff")), Term(self.pid()), Term(id), entries_term(entries)}));
      }
    }
    for (auto& [to, msg] : out)
      for (const Pid& pid : to) self.send(pid, msg);
  }

  void handoff_ack(const Pid& from, std::uint64_t id) {
    auto it = handoffs_.find(id);
    if (it == handoffs_.end() || !it->second.waiting.erase(from.node) || !it->second.waiting.empty()) return;
    const Handoff h = it->second;
    handoffs_.erase(it);
    std::lock_guard lock(table_->mu);
    // Written meanwhile (a caller with an older view): kept for the next handoff.
    if (table_->store.digest(h.partition) == h.digest && !contains(table_->view.pref_all[h.partition], node_.name()))
      table_->store.drop_partition(h.partition);
  }

  // A node that stops cleanly (cluster::stop, SIGTERM) first gives every partition it holds to
  // the members that hold it once this node is gone, and waits (up to the timeout) until each
  // has confirmed: with replicas = 1 nothing is lost, and no copy count drops meanwhile.
  Task<> leave(Process& self) {
    if (opts_.mode == Mode::Local || !ready_) co_return;
    HashRing ring;
    std::size_t n = 0;
    for (const auto& [pid, m] : members_)
      if (m.ready) ring.add(pid.node), ++n;
    if (n == 0) co_return;
    const std::size_t copies = opts_.mode == Mode::Partitioned ? std::min<std::size_t>(std::max(1u, opts_.replicas), n) : n;
    std::map<Pid, std::vector<std::pair<Term, Entry>>> out;
    {
      std::lock_guard lock(table_->mu);
      for (std::size_t p = 0; p < kPartitions; ++p) {
        if (table_->store.held_in(p) == 0) continue;
        std::vector<std::pair<Term, Entry>> entries;
        table_->store.for_each_in(p, [&](const Term& k, const Entry& e) {
          if (e.kind != Kind::Evicted) entries.emplace_back(k, e);
        });
        for (Atom holder : ring.lookup_n("p" + std::to_string(p), copies))
          if (auto pid = pid_of(holder)) {
            auto& v = out[*pid];
            v.insert(v.end(), entries.begin(), entries.end());
          }
      }
    }
    std::map<std::uint64_t, Pid> waiting;
    for (auto& [pid, entries] : out) {
      const std::uint64_t id = ++next_id_;
      waiting[id] = pid;
      self.send(pid, Term::tuple({Term(Atom("handoff")), Term(self.pid()), Term(id), entries_term(entries)}));
    }
    // Until each has confirmed, or gone (its DOWN: the connection closed), or the timeout. (On a
    // simulated clock nobody moves time while a node is torn down: the handoffs go unconfirmed.)
    const auto deadline = clock_now(self) + opts_.timeout;
    if (self.runtime().clock()->manual()) waiting.clear();
    while (!waiting.empty() && clock_now(self) < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_now(self));
      auto msg = co_await self.receive(
          [](const Term& m) {
            return m.is_tuple() && ((m.tuple_size() == 3 && m[0].is_atom(Atom("handoff_ack"))) ||
                                    (m.tuple_size() == 5 && m[0].is_atom(Atom("DOWN"))));
          },
          left);
      if (!msg) break;
      std::uint64_t id = 0;
      Pid gone;
      if (match(*msg, tuple("handoff_ack", any, bind(id)))) waiting.erase(id);
      else if (match(*msg, tuple("DOWN", any, "process", bind(gone), any)))
        std::erase_if(waiting, [&](const auto& w) { return w.second == gone; });
    }
    log::event(log::Level::Info, node_.name().text(), "cache_left",
               {{"cache", opts_.name.text()}, {"unconfirmed", std::to_string(waiting.size())}});
  }

  // --- expiry and sizes

  void sweep(Process& self) {
    {
      std::lock_guard lock(table_->mu);
      table_->store.sweep(now_ms());
    }
    self.send_after(kSweepInterval, self.pid(), Term(a_sweep()));
  }

  std::size_t owned_size() const {
    std::lock_guard lock(table_->mu);
    std::size_t n = 0;
    for (std::size_t p = 0; p < kPartitions; ++p) {
      const auto& pr = table_->view.pref_ready[p];
      if (!pr.empty() && pr.front() == node_.name()) n += table_->store.live_in(p);
    }
    return n;
  }

  Node& node_;
  Options opts_;
  Atom name_;
  HybridClock hlc_;
  std::shared_ptr<Table> table_;
  std::map<Pid, Member> members_;
  bool ready_ = false;
  bool join_wait_over_ = false;
  std::set<Pid> initial_;  // members whose first round has not ended while we join
  std::map<std::uint64_t, Pending> pending_;
  std::map<std::uint64_t, Round> rounds_;
  std::map<std::uint64_t, Handoff> handoffs_;
  std::uint64_t next_id_ = 0;
  Pid last_peer_;
};

std::shared_ptr<Table> table_of(const Runtime& rt, Atom cache) { return tables().find(rt, cache); }

Term no_such_cache(Atom cache) { return Term::tuple({Term(Atom("no_such_cache")), Term(cache)}); }

// A read this node can answer from its replica (local mode, or it holds the key and is ready):
// the reply of `op`, counted; nullopt when the key's owner must answer.
std::optional<Term> local_read(Table& t, const Term& key, const Term& op) {
  const std::uint64_t kh = detail::key_hash(key);  // outside the lock
  const std::size_t p = detail::partition_of(kh);
  const std::uint64_t now = t.wall();
  std::lock_guard lock(t.mu);
  if (t.opts.mode != Mode::Local && !(t.ready && !t.syncing[p] && contains(t.view.pref_ready[p], t.self)))
    return std::nullopt;
  const Entry* e = t.store.get(key, kh, now, true);
  if (op.is_atom(Atom("get"))) return e ? ok(e->value) : Term(a_not_found());
  if (op.is_atom(Atom("has_key"))) return Term(e != nullptr);
  if (!e) return Term(a_not_found());
  if (e->expires_ms == 0) return Term(a_infinity());
  return Term(e->expires_ms - std::min(e->expires_ms, now));
}

// The node whose cache process should coordinate an operation on `key`: its owner, or (when
// calls to some nodes just failed) the first of its other holders.
Atom owner_of(Table& t, const Term& key, const std::set<Atom>& failed) {
  std::lock_guard lock(t.mu);
  const std::size_t p = detail::partition_of(detail::key_hash(key));
  for (Atom n : t.view.pref_ready[p])
    if (!failed.count(n)) return n;
  for (Atom n : write_set(t, p))
    if (!failed.count(n)) return n;
  return t.self;
}

bool is_read(const Term& op) { return op.is_atom(Atom("get")) || op.is_atom(Atom("has_key")) || op.is_atom(Atom("ttl")); }

// One operation, from a process: answered here for local reads, else by the key's owner; a
// redirect, or an owner that went away, is tried again with the owner the view names then.
Task<Result<Term, Term>> request(Process& self, Atom cache, Term key, Term op) {
  auto t = table_of(self.runtime(), cache);
  if (!t) co_return unexpected(no_such_cache(cache));
  const bool read = is_read(op);
  auto count = [&](const Term& reply) {
    if (op.is_atom(Atom("get"))) (reply.is_atom(a_not_found()) ? t->misses : t->hits)++;
    else if (!read) t->writes++;
  };
  if (read)
    if (auto r = local_read(*t, key, op)) {
      count(*r);
      co_return *r;
    }
  std::optional<Atom> to;
  std::set<Atom> failed;  // nodes whose call failed: their holders' views have not dropped them yet
  Term last = Term(Atom("timeout"));
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (!to) to = owner_of(*t, key, failed);
    Term req = Term::tuple({Term(Atom("op")), key, op});
    auto r = co_await gen_server::call(self, ServerRef(process_name(cache), *to), std::move(req), t->opts.timeout);
    Atom next;
    if (r && match(*r, tuple("redirect", bind(next)))) {
      to = next;
      continue;
    }
    if (r) {
      const Term* reason = nullptr;
      if (match(*r, tuple("error", bind(reason)))) co_return unexpected(*reason);
      count(*r);
      co_return *r;
    }
    last = r.error();
    if (last.is_atom(Atom("timeout")) || (last.is_tuple() && last.tuple_size() > 0 && last[0].is_atom(Atom("timeout"))))
      break;
    // The owner went away (its node, or its cache): ask the key's next holder, at once.
    failed.insert(*to);
    to.reset();
  }
  co_return unexpected(last);
}

Result<Term, Term> request(Runtime& rt, Atom cache, const Term& key, const Term& op) {
  if (is_read(op))
    if (auto t = table_of(rt, cache))
      if (auto r = local_read(*t, key, op)) {
        if (op.is_atom(Atom("get"))) (r->is_atom(a_not_found()) ? t->misses : t->hits)++;
        return *r;
      }
  return block_on(rt, [&](Process& self) { return request(self, cache, key, op); });
}

// --- replies to typed results

Result<std::optional<Term>, Term> value_of(Result<Term, Term> r) {
  if (!r) return unexpected(r.error());
  const Term* v = nullptr;
  if (match(*r, tuple("ok", bind(v)))) return std::optional<Term>(*v);
  return std::optional<Term>();
}

Result<bool, Term> bool_of(Result<Term, Term> r) {
  if (!r) return unexpected(r.error());
  return r->is_atom(a_ok()) || r->is_atom(Atom("true"));
}

Result<std::optional<Ttl>, Term> ttl_reply(Result<Term, Term> r) {
  if (!r) return unexpected(r.error());
  if (r->is_atom(a_not_found())) return std::optional<Ttl>();
  auto ttl = ttl_of(*r);
  if (!ttl) return unexpected(*r);
  return std::optional<Ttl>(*ttl);
}

Result<std::int64_t, Term> int_of(Result<Term, Term> r) {
  if (!r) return unexpected(r.error());
  std::int64_t n = 0;
  if (match(*r, tuple("ok", bind(n)))) return n;
  return unexpected(*r);
}

Term put_op(const char* what, const Term& value, Ttl ttl) { return Term::tuple({Term(Atom(what)), value, ttl_term(ttl)}); }
Term replace_op(const Term& value, Ttl ttl) {
  return Term::tuple({Term(Atom("replace")), value, ttl ? ttl_term(ttl) : Term(Atom("keep"))});
}
Term incr_op(std::int64_t by, std::int64_t initial) { return Term::tuple({Term(Atom("incr")), Term(by), Term(initial)}); }
Term expire_op(Ttl ttl) { return Term::tuple({Term(Atom("expire")), ttl_term(ttl)}); }

Task<Result<std::size_t, Term>> cluster_size(Process& self, Atom cache) {
  auto t = table_of(self.runtime(), cache);
  if (!t) co_return unexpected(no_such_cache(cache));
  std::vector<Atom> nodes;
  {
    std::lock_guard lock(t->mu);
    if (t->opts.mode != Mode::Partitioned) co_return t->store.live();
    nodes = t->view.ready;
  }
  std::size_t n = 0;
  for (Atom node : nodes) {
    auto r = co_await gen_server::call(self, ServerRef(process_name(cache), node), Term(Atom("owned_size")), t->opts.timeout);
    std::uint64_t k = 0;
    if (!r) co_return unexpected(r.error());
    if (!match(*r, bind(k))) co_return unexpected(*r);
    n += k;
  }
  co_return n;
}

}  // namespace

std::string_view mode_name(Mode m) {
  switch (m) {
    case Mode::Local: return "local";
    case Mode::Replicated: return "replicated";
    case Mode::Partitioned: return "partitioned";
  }
  return "replicated";
}

std::optional<Mode> parse_mode(std::string_view s) {
  for (Mode m : {Mode::Local, Mode::Replicated, Mode::Partitioned})
    if (s == mode_name(m)) return m;
  return std::nullopt;
}

Atom process_name(Atom cache) { return Atom("hypha_cache_" + std::string(cache.text())); }

ChildSpec spec(Node& node, const Options& opts) {
  // Trapping exits, so that a clean stop runs terminate (the handover), given time for it.
  ChildSpec c = ChildSpec::server(Term::tuple({Term(Atom("hypha_cache")), Term(opts.name)}),
                                  [&node, opts] { return std::make_unique<CacheServer>(node, opts); },
                                  gen_server::StartOptions{.name = process_name(opts.name), .trap_exit = true});
  c.shutdown = opts.timeout + std::chrono::seconds(1);
  return c;
}

Result<Pid, Term> start(Node& node, const Options& opts) {
  return gen_server::start(node.runtime(), std::make_unique<CacheServer>(node, opts), {.name = process_name(opts.name)});
}

Term Stats::to_term() const {
  auto n = [](std::uint64_t v) { return Term(v); };
  return Term::map({{Term(Atom("hits")), n(hits)},
                    {Term(Atom("misses")), n(misses)},
                    {Term(Atom("writes")), n(writes)},
                    {Term(Atom("evictions")), n(evictions)},
                    {Term(Atom("expirations")), n(expirations)},
                    {Term(Atom("local_size")), n(local_size)},
                    {Term(Atom("members")), n(members)},
                    {Term(Atom("ready")), Term(ready)}});
}

// --- Cache: coroutines

Task<Result<std::optional<Term>, Term>> Cache::get(Process& self, Term key) const {
  co_return value_of(co_await request(self, name_, std::move(key), Term(Atom("get"))));
}
Task<Result<bool, Term>> Cache::has_key(Process& self, Term key) const {
  co_return bool_of(co_await request(self, name_, std::move(key), Term(Atom("has_key"))));
}
Task<Result<std::optional<Ttl>, Term>> Cache::ttl(Process& self, Term key) const {
  co_return ttl_reply(co_await request(self, name_, std::move(key), Term(Atom("ttl"))));
}
Task<Result<bool, Term>> Cache::put(Process& self, Term key, Term value, Ttl ttl) const {
  co_return bool_of(co_await request(self, name_, std::move(key), put_op("put", value, ttl)));
}
Task<Result<bool, Term>> Cache::put_new(Process& self, Term key, Term value, Ttl ttl) const {
  co_return bool_of(co_await request(self, name_, std::move(key), put_op("put_new", value, ttl)));
}
Task<Result<bool, Term>> Cache::replace(Process& self, Term key, Term value, Ttl ttl) const {
  co_return bool_of(co_await request(self, name_, std::move(key), replace_op(value, ttl)));
}
Task<Result<std::optional<Term>, Term>> Cache::take(Process& self, Term key) const {
  co_return value_of(co_await request(self, name_, std::move(key), Term(Atom("take"))));
}
Task<Result<bool, Term>> Cache::del(Process& self, Term key) const {
  co_return bool_of(co_await request(self, name_, std::move(key), Term(Atom("delete"))));
}
Task<Result<std::int64_t, Term>> Cache::incr(Process& self, Term key, std::int64_t by, std::int64_t initial) const {
  co_return int_of(co_await request(self, name_, std::move(key), incr_op(by, initial)));
}
Task<Result<bool, Term>> Cache::expire(Process& self, Term key, Ttl ttl) const {
  co_return bool_of(co_await request(self, name_, std::move(key), expire_op(ttl)));
}
Task<Result<std::map<Term, Term>, Term>> Cache::get_all(Process& self, std::vector<Term> keys) const {
  std::map<Term, Term> out;
  for (Term& k : keys) {
    auto v = co_await get(self, k);
    if (!v) co_return unexpected(v.error());
    if (*v) out.emplace(std::move(k), std::move(**v));
  }
  co_return out;
}
Task<Result<bool, Term>> Cache::put_all(Process& self, std::vector<std::pair<Term, Term>> entries, Ttl ttl) const {
  for (auto& [k, v] : entries) {
    auto r = co_await put(self, std::move(k), std::move(v), ttl);
    if (!r) co_return r;
  }
  co_return true;
}
Task<Result<std::size_t, Term>> Cache::size(Process& self) const { co_return co_await cluster_size(self, name_); }

// --- Cache: blocking

Result<std::optional<Term>, Term> Cache::get(Runtime& rt, const Term& key) const {
  return value_of(request(rt, name_, key, Term(Atom("get"))));
}
Result<bool, Term> Cache::has_key(Runtime& rt, const Term& key) const {
  return bool_of(request(rt, name_, key, Term(Atom("has_key"))));
}
Result<std::optional<Ttl>, Term> Cache::ttl(Runtime& rt, const Term& key) const {
  return ttl_reply(request(rt, name_, key, Term(Atom("ttl"))));
}
Result<bool, Term> Cache::put(Runtime& rt, const Term& key, const Term& value, Ttl ttl) const {
  return bool_of(request(rt, name_, key, put_op("put", value, ttl)));
}
Result<bool, Term> Cache::put_new(Runtime& rt, const Term& key, const Term& value, Ttl ttl) const {
  return bool_of(request(rt, name_, key, put_op("put_new", value, ttl)));
}
Result<bool, Term> Cache::replace(Runtime& rt, const Term& key, const Term& value, Ttl ttl) const {
  return bool_of(request(rt, name_, key, replace_op(value, ttl)));
}
Result<std::optional<Term>, Term> Cache::take(Runtime& rt, const Term& key) const {
  return value_of(request(rt, name_, key, Term(Atom("take"))));
}
Result<bool, Term> Cache::del(Runtime& rt, const Term& key) const {
  return bool_of(request(rt, name_, key, Term(Atom("delete"))));
}
Result<std::int64_t, Term> Cache::incr(Runtime& rt, const Term& key, std::int64_t by, std::int64_t initial) const {
  return int_of(request(rt, name_, key, incr_op(by, initial)));
}
Result<bool, Term> Cache::expire(Runtime& rt, const Term& key, Ttl ttl) const {
  return bool_of(request(rt, name_, key, expire_op(ttl)));
}
Result<std::map<Term, Term>, Term> Cache::get_all(Runtime& rt, const std::vector<Term>& keys) const {
  return block_on(rt, [&](Process& self) { return get_all(self, keys); });
}
Result<bool, Term> Cache::put_all(Runtime& rt, const std::vector<std::pair<Term, Term>>& entries, Ttl ttl) const {
  return block_on(rt, [&](Process& self) { return put_all(self, entries, ttl); });
}
Result<std::size_t, Term> Cache::size(Runtime& rt) const {
  return block_on(rt, [&](Process& self) { return size(self); });
}

std::optional<Stats> Cache::stats(const Runtime& rt) const {
  auto t = table_of(rt, name_);
  if (!t) return std::nullopt;
  Stats s;
  s.hits = t->hits;
  s.misses = t->misses;
  s.writes = t->writes;
  std::lock_guard lock(t->mu);
  s.evictions = t->store.counters().evictions;
  s.expirations = t->store.counters().expirations;
  s.local_size = t->store.live();
  s.members = t->view.all.size();
  s.ready = t->ready;
  return s;
}

std::size_t Cache::local_size(const Runtime& rt) const {
  auto t = table_of(rt, name_);
  if (!t) return 0;
  std::lock_guard lock(t->mu);
  return t->store.live();
}

// --- rpc built-ins

namespace {

std::optional<Atom> cache_name(const Term& t) {
  Atom a;
  if (match(t, bind(a))) return a;
  std::string s;
  if (match(t, bind(s)))
    if (auto made = Atom::make(s)) return *made;
  return std::nullopt;
}

// put/4's options: a TTL in ms, or [{ttl, Ms}] / #{ttl => Ms}; nullopt when malformed.
std::optional<Ttl> ttl_option(const Term& opts) {
  if (opts.is_integer()) return ttl_of(opts);
  const Term key(Atom("ttl"));
  if (opts.is_map()) {
    const Term* v = opts.map_find(key);
    return v ? ttl_of(*v) : std::optional<Ttl>(Ttl{});
  }
  if (!opts.is_proper_list()) return std::nullopt;
  for (const Term& o : opts.list_elements())
    if (o.is_tuple() && o.tuple_size() == 2 && o[0] == key) return ttl_of(o[1]);
  return Ttl{};
}

}  // namespace

void add_exports(Exports& exports, Node& node) {
  Node* n = &node;
  // Runs `f(cache)` for a cache this node runs; else the error term.
  // The cache a caller names (an atom or a binary) if this node runs it; else the error term.
  auto find = [n](const Term& name) -> Result<Cache, Term> {
    auto a = cache_name(name);
    if (!a || !table_of(n->runtime(), *a)) return unexpected(error(Term::tuple({Term(Atom("no_such_cache")), name})));
    return Cache(*a);
  };
  // (Coroutines: every parameter by value, as they outlive the export's own call.)
  auto raw = [find](Process& self, Term name, Term key, Term op) -> Task<Term> {
    auto c = find(name);
    if (!c) co_return c.error();
    auto r = co_await request(self, c->name(), std::move(key), std::move(op));
    co_return r ? *r : error(r.error());
  };
  exports.add("hypha_cache", "get", [raw](Process& self, Term c, Term k) { return raw(self, c, k, Term(Atom("get"))); });
  exports.add("hypha_cache", "has_key", [raw](Process& self, Term c, Term k) { return raw(self, c, k, Term(Atom("has_key"))); });
  exports.add("hypha_cache", "ttl", [raw](Process& self, Term c, Term k) { return raw(self, c, k, Term(Atom("ttl"))); });
  exports.add("hypha_cache", "take", [raw](Process& self, Term c, Term k) { return raw(self, c, k, Term(Atom("take"))); });
  exports.add("hypha_cache", "delete", [raw](Process& self, Term c, Term k) { return raw(self, c, k, Term(Atom("delete"))); });
  for (const char* what : {"put", "put_new", "replace"}) {
    const std::string w = what;
    auto op = [w](const Term& v, Ttl ttl) { return w == "replace" ? replace_op(v, ttl) : put_op(w.c_str(), v, ttl); };
    exports.add("hypha_cache", what, [raw, op](Process& self, Term c, Term k, Term v) { return raw(self, c, k, op(v, {})); });
    exports.add("hypha_cache", what, [raw, op](Process& self, Term c, Term k, Term v, Term opts) -> Task<Term> {
      auto ttl = ttl_option(opts);
      if (!ttl) co_return error(Term::tuple({Term(Atom("bad_option")), opts}));
      co_return co_await raw(self, c, k, op(v, *ttl));
    });
  }
  exports.add("hypha_cache", "incr", [raw](Process& self, Term c, Term k) { return raw(self, c, k, incr_op(1, 0)); });
  exports.add("hypha_cache", "incr", [raw](Process& self, Term c, Term k, std::int64_t by) {
    return raw(self, c, k, incr_op(by, 0));
  });
  exports.add("hypha_cache", "expire", [raw](Process& self, Term c, Term k, Term ttl) -> Task<Term> {
    auto t = ttl_of(ttl);
    if (!t) co_return error(Term::tuple({Term(Atom("bad_ttl")), ttl}));
    co_return co_await raw(self, c, k, expire_op(*t));
  });
  exports.add("hypha_cache", "size", [find](Process& self, Term name) -> Task<Term> {
    auto c = find(name);
    if (!c) co_return c.error();
    auto r = co_await c->size(self);
    co_return r ? Term(static_cast<std::uint64_t>(*r)) : error(r.error());
  });
  exports.add("hypha_cache", "local_size", [find, n](Term name) {
    auto c = find(name);
    return c ? Term(static_cast<std::uint64_t>(c->local_size(n->runtime()))) : c.error();
  });
  exports.add("hypha_cache", "stats", [find, n](Term name) {
    auto c = find(name);
    if (!c) return c.error();
    auto st = c->stats(n->runtime());
    return st ? st->to_term() : error(Term(Atom("noproc")));
  });
}

}  // namespace hypha::cache
