// The process runtime: table, delivery, the run loop of a process, exits, links and monitors.
#include <array>
#include <algorithm>
#include <random>

#include "hypha/base/log.hpp"
#include "runtime_impl.hpp"

namespace hypha {

using detail::Envelope;
using detail::ProcessCore;
using detail::State;

namespace atoms {
Atom normal() { static const Atom a("normal"); return a; }
Atom kill() { static const Atom a("kill"); return a; }
Atom killed() { static const Atom a("killed"); return a; }
Atom noproc() { static const Atom a("noproc"); return a; }
Atom noconnection() { static const Atom a("noconnection"); return a; }
Atom EXIT() { static const Atom a("EXIT"); return a; }
Atom DOWN() { static const Atom a("DOWN"); return a; }
Atom process() { static const Atom a("process"); return a; }
}  // namespace atoms

namespace detail {
ProcessCore::~ProcessCore() {
  for (Envelope* e = inbox.take_all(); e;) delete std::exchange(e, e->next);
  for (Envelope* e = msg_head; e;) delete std::exchange(e, e->next);
  delete extra;
}
}  // namespace detail

namespace {
// How many times a process may be resumed before it yields its worker to others.
constexpr int kBudget = 64;

Envelope* message(Term msg) {
  auto* e = new Envelope();
  e->a = std::move(msg);
  return e;
}

Envelope* exit_envelope(const Pid& from, Term reason, bool linked) {
  auto* e = new Envelope();
  e->type = Envelope::Type::Exit;
  e->a = Term(from);
  e->b = std::move(reason);
  e->linked = linked;
  return e;
}

bool erase_pid(std::vector<Pid>& v, const Pid& p) {
  auto it = std::find(v.begin(), v.end(), p);
  if (it == v.end()) return false;
  v.erase(it);
  return true;
}
}  // namespace

Runtime::Impl::Impl(Runtime* o, const RuntimeOptions& opts)
    : owner(o),
      node(opts.node),
      creation(opts.creation),
      ref_salt(std::random_device{}()),
      timers(opts.clock),
      sched(opts.threads, opts.idle_spin, [this](ProcessCore* p) { run(p); }, timers.clock()->manual()) {}

Runtime::Impl::~Impl() {
  alive->store(false);
  sched.stop();
  timers.stop();
  for (auto& shard : shards) {
    for (auto& [key, p] : shard.procs) {
      p->body_task = Task<>();
      release(p);
    }
    shard.procs.clear();
  }
}

// ---------------------------------------------------------------------------------- table

ProcessCore* Runtime::Impl::acquire(const Pid& pid) const {
  if (!is_local(pid)) return nullptr;
  const std::uint64_t key = pid_key(pid);
  Shard& shard = shards[key % kShards];
  std::lock_guard lock(shard.lock);
  auto it = shard.procs.find(key);
  if (it == shard.procs.end()) return nullptr;
  it->second->refs.fetch_add(1, std::memory_order_relaxed);
  return it->second;
}

void Runtime::Impl::release(ProcessCore* p) {
  if (p->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete p;
}

ProcessCore* Runtime::Impl::create(bool blocking) {
  auto* p = new ProcessCore();
  p->rt = this;
  p->handle = Process(p);
  p->blocking = blocking;
  p->trap_exit = blocking;
  const std::uint64_t n = next_pid.fetch_add(1, std::memory_order_relaxed);
  p->pid = Pid{node, static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(n >> 32), creation};
  const std::uint64_t key = pid_key(p->pid);
  Shard& shard = shards[key % kShards];
  {
    std::lock_guard lock(shard.lock);
    shard.procs.emplace(key, p);
  }
  count.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void Runtime::Impl::remove(ProcessCore* p) {
  const std::uint64_t key = pid_key(p->pid);
  Shard& shard = shards[key % kShards];
  {
    std::lock_guard lock(shard.lock);
    shard.procs.erase(key);
  }
  count.fetch_sub(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------- delivery

// A blocked Mailbox is notified; a waiting process becomes runnable, and then true: the caller
// schedules it.
bool Runtime::Impl::make_runnable(ProcessCore* p) {
  if (p->blocking) {
    auto& x = p->ext();  // created with the mailbox, so no race on allocation
    std::lock_guard lock(x.mu);
    x.cv.notify_all();
    return false;
  }
  State expected = State::Waiting;
  return p->state.compare_exchange_strong(expected, State::Runnable, std::memory_order_acq_rel);
}

void Runtime::Impl::wake(ProcessCore* p) {
  if (make_runnable(p)) sched.schedule(p);
}

bool Runtime::Impl::enqueue(ProcessCore* p, Envelope* e) {
  if (e->type == Envelope::Type::Message) p->queued.fetch_add(1, std::memory_order_relaxed);
  p->inbox.push(e);
  return make_runnable(p);
}

void Runtime::Impl::push(ProcessCore* p, Envelope* e) {
  if (enqueue(p, e)) sched.schedule(p);
}

void Runtime::Impl::send(const Pid* from, const Pid& to, Term msg) {
  if (!is_local(to)) {
    if (auto* r = remote.load(std::memory_order_acquire)) r->send(from, to, msg);
    return;
  }
  if (ProcessCore* p = acquire(to)) {
    push(p, message(std::move(msg)));
    release(p);
  }
}

// Local receivers made runnable are scheduled in batches (one lock and wake-up per batch), each
// kept alive by its table reference until it is in a queue.
void Runtime::Impl::send_each(const Pid* from, std::span<const Pid> to, const Term& msg) {
  std::vector<Pid> far;
  constexpr std::size_t kBatch = 256;
  std::array<ProcessCore*, kBatch> runnable;
  std::size_t n = 0;
  auto flush = [&] {
    sched.schedule_many(std::span<ProcessCore* const>(runnable.data(), n));
    for (std::size_t i = 0; i < n; ++i) release(runnable[i]);
    n = 0;
  };
  for (const Pid& p : to) {
    if (!is_local(p)) {
      far.push_back(p);
      continue;
    }
    ProcessCore* c = acquire(p);
    if (!c) continue;
    if (enqueue(c, message(Term(msg)))) {
      runnable[n++] = c;
      if (n == kBatch) flush();
    } else {
      release(c);
    }
  }
  flush();
  if (far.empty()) return;
  if (auto* r = remote.load(std::memory_order_acquire)) r->send_each(from, far, msg);
}

bool Runtime::Impl::send_name(const Pid* from, Atom name, Term msg) {
  const std::optional<Pid> pid = resolve(Term(name));
  if (!pid) return false;
  send(from, *pid, std::move(msg));
  return true;
}

bool Runtime::Impl::send_alias(const Pid* from, const Ref& alias, Term msg) {
  if (!(alias.node == node && alias.creation == creation)) {
    if (auto* r = remote.load(std::memory_order_acquire)) r->send_alias(from, alias, msg);
    return true;
  }
  std::optional<Pid> pid;
  {
    std::lock_guard lock(aliases_mu);
    auto it = aliases.find(alias);
    if (it != aliases.end()) pid = it->second;
  }
  if (!pid) return false;
  send(from, *pid, std::move(msg));
  return true;
}

void Runtime::Impl::send_exit(const Pid& from, const Pid& to, Term reason, bool linked) {
  if (!is_local(to)) {
    if (auto* r = remote.load(std::memory_order_acquire)) r->exit(from, to, reason, linked);
    return;
  }
  if (ProcessCore* p = acquire(to)) {
    push(p, exit_envelope(from, std::move(reason), linked));
    release(p);
  }
}

// A monitor fired: it ends on the watcher's side too, and the DOWN message goes out, unless the
// watcher demonitored meanwhile (the DOWN is void then). The check and the enqueue are one step
// under the watcher's lock, so a demonitor(flush) either finds the monitor and ends it, or finds
// the DOWN already queued and flushes it: no DOWN comes after it, as Erlang promises.
void Runtime::Impl::send_down(const Pid& watcher, const Ref& ref, const Term& watched, const Term& reason) {
  ProcessCore* w = acquire(watcher);
  if (!w) return;
  bool queued = false;
  {
    std::lock_guard lock(w->lock);
    if (w->extra && std::erase_if(w->extra->monitoring, [&](const auto& m) { return m.first == ref; }) > 0) {
      drop_alias_locked(w, ref);
      w->queued.fetch_add(1, std::memory_order_relaxed);
      w->inbox.push(message(Term::tuple({Term(atoms::DOWN()), Term(ref), Term(atoms::process()), watched, reason})));
      queued = true;
    }
  }
  if (queued) wake(w);
  release(w);
}

// ---------------------------------------------------------------------------------- running

// Appends to the process's own queue of received messages (owner thread only).
void Runtime::Impl::append_message(ProcessCore* p, Envelope* e) {
  e->next = nullptr;
  if (p->msg_tail) p->msg_tail->next = e;
  else p->msg_head = e;
  p->msg_tail = e;
}

// Moves what arrived into the process: messages to its queue, signals handled.
void Runtime::Impl::drain(ProcessCore* p) {
  for (Envelope* e = p->inbox.take_all(); e;) {
    Envelope* next = e->next;
    e->next = nullptr;
    switch (e->type) {
      case Envelope::Type::Message:
        append_message(p, e);
        break;
      case Envelope::Type::Exit:
        exit_signal(p, e->a.pid(), std::move(e->b), e->linked);
        delete e;
        break;
      case Envelope::Type::Timeout:
        if (p->waiting && e->a.small_integer() == p->wait_gen) p->timed_out = true;
        delete e;
        break;
    }
    e = next;
  }
}

void Runtime::Impl::exit_signal(ProcessCore* p, const Pid& from, Term reason, bool linked) {
  if (linked) {
    std::lock_guard lock(p->lock);
    // A link exit only counts while the link exists (it may have been unlinked meanwhile).
    if (!p->extra || !erase_pid(p->extra->links, from)) return;
  }
  const bool is_kill = !linked && reason.is_atom(atoms::kill());
  if (is_kill && !p->blocking) {
    p->pending_exit = Term(atoms::killed());
    return;
  }
  if (p->trap_exit) {
    p->queued.fetch_add(1, std::memory_order_relaxed);
    append_message(p, message(Term::tuple({Term(atoms::EXIT()), Term(from), reason})));
    return;
  }
  if (reason.is_atom(atoms::normal()) && !(from == p->pid)) return;
  p->pending_exit = std::move(reason);
}

bool Runtime::Impl::try_match(ProcessCore* p) {
  Envelope* prev = p->scan_prev;
  Envelope* e = prev ? prev->next : p->msg_head;
  for (; e; prev = e, e = e->next) {
    if (!p->match(e->a)) continue;
    if (prev) prev->next = e->next;
    else p->msg_head = e->next;
    if (p->msg_tail == e) p->msg_tail = prev;
    p->received = std::move(e->a);
    p->queued.fetch_sub(1, std::memory_order_relaxed);
    delete e;
    p->scan_prev = nullptr;
    return true;
  }
  p->scan_prev = prev;  // next time, test only what arrives after this
  return false;
}

void Runtime::Impl::run(ProcessCore* p) {
  p->state.store(State::Running, std::memory_order_release);
  for (int budget = kBudget; budget > 0; --budget) {
    drain(p);
    if (p->pending_exit) return terminate(p, std::move(*p->pending_exit));
    if (p->waiting) {
      bool ready;
      try {
        ready = try_match(p);
      } catch (const std::exception& ex) {
        return terminate(p, Term::tuple({Term::atom("exception"), Term::binary(ex.what())}));
      }
      if (!ready && p->timed_out) {
        p->received.reset();
        ready = true;
      }
      if (!ready) {
        // Sleep until a signal arrives; one that came in meanwhile reschedules at once. Once
        // Waiting is published another worker may run (and end) the process, so a reference
        // keeps it alive for the check that follows.
        p->refs.fetch_add(1, std::memory_order_relaxed);
        p->state.store(State::Waiting, std::memory_order_seq_cst);
        State expected = State::Waiting;
        const bool reclaimed =
            !p->inbox.empty() && p->state.compare_exchange_strong(expected, State::Running);
        release(p);  // if reclaimed, the table's reference keeps it alive while it runs here
        if (!reclaimed) return;
        continue;
      }
      p->waiting = false;
      if (p->wait_timer) {
        timers.cancel(p->wait_timer);
        p->wait_timer = 0;
      }
    }
    try {
      struct InProcess {  // the log's pid field, while this thread runs the process
        explicit InProcess(const Pid& pid) { log::enter_process(pid.id, pid.serial); }
        ~InProcess() { log::leave_process(); }
      } in_process(p->pid);
      p->resume_point.resume();
      auto h = p->body_task.handle();
      if (h.done()) {
        Task<> done = std::move(p->body_task);
        done.await_resume();  // rethrows what ended the body
        if (p->return_reason) return terminate(p, std::move(*p->return_reason));
        return terminate(p, Term(atoms::normal()));
      }
    } catch (const Exit& e) {
      return terminate(p, e.reason());
    } catch (const std::exception& e) {
      return terminate(p, Term::tuple({Term::atom("exception"), Term::binary(e.what())}));
    } catch (...) {
      return terminate(p, Term::tuple({Term::atom("exception"), Term::binary("unknown")}));
    }
    if (!p->waiting) {
      return terminate(p, Term::tuple({Term::atom("exception"),
                                       Term::binary("process suspended outside receive")}));
    }
  }
  // Out of budget: let the others run.
  p->state.store(State::Runnable, std::memory_order_release);
  sched.schedule(p);
}

void Runtime::Impl::terminate(ProcessCore* p, Term reason) {
  p->body_task = Task<>();  // destroys the coroutine frames
  if (p->wait_timer) timers.cancel(p->wait_timer);
  std::vector<Pid> links;
  std::vector<detail::Monitor> watchers;
  std::vector<std::pair<Ref, Term>> monitoring;
  std::optional<Atom> name;
  {
    std::lock_guard lock(p->lock);
    p->alive = false;
    if (p->extra) {
      links = std::move(p->extra->links);
      watchers = std::move(p->extra->monitored_by);
      monitoring = std::move(p->extra->monitoring);
      name = p->extra->name;
      if (!p->extra->aliases.empty()) {
        std::lock_guard alock(aliases_mu);
        for (const Ref& r : p->extra->aliases) aliases.erase(r);
      }
    }
  }
  p->state.store(State::Dead, std::memory_order_release);
  if (name) {
    std::unique_lock lock(names_mu);
    auto it = names.find(*name);
    if (it != names.end() && it->second == p->pid) names.erase(it);
  }
  remove(p);
  const Pid self = p->pid;
  for (const Pid& l : links) send_exit(self, l, reason, true);
  for (const auto& m : watchers) {
    if (is_local(m.watcher)) send_down(m.watcher, m.ref, m.watched, reason);
    else if (auto* r = remote.load(std::memory_order_acquire)) r->monitor_exit(self, m.watched, m.watcher, m.ref, reason);
  }
  for (const auto& held : monitoring) {
    drop_monitor(self, held.first, held.second);
  }
  release(p);  // the table's reference
}

// ---------------------------------------------------------------------------------- links, monitors

// A local pid, or the holder of a local registered name.
std::optional<Pid> Runtime::Impl::resolve(const Term& target) const {
  if (target.is_pid()) return target.pid();
  if (!target.is_atom()) return std::nullopt;
  std::shared_lock lock(names_mu);
  auto it = names.find(target.atom_value());
  if (it == names.end()) return std::nullopt;
  return it->second;
}

// Records a monitor on a local process; false when it is not alive (the caller says noproc).
bool Runtime::Impl::add_watcher(const Pid& pid, detail::Monitor m) {
  ProcessCore* t = acquire(pid);
  if (!t) return false;
  bool added = false;
  {
    std::lock_guard lock(t->lock);
    if (t->alive) {
      t->ext().monitored_by.push_back(std::move(m));
      added = true;
    }
  }
  release(t);
  return added;
}

void Runtime::Impl::erase_watcher(const Pid& pid, const Ref& ref) {
  if (ProcessCore* t = acquire(pid)) {
    {
      std::lock_guard lock(t->lock);
      if (t->extra) std::erase_if(t->extra->monitored_by, [&](const detail::Monitor& m) { return m.ref == ref; });
    }
    release(t);
  }
}

// Ends the monitor `ref` that `watcher` holds on `target` (a pid, or {Name, Node}) at the target's
// end: in a local process's record, or by DEMONITOR_P to the target's node.
void Runtime::Impl::drop_monitor(const Pid& watcher, const Ref& ref, const Term& target) {
  if (target.is_pid() && is_local(target.pid())) {
    erase_watcher(target.pid(), ref);
  } else if (auto* r = remote.load(std::memory_order_acquire)) {
    const Term& pid_or_name = target.is_tuple() ? target[0] : target;
    const Atom node = target.is_tuple() ? target[1].atom_value() : target.pid().node;
    r->demonitor(watcher, pid_or_name, node, ref);
  }
}

void Runtime::Impl::link(ProcessCore* self, const Pid& other) {
  if (other == self->pid) return;
  if (!is_local(other)) {
    {
      std::lock_guard lock(self->lock);
      auto& links = self->ext().links;
      if (std::find(links.begin(), links.end(), other) != links.end()) return;
      links.push_back(other);
    }
    if (auto* r = remote.load(std::memory_order_acquire)) r->link(self->pid, other);
    else push(self, exit_envelope(other, Term(atoms::noconnection()), true));
    return;
  }
  ProcessCore* o = acquire(other);
  bool linked = false;
  if (o) {
    // Both sides under their locks, in address order, so an exit cannot slip between them.
    ProcessCore* first = self < o ? self : o;
    ProcessCore* second = self < o ? o : self;
    std::scoped_lock lock(first->lock, second->lock);
    if (o->alive) {
      auto& mine = self->ext().links;
      if (std::find(mine.begin(), mine.end(), other) == mine.end()) {
        mine.push_back(other);
        o->ext().links.push_back(self->pid);
      }
      linked = true;
    }
  }
  if (o) release(o);
  if (!linked) {
    {
      std::lock_guard lock(self->lock);
      self->ext().links.push_back(other);
    }
    push(self, exit_envelope(other, Term(atoms::noproc()), true));
  }
}

void Runtime::Impl::unlink(ProcessCore* self, const Pid& other) {
  {
    std::lock_guard lock(self->lock);
    if (self->extra) erase_pid(self->extra->links, other);
  }
  if (!is_local(other)) {
    if (auto* r = remote.load(std::memory_order_acquire)) r->unlink(self->pid, other);
    return;
  }
  if (ProcessCore* o = acquire(other)) {
    {
      std::lock_guard lock(o->lock);
      if (o->extra) erase_pid(o->extra->links, self->pid);
    }
    release(o);
  }
}

void Runtime::Impl::drop_alias_locked(ProcessCore* p, const Ref& ref) {
  if (!p->extra || p->extra->aliases.empty()) return;
  auto& v = p->extra->aliases;
  auto it = std::find(v.begin(), v.end(), ref);
  if (it == v.end()) return;
  v.erase(it);
  std::lock_guard alock(aliases_mu);
  aliases.erase(ref);
}

Ref Runtime::Impl::monitor(ProcessCore* self, const Term& target, Atom target_node, bool alias) {
  const Ref ref = make_ref();
  if (alias) {  // active before the request goes out, so no reply can arrive first
    std::lock_guard lock(self->lock);
    self->ext().aliases.push_back(ref);
    std::lock_guard alock(aliases_mu);
    aliases.emplace(ref, self->pid);
  }
  // What the DOWN message will name: the pid, or {Name, Node} for a name.
  const Term watched = target.is_atom() ? Term::tuple({target, Term(target_node)}) : target;
  const bool local = target.is_atom() ? target_node == node : is_local(target.pid());
  if (!local) {
    {
      std::lock_guard lock(self->lock);
      self->ext().monitoring.emplace_back(ref, watched);
    }
    if (auto* r = remote.load(std::memory_order_acquire)) r->monitor(self->pid, target, target_node, ref);
    else send_down(self->pid, ref, watched, Term(atoms::noconnection()));
    return ref;
  }
  const std::optional<Pid> pid = resolve(target);
  {
    // Recorded before the target can fire it (it may exit as soon as it is watched).
    std::lock_guard lock(self->lock);
    self->ext().monitoring.emplace_back(ref, pid ? Term(*pid) : watched);
  }
  if (!(pid && add_watcher(*pid, {ref, self->pid, watched}))) send_down(self->pid, ref, watched, Term(atoms::noproc()));
  return ref;
}

bool Runtime::Impl::demonitor(ProcessCore* self, const Ref& ref, bool flush) {
  std::optional<Term> target;
  {
    std::lock_guard lock(self->lock);
    if (self->extra) {
      auto& mon = self->extra->monitoring;
      auto it = std::find_if(mon.begin(), mon.end(), [&](const auto& m) { return m.first == ref; });
      if (it != mon.end()) {
        target = std::move(it->second);
        mon.erase(it);
        drop_alias_locked(self, ref);
      }
    }
  }
  if (target) drop_monitor(self->pid, ref, *target);
  if (flush) {
    drain(self);
    const Term ref_term(ref);
    Envelope* prev = nullptr;
    for (Envelope* e = self->msg_head; e;) {
      Envelope* next = e->next;
      const Term& m = e->a;
      if (m.is_tuple() && m.tuple_size() == 5 && m[0].is_atom(atoms::DOWN()) && m[1] == ref_term) {
        if (prev) prev->next = next;
        else self->msg_head = next;
        if (self->msg_tail == e) self->msg_tail = prev;
        if (self->scan_prev == e) self->scan_prev = prev;
        self->queued.fetch_sub(1, std::memory_order_relaxed);
        delete e;
      } else {
        prev = e;
      }
      e = next;
    }
  }
  return target.has_value();
}

// A new process with its body ready to start; the caller schedules it.
ProcessCore* Runtime::Impl::prepare(ProcessBody body, bool trap_exit) {
  ProcessCore* p = create(false);
  p->trap_exit = trap_exit;
  p->body = std::move(body);
  p->body_task = p->body(p->handle);
  p->resume_point = p->body_task.handle();
  return p;
}

Pid Runtime::Impl::spawn(ProcessBody body, const SpawnOptions& opts, ProcessCore* link_with) {
  ProcessCore* p = prepare(std::move(body), opts.trap_exit);
  const Pid pid = p->pid;
  if (link_with) link(link_with, pid);
  if (opts.link) {
    if (is_local(*opts.link)) {
      link(p, *opts.link);
    } else {  // the requesting node records its side itself (the spawn reply says linked)
      std::lock_guard lock(p->lock);
      p->ext().links.push_back(*opts.link);
    }
  }
  if (opts.monitored_by) {
    const auto& [watcher, ref] = *opts.monitored_by;
    add_watcher(pid, {ref, watcher, Term(pid)});
    if (ProcessCore* w = is_local(watcher) ? acquire(watcher) : nullptr) {
      {
        std::lock_guard lock(w->lock);
        w->ext().monitoring.emplace_back(ref, Term(pid));
      }
      release(w);
    }
  }
  if (opts.before_start) opts.before_start(pid);
  sched.schedule(p);  // state is Runnable from birth
  return pid;
}

ProcessBody Runtime::Impl::body_for(Atom mod, Atom fun, const Term& args) const {
  std::shared_ptr<const SpawnHandler> h;
  {
    std::lock_guard lock(spawn_mu);
    h = spawn_handler;
  }
  if (h && *h) return (*h)(mod, fun, args);
  return [mod, fun, args](Process&) -> Task<> {
    throw Exit(Term::tuple({Term(Atom("undef")), Term::list({Term::tuple({Term(mod), Term(fun), args, Term()})})}));
    co_return;
  };
}

Ref Runtime::Impl::make_ref() {
  const std::uint64_t n = next_ref.fetch_add(1, std::memory_order_relaxed);
  Ref r;
  r.node = node;
  r.creation = creation;
  r.len = 3;
  r.ids = {static_cast<std::uint32_t>(n & 0x3FFFF), static_cast<std::uint32_t>(n >> 18), ref_salt, 0, 0};
  return r;
}

}  // namespace hypha
