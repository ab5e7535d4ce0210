// The public faces of the runtime: Runtime, Process (a process's view of itself) and Mailbox.
#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "hypha/process/inbound.hpp"
#include "runtime_impl.hpp"

namespace hypha {

using detail::Envelope;
using detail::ProcessCore;

// ---------------------------------------------------------------------------------- receive

namespace detail {

void begin_wait(ProcessCore* p, std::coroutine_handle<> h, MatchRef match, std::int64_t timeout_ms) {
  p->resume_point = h;
  p->waiting = true;
  p->match = match;
  p->scan_prev = nullptr;
  p->timed_out = timeout_ms == 0;
  p->received.reset();
  const std::uint32_t gen = ++p->wait_gen;
  if (timeout_ms > 0) {
    Runtime::Impl* rt = p->rt;
    const Pid pid = p->pid;
    p->wait_timer = rt->timers.start(std::chrono::milliseconds(timeout_ms), [rt, pid, gen] {
      if (ProcessCore* q = rt->acquire(pid)) {
        auto* e = new Envelope();
        e->type = Envelope::Type::Timeout;
        e->a = Term(static_cast<std::int64_t>(gen));
        rt->push(q, e);
        Runtime::Impl::release(q);
      }
    });
  }
}

std::optional<Term> take_received(ProcessCore* p) {
  std::optional<Term> r = std::move(p->received);
  p->received.reset();
  return r;
}

}  // namespace detail

// ---------------------------------------------------------------------------------- Process

Pid Process::pid() const noexcept { return core_->pid; }
Runtime& Process::runtime() const noexcept { return *core_->rt->owner; }

void Process::send(const Pid& to, Term msg) { core_->rt->send(&core_->pid, to, std::move(msg)); }
bool Process::send(Atom name, Term msg) { return core_->rt->send_name(&core_->pid, name, std::move(msg)); }
void Process::send(Atom name, Atom node, Term msg) {
  if (node == core_->rt->node) {
    core_->rt->send_name(&core_->pid, name, std::move(msg));
    return;
  }
  if (auto* r = core_->rt->remote.load(std::memory_order_acquire)) r->send_name(&core_->pid, name, node, msg);
}

void Process::link(const Pid& other) { core_->rt->link(core_, other); }
void Process::unlink(const Pid& other) { core_->rt->unlink(core_, other); }
Ref Process::monitor(const Pid& target) { return core_->rt->monitor(core_, Term(target), target.node); }
Ref Process::monitor(Atom name, Atom node) { return core_->rt->monitor(core_, Term(name), node); }
bool Process::demonitor(const Ref& ref, bool flush) { return core_->rt->demonitor(core_, ref, flush); }
Ref Process::monitor_alias(const Pid& target) { return core_->rt->monitor(core_, Term(target), target.node, true); }
Ref Process::monitor_alias(Atom name, Atom node) { return core_->rt->monitor(core_, Term(name), node, true); }

bool Process::trap_exit(bool on) { return std::exchange(core_->trap_exit, on); }
bool Process::trapping_exits() const noexcept { return core_->trap_exit; }

void Process::hibernate() {
  std::lock_guard lock(core_->lock);  // every use of a process's extra part is under it
  detail::Extra* x = core_->extra;
  if (!x) return;
  if (!core_->blocking && x->links.empty() && x->monitored_by.empty() && x->monitoring.empty() && !x->name &&
      x->aliases.empty()) {
    core_->extra = nullptr;
    delete x;
    return;
  }
  x->links.shrink_to_fit();
  x->monitored_by.shrink_to_fit();
  x->monitoring.shrink_to_fit();
  x->aliases.shrink_to_fit();
}
void Process::exit(Term reason) { throw Exit(std::move(reason)); }
void Process::exit_on_return(Term reason) { core_->return_reason = std::move(reason); }
void Process::exit(const Pid& target, Term reason) {
  core_->rt->send_exit(core_->pid, target, std::move(reason), false);
}

Pid Process::spawn(ProcessBody body) { return core_->rt->spawn(std::move(body), {}); }

namespace {
Term spawn_reply(const Ref& req, bool ok, Term what) {
  return Term::tuple({Term(Atom("spawn_reply")), Term(req), Term(Atom(ok ? "ok" : "error")), std::move(what)});
}
}  // namespace

Ref Process::spawn_request(Atom node, Atom mod, Atom fun, Term args, const SpawnRequestOptions& opts) {
  Runtime::Impl& rt = *core_->rt;
  const Ref req = rt.make_ref();
  const Pid self = core_->pid;
  if (!args.is_proper_list()) {
    if (opts.wants_reply(false)) rt.send(nullptr, self, spawn_reply(req, false, Term(Atom("badarg"))));
    return req;
  }
  if (node == rt.node) {
    SpawnOptions so;
    if (opts.link) so.link = self;
    if (opts.monitor) so.monitored_by = std::make_pair(self, req);
    so.before_start = [&](const Pid& pid) {
      if (opts.wants_reply(true)) rt.send(nullptr, self, spawn_reply(req, true, Term(pid)));
    };
    rt.spawn(rt.body_for(mod, fun, args), so);
    return req;
  }
  RemoteTransport* remote = rt.remote.load(std::memory_order_acquire);
  if (!remote) {
    if (opts.wants_reply(false)) rt.send(nullptr, self, spawn_reply(req, false, Term(atoms::noconnection())));
    return req;
  }
  const std::optional<Pid> gl = rt.owner->group_leader();
  remote->spawn_request(self, gl.value_or(self), node, req, mod, fun, args, opts);
  return req;
}

bool Process::spawn_request_abandon(const Ref& req) {
  RemoteTransport* remote = core_->rt->remote.load(std::memory_order_acquire);
  return remote && remote->spawn_abandon(core_->pid, req);
}

Pid Process::spawn_link(ProcessBody body) { return core_->rt->spawn(std::move(body), {}, core_); }
std::pair<Pid, Ref> Process::spawn_monitor(ProcessBody body) {
  // Monitor before the child can run, so its exit cannot be missed.
  ProcessCore* child = core_->rt->prepare(std::move(body), false);
  const Pid pid = child->pid;
  Ref ref = core_->rt->monitor(core_, Term(pid), pid.node);
  core_->rt->sched.schedule(child);
  return {pid, ref};
}

Ref Process::alias() {
  const Ref r = core_->rt->make_ref();
  {
    std::lock_guard lock(core_->lock);
    core_->ext().aliases.push_back(r);
  }
  std::lock_guard lock(core_->rt->aliases_mu);
  core_->rt->aliases.emplace(r, core_->pid);
  return r;
}

bool Process::unalias(const Ref& alias) {
  {
    std::lock_guard lock(core_->lock);
    if (!core_->extra) return false;
    auto& v = core_->extra->aliases;
    auto it = std::find(v.begin(), v.end(), alias);
    if (it == v.end()) return false;
    v.erase(it);
  }
  std::lock_guard lock(core_->rt->aliases_mu);
  core_->rt->aliases.erase(alias);
  return true;
}

void Process::send(const Ref& alias, Term msg) { core_->rt->send_alias(&core_->pid, alias, std::move(msg)); }
void Process::send_each(std::span<const Pid> to, const Term& msg) { core_->rt->send_each(&core_->pid, to, msg); }

bool Process::register_name(Atom name) { return runtime().register_name(name, core_->pid); }
TimerRef Process::send_after(std::chrono::milliseconds delay, const Pid& to, Term msg) {
  return runtime().send_after(delay, to, std::move(msg));
}
Ref Process::make_ref() { return core_->rt->make_ref(); }

// ---------------------------------------------------------------------------------- Runtime

Runtime::Runtime(RuntimeOptions opts) : impl_(std::make_unique<Impl>(this, opts)) {
  // The atoms of exit and error paths exist before any peer can fill the table.
  for (Atom (*make)() : {atoms::normal, atoms::kill, atoms::killed, atoms::noproc, atoms::noconnection,
                         atoms::EXIT, atoms::DOWN, atoms::process})
    make();
}
Runtime::~Runtime() = default;

Atom Runtime::node() const noexcept { return impl_->node; }
std::uint32_t Runtime::creation() const noexcept { return impl_->creation; }
bool Runtime::is_local(const Pid& p) const noexcept { return impl_->is_local(p); }
unsigned Runtime::threads() const noexcept { return impl_->sched.threads(); }
const std::shared_ptr<Clock>& Runtime::clock() const noexcept { return impl_->timers.clock(); }
std::size_t Runtime::process_count() const noexcept { return impl_->count.load(std::memory_order_relaxed); }
std::vector<Pid> Runtime::processes() const {
  std::vector<Pid> out;
  for (auto& shard : impl_->shards) {
    std::lock_guard lock(shard.lock);
    for (const auto& [id, p] : shard.procs) {
      const detail::State st = p->state.load(std::memory_order_acquire);
      if (st != detail::State::Exiting && st != detail::State::Dead) out.push_back(p->pid);
    }
  }
  std::sort(out.begin(), out.end(), [](const Pid& a, const Pid& b) { return std::tie(a.serial, a.id) < std::tie(b.serial, b.id); });
  return out;
}
bool RuntimeInbound::quiet() const noexcept { return impl_->sched.busy() == 0; }
void RuntimeInbound::set_remote(RemoteTransport* remote) noexcept { impl_->remote.store(remote, std::memory_order_release); }
void RuntimeInbound::set_io_poller(IoPoller* poller) { impl_->sched.set_poller(poller); }

Pid Runtime::spawn(ProcessBody body, const SpawnOptions& opts) { return impl_->spawn(std::move(body), opts); }
Pid Runtime::spawn(Atom mod, Atom fun, Term args, const SpawnOptions& opts) {
  return impl_->spawn(impl_->body_for(mod, fun, args), opts);
}
void Runtime::set_spawn_handler(SpawnHandler handler) {
  auto h = std::make_shared<const SpawnHandler>(std::move(handler));
  std::lock_guard lock(impl_->spawn_mu);
  impl_->spawn_handler = std::move(h);
}
void Runtime::set_group_leader(const Pid& pid) {
  std::lock_guard lock(impl_->spawn_mu);
  impl_->group_leader = pid;
}
std::optional<Pid> Runtime::group_leader() const {
  std::lock_guard lock(impl_->spawn_mu);
  return impl_->group_leader;
}

Mailbox Runtime::mailbox() {
  ProcessCore* p = impl_->create(true);
  p->ext();  // wake() relies on it existing
  p->state.store(detail::State::Waiting);
  p->refs.fetch_add(1, std::memory_order_relaxed);  // the Mailbox's own, so it may outlive the runtime
  return Mailbox(this, p, impl_->alive);
}

void Runtime::send(const Pid& to, Term msg) { impl_->send(nullptr, to, std::move(msg)); }
bool Runtime::send(Atom name, Term msg) { return impl_->send_name(nullptr, name, std::move(msg)); }
void Runtime::send(Atom name, Atom node, Term msg) {
  if (node == impl_->node) {
    impl_->send_name(nullptr, name, std::move(msg));
    return;
  }
  if (auto* r = impl_->remote.load(std::memory_order_acquire)) r->send_name(nullptr, name, node, msg);
}

void Runtime::send(const Ref& alias, Term msg) { impl_->send_alias(nullptr, alias, std::move(msg)); }
void Runtime::send_each(std::span<const Pid> to, const Term& msg) { impl_->send_each(nullptr, to, msg); }

void Runtime::exit(const Pid& target, Term reason) {
  // From outside any process: the sender is a pid that no process has (id 0), so exit(Pid,
  // normal) is ignored unless trapped, as erlang:exit/2 from another process would be.
  impl_->send_exit(Pid{impl_->node, 0, 0, impl_->creation}, target, std::move(reason), false);
}

bool Runtime::register_name(Atom name, const Pid& pid) {
  if (name == atoms::undefined()) return false;
  ProcessCore* p = impl_->acquire(pid);
  if (!p) return false;
  bool ok = false;
  {
    std::unique_lock names_lock(impl_->names_mu);
    std::lock_guard lock(p->lock);
    if (p->alive && !(p->extra && p->extra->name) && !impl_->names.count(name)) {
      impl_->names.emplace(name, pid);
      p->ext().name = name;
      ok = true;
    }
  }
  Impl::release(p);
  return ok;
}

bool Runtime::unregister_name(Atom name) {
  std::optional<Pid> pid;
  {
    std::unique_lock lock(impl_->names_mu);
    auto it = impl_->names.find(name);
    if (it == impl_->names.end()) return false;
    pid = it->second;
    impl_->names.erase(it);
  }
  if (ProcessCore* p = impl_->acquire(*pid)) {
    {
      std::lock_guard lock(p->lock);
      if (p->extra) p->extra->name.reset();
    }
    Impl::release(p);
  }
  return true;
}

std::optional<Pid> Runtime::whereis(Atom name) const { return impl_->resolve(Term(name)); }

std::vector<Atom> Runtime::registered() const {
  std::shared_lock lock(impl_->names_mu);
  std::vector<Atom> out;
  out.reserve(impl_->names.size());
  for (const auto& [name, pid] : impl_->names) out.push_back(name);
  return out;
}

Ref Runtime::make_ref() { return impl_->make_ref(); }

TimerRef Runtime::send_after(std::chrono::milliseconds delay, const Pid& to, Term msg) {
  Impl* impl = impl_.get();
  return {impl->timers.start(delay, [impl, to, m = std::move(msg)]() mutable { impl->send(nullptr, to, std::move(m)); })};
}

TimerRef Runtime::send_after(std::chrono::milliseconds delay, Atom name, Term msg) {
  Impl* impl = impl_.get();
  return {impl->timers.start(delay, [impl, name, m = std::move(msg)]() mutable {
    impl->send_name(nullptr, name, std::move(m));
  })};
}

bool Runtime::cancel_timer(TimerRef t) { return impl_->timers.cancel(t.id); }

bool Runtime::alive(const Pid& p) const {
  ProcessCore* c = impl_->acquire(p);
  if (!c) return false;
  Impl::release(c);
  return true;
}

std::optional<ProcessInfo> Runtime::process_info(const Pid& pid) const {
  ProcessCore* p = impl_->acquire(pid);
  if (!p) return std::nullopt;
  ProcessInfo info{};
  switch (p->state.load(std::memory_order_acquire)) {
    case detail::State::Runnable: info.status = ProcessStatus::Runnable; break;
    case detail::State::Running: info.status = ProcessStatus::Running; break;
    case detail::State::Waiting: info.status = ProcessStatus::Waiting; break;
    default: info.status = ProcessStatus::Exiting; break;
  }
  info.message_queue_len = p->queued.load(std::memory_order_relaxed);
  info.memory = sizeof(detail::ProcessCore) + info.message_queue_len * sizeof(detail::Envelope);
  {
    std::lock_guard lock(p->lock);
    if (p->extra) {
      info.registered_name = p->extra->name;
      info.links = p->extra->links;
      info.monitors = p->extra->monitoring.size();
      info.monitored_by = p->extra->monitored_by.size();
      const detail::Extra& x = *p->extra;
      info.memory += sizeof(detail::Extra) + x.links.capacity() * sizeof(Pid) +
                     x.monitored_by.capacity() * sizeof(detail::Monitor) +
                     x.monitoring.capacity() * sizeof(std::pair<Ref, Term>) + x.aliases.capacity() * sizeof(Ref);
    }
    info.trap_exit = p->trap_exit;
  }
  Impl::release(p);
  return info;
}

// Signals from other nodes.
void RuntimeInbound::deliver(const Pid& to, Term msg) { impl_->send(nullptr, to, std::move(msg)); }
bool RuntimeInbound::deliver_name(Atom name, Term msg) { return impl_->send_name(nullptr, name, std::move(msg)); }
bool RuntimeInbound::deliver_alias(const Ref& alias, Term msg) { return impl_->send_alias(nullptr, alias, std::move(msg)); }
void RuntimeInbound::deliver_exit(const Pid& from, const Pid& to, Term reason, bool linked) {
  impl_->send_exit(from, to, std::move(reason), linked);
}

void RuntimeInbound::deliver_link(const Pid& remote, const Pid& local) {
  ProcessCore* p = impl_->acquire(local);
  bool ok = false;
  if (p) {
    std::lock_guard lock(p->lock);
    if (p->alive) {
      auto& links = p->ext().links;
      if (std::find(links.begin(), links.end(), remote) == links.end()) links.push_back(remote);
      ok = true;
    }
  }
  if (p) Runtime::Impl::release(p);
  if (!ok) {
    if (auto* r = impl_->remote.load(std::memory_order_acquire)) r->exit(local, remote, Term(atoms::noproc()), true);
  }
}

void RuntimeInbound::deliver_unlink(const Pid& remote, const Pid& local) {
  if (ProcessCore* p = impl_->acquire(local)) {
    {
      std::lock_guard lock(p->lock);
      if (p->extra) {
        auto& links = p->extra->links;
        links.erase(std::remove(links.begin(), links.end(), remote), links.end());
      }
    }
    Runtime::Impl::release(p);
  }
}

void RuntimeInbound::deliver_monitor(const Pid& watcher, const Term& target, const Ref& ref) {
  const std::optional<Pid> pid = impl_->resolve(target);
  const Term watched = target.is_atom() ? Term::tuple({target, Term(impl_->node)}) : target;
  if (pid && impl_->add_watcher(*pid, {ref, watcher, watched})) return;
  if (auto* r = impl_->remote.load(std::memory_order_acquire))
    r->monitor_exit(pid.value_or(Pid{impl_->node, 0, 0, impl_->creation}), watched, watcher, ref, Term(atoms::noproc()));
}

void RuntimeInbound::deliver_demonitor(const Pid&, const Term& target, const Ref& ref) {
  if (const std::optional<Pid> pid = impl_->resolve(target)) impl_->erase_watcher(*pid, ref);
}

void RuntimeInbound::deliver_down(const Pid& watcher, const Ref& ref, const Term& watched, Term reason) {
  impl_->send_down(watcher, ref, watched, reason);
}

void RuntimeInbound::deliver_spawn_reply(const Pid& to, const Ref& req, const Term& result, bool linked, bool monitored,
                                  bool notify) {
  const bool ok = result.is_pid();
  ProcessCore* p = impl_->acquire(to);
  bool recorded = false;
  if (p) {
    std::lock_guard lock(p->lock);
    if (p->alive) {
      recorded = true;
      if (ok && linked) {
        auto& links = p->ext().links;
        if (std::find(links.begin(), links.end(), result.pid()) == links.end()) links.push_back(result.pid());
      }
      if (ok && monitored) p->ext().monitoring.emplace_back(req, result);
    }
  }
  if (!recorded && ok) {  // the requester is gone: undo what the other node set up for it
    if (auto* r = impl_->remote.load(std::memory_order_acquire)) {
      if (linked) r->exit(to, result.pid(), Term(atoms::noproc()), true);
      if (monitored) r->demonitor(to, result, result.pid().node, req);
    }
  }
  if (p) Runtime::Impl::release(p);
  if (recorded && notify) impl_->send(nullptr, to, spawn_reply(req, ok, result));
}

// ---------------------------------------------------------------------------------- Mailbox

Mailbox::Mailbox(Mailbox&& o) noexcept : rt_(o.rt_), core_(std::exchange(o.core_, nullptr)), alive_(o.alive_) {}
Mailbox& Mailbox::operator=(Mailbox&& o) noexcept {
  if (this != &o) {
    this->~Mailbox();
    rt_ = o.rt_;
    core_ = std::exchange(o.core_, nullptr);
    alive_ = o.alive_;
  }
  return *this;
}
Mailbox::~Mailbox() {
  if (!core_) return;
  if (runtime_alive()) rt_->impl_->terminate(core_, Term(atoms::normal()));
  Runtime::Impl::release(std::exchange(core_, nullptr));
}

Pid Mailbox::pid() const noexcept { return core_->pid; }

Term Mailbox::receive() {
  if (!runtime_alive()) throw std::logic_error("Mailbox::receive: its runtime has stopped");
  return *receive([](const Term&) { return true; }, std::chrono::milliseconds(-1));
}
std::optional<Term> Mailbox::receive(std::chrono::milliseconds timeout) {
  return receive([](const Term&) { return true; }, timeout);
}

std::optional<Term> Mailbox::receive(const std::function<bool(const Term&)>& pred, std::chrono::milliseconds timeout) {
  if (!runtime_alive()) return std::nullopt;
  Runtime::Impl* rt = rt_->impl_.get();
  ProcessCore* p = core_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto fn = pred;
  p->match = detail::MatchRef(fn);
  p->scan_prev = nullptr;
  for (;;) {
    rt->drain(p);
    if (rt->try_match(p)) return detail::take_received(p);
    auto& x = p->ext();
    std::unique_lock lock(x.mu);
    if (!p->inbox.empty()) continue;
    if (timeout.count() < 0) {
      x.cv.wait(lock, [&] { return !p->inbox.empty(); });
    } else if (!x.cv.wait_until(lock, deadline, [&] { return !p->inbox.empty(); })) {
      return std::nullopt;
    }
  }
}

void Mailbox::send(const Pid& to, Term msg) {
  if (runtime_alive()) rt_->impl_->send(&core_->pid, to, std::move(msg));
}
void Mailbox::link(const Pid& other) {
  if (runtime_alive()) rt_->impl_->link(core_, other);
}
Ref Mailbox::monitor(const Pid& target) {
  if (!runtime_alive()) throw std::logic_error("Mailbox::monitor: its runtime has stopped");
  return rt_->impl_->monitor(core_, Term(target), target.node);
}
bool Mailbox::demonitor(const Ref& ref, bool flush) { return runtime_alive() && rt_->impl_->demonitor(core_, ref, flush); }
std::size_t Mailbox::queue_length() const { return core_->queued.load(std::memory_order_relaxed); }

}  // namespace hypha
