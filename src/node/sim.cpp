// The simulated network (node/sim.hpp): pipes of frames between the nodes of one test, faults
// the test injects, and the one thread that delivers frames and makes connections in order.
#include "hypha/node/sim.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "hypha/net/flags.hpp"
#include "node_impl.hpp"
#include "sim_impl.hpp"

namespace hypha {

namespace {

std::pair<Atom, Atom> key_of(Atom a, Atom b) { return a < b ? std::pair{a, b} : std::pair{b, a}; }

}  // namespace

// ------------------------------------------------------------------------------------ one end

class SimNetwork::Impl::End final : public net::FrameLink, public std::enable_shared_from_this<End> {
 public:
  End(Impl& net, std::weak_ptr<Pipe> pipe, int side) : net_(net), pipe_(std::move(pipe)), side_(side) {}

  void start(PacketFn on_packet, ClosedFn on_closed) override { net_.start_end(*this, std::move(on_packet), std::move(on_closed)); }
  bool send(net::Frame frame) override { return net_.transmit(*this, std::move(frame)); }
  void preload(std::vector<net::Frame> frames) override {
    for (auto& f : frames) net_.transmit(*this, std::move(f));
  }
  void flush() override {}
  void close(const std::string& reason) override { net_.close_end(*this, reason, false); }
  void close_after_flush(const std::string& reason) override { net_.close_end(*this, reason, true); }
  bool closed() const noexcept override { return closed_.load(std::memory_order_acquire); }
  std::shared_future<void> closed_future() const override { return closed_future_; }
  std::size_t queued_bytes() const override { return net_.queued_bytes(*this); }
  net::ConnectionStats stats() const noexcept override {
    return {messages_in.load(), messages_out.load(), bytes_in.load(), bytes_out.load()};
  }
  bool wait_queue_below(std::size_t bytes, std::chrono::steady_clock::time_point deadline) override {
    while (!closed() && queued_bytes() > bytes) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return !closed();
  }
  // No ticks are simulated: a partition closes this end when its silence limit passes.
  void liveness(std::chrono::milliseconds, std::chrono::milliseconds silent_after) override {
    silent_after_ms.store(silent_after.count());
  }

  std::atomic<std::int64_t> silent_after_ms{0};  // set by liveness(); 0: the node's tick time
  // Under the network's lock.
  Impl& net_;
  std::weak_ptr<Pipe> pipe_;
  int side_;
  PacketFn on_packet;
  ClosedFn on_closed;
  bool started = false;
  bool detached = false;  // its node left the network: no more callbacks
  std::atomic<bool> closed_{false};
  std::promise<void> closed_promise;
  std::shared_future<void> closed_future_ = closed_promise.get_future().share();
  std::atomic<std::uint64_t> messages_in{0}, messages_out{0}, bytes_in{0}, bytes_out{0};
};

// ------------------------------------------------------------------------------------ the network

SimNetwork::Impl::Impl(std::shared_ptr<ManualClock> c) : clock(c ? std::move(c) : std::make_shared<ManualClock>()) {
  clock->attach(this);
  thread = std::thread([this] { loop(); });
}

SimNetwork::Impl::~Impl() {
  clock->detach(this);
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  work_cv.notify_all();
  if (thread.joinable()) thread.join();
}

void SimNetwork::Impl::post(std::function<void()> action) {
  ready.push_back(std::move(action));
  work_cv.notify_one();
}

void SimNetwork::Impl::post_at(Clock::time_point at, std::function<void()> action) {
  if (at <= clock->now()) {
    post(std::move(action));
    return;
  }
  timed.emplace(std::pair{at, next_seq++}, std::move(action));
}

void SimNetwork::Impl::loop() {
  std::unique_lock lock(mu);
  for (;;) {
    work_cv.wait(lock, [&] { return stop || !ready.empty(); });
    if (stop) return;
    auto action = std::move(ready.front());
    ready.pop_front();
    running = true;
    lock.unlock();
    action();
    lock.lock();
    running = false;
    idle_cv.notify_all();
  }
}

void SimNetwork::Impl::on_time(Clock::time_point now) {
  std::lock_guard lock(mu);
  while (!timed.empty() && timed.begin()->first.first <= now) {
    post(std::move(timed.begin()->second));
    timed.erase(timed.begin());
  }
}

Clock::time_point SimNetwork::Impl::next_deadline() const {
  std::lock_guard lock(mu);
  return timed.empty() ? Clock::time_point::max() : timed.begin()->first.first;
}

SimNetwork::Impl::Link& SimNetwork::Impl::link(Atom a, Atom b) { return links[key_of(a, b)]; }

// --- nodes

Result<std::uint32_t, std::string> SimNetwork::Impl::reserve(Atom name) {
  std::lock_guard lock(mu);
  auto [it, fresh] = nodes.emplace(name, nullptr);
  if (!fresh) return unexpected("the name " + std::string(name.text()) + " is in use on the simulated network");
  return ++creations[name];
}

void SimNetwork::Impl::attach(Node::Impl* node) {
  std::lock_guard lock(mu);
  nodes[node->self_name] = node;
}

void SimNetwork::Impl::detach(Node::Impl* node) {
  std::unique_lock lock(mu);
  idle_cv.wait(lock, [&] { return !running; });  // no callback into the node is under way
  nodes.erase(node->self_name);
  for (auto& pipe : pipes)
    for (int side = 0; side < 2; ++side)
      if (pipe->node[side] == node->self_name) {
        pipe->end[side]->detached = true;
        pipe->end[side]->on_packet = nullptr;
        pipe->end[side]->on_closed = nullptr;
        close_locked(*pipe, side, "node left the simulated network", false);
      }
}

void SimNetwork::Impl::connect_later(Node::Impl* from, Atom to, std::uint64_t attempt) {
  std::lock_guard lock(mu);
  const Atom self = from->self_name;
  post([this, self, to, attempt] { connect(self, to, attempt); });
}

void SimNetwork::Impl::connect(Atom from_name, Atom to_name, std::uint64_t attempt) {
  std::unique_lock lock(mu);
  auto from_it = nodes.find(from_name);
  if (from_it == nodes.end() || !from_it->second) return;
  Node::Impl* from = from_it->second;
  auto fail = [&](std::string reason) {
    ++stats.refused;
    lock.unlock();
    from->fail_attempt(to_name, Peer::Owner::Connecting, attempt, reason);
  };
  auto to_it = nodes.find(to_name);
  if (to_it == nodes.end() || !to_it->second) return fail("no node " + std::string(to_name.text()) + " on the simulated network");
  Node::Impl* to = to_it->second;
  Link& l = link(from_name, to_name);
  if (l.cut) return fail("cannot connect to " + std::string(to_name.text()) + ": connection refused (link cut)");
  if (l.partitioned) {
    const std::string why = "connection setup timed out";
    post_at(clock->now() + from->opts.setup_timeout, [this, from_name, to_name, attempt, why] {
      std::unique_lock l2(mu);
      auto it = nodes.find(from_name);
      if (it == nodes.end() || !it->second) return;
      ++stats.refused;
      Node::Impl* n = it->second;
      l2.unlock();
      n->fail_attempt(to_name, Peer::Owner::Connecting, attempt, why);
    });
    return;
  }
  for (auto& p : pipes)
    if (p->live() && key_of(p->node[0], p->node[1]) == key_of(from_name, to_name))
      return;  // the other side's connection came first and took over our attempt
  if (from->cookie != to->cookie) {
    log::limited(log::Level::Warn, to_name.text(), "connection_refused", "sim cookie",
                 {{"source", from_name.text()}, {"reason", "the peer did not prove the cookie"}});
    return fail("handshake failed: the peer refused our cookie");
  }
  auto pipe = std::make_shared<Pipe>();
  pipe->node = {from_name, to_name};
  pipe->end[0] = std::make_shared<End>(*this, pipe, 0);
  pipe->end[1] = std::make_shared<End>(*this, pipe, 1);
  pipes.push_back(pipe);
  ++stats.connects;
  const net::PeerInfo from_info{std::string(from_name.text()), from->hs.flags, from->creation_};
  const net::PeerInfo to_info{std::string(to_name.text()), to->hs.flags, to->creation_};
  lock.unlock();
  const bool accepted = to->establish(from_name, pipe->end[1], from_info, 0, true);
  const bool made = accepted && from->establish(to_name, pipe->end[0], to_info, attempt, true);
  if (!made) {
    pipe->end[0]->close("connection setup abandoned");
    if (!accepted) from->fail_attempt(to_name, Peer::Owner::Connecting, attempt, "the peer is stopping");
  }
}

// --- frames

void SimNetwork::Impl::start_end(End& e, net::FrameLink::PacketFn on_packet, net::FrameLink::ClosedFn on_closed) {
  std::lock_guard lock(mu);
  e.on_packet = std::move(on_packet);
  e.on_closed = std::move(on_closed);
  e.started = true;
  auto pipe = e.pipe_.lock();
  if (!pipe) return;
  if (e.closed()) {
    notify_closed(e, pipe->close_reason[e.side_]);
    return;
  }
  schedule_delivery(pipe, 1 - e.side_);
}

bool SimNetwork::Impl::transmit(End& e, net::Frame frame) {
  std::lock_guard lock(mu);
  auto pipe = e.pipe_.lock();
  if (!pipe || e.closed() || pipe->closing[e.side_]) return false;
  e.messages_out.fetch_add(1);
  e.bytes_out.fetch_add(frame.size());
  const int dir = e.side_;
  Link& l = link(pipe->node[0], pipe->node[1]);
  std::size_t& drops = l.drops[pipe->node[dir] == key_of(pipe->node[0], pipe->node[1]).first ? 0 : 1];
  if (drops > 0) {
    --drops;
    ++stats.dropped;
    return true;
  }
  Pipe::Dir& d = pipe->dir[dir];
  Clock::time_point at = clock->now() + l.delay;
  if (!d.queue.empty()) at = std::max(at, d.queue.back().at);  // in order, whatever the delay did
  d.bytes += frame.size();
  d.queue.push_back({at, std::move(frame), false});
  schedule_delivery(pipe, dir);
  return true;
}

// Under the lock. A delivery runs for `dir` at the front frame's time unless held.
void SimNetwork::Impl::schedule_delivery(const std::shared_ptr<Pipe>& pipe, int dir) {
  Pipe::Dir& d = pipe->dir[dir];
  if (d.queue.empty() || link(pipe->node[0], pipe->node[1]).partitioned) return;
  post_at(d.queue.front().at, [this, pipe, dir] { deliver(pipe, dir); });
}

void SimNetwork::Impl::deliver(const std::shared_ptr<Pipe>& pipe, int dir) {
  std::unique_lock lock(mu);
  Pipe::Dir& d = pipe->dir[dir];
  End& to = *pipe->end[1 - dir];
  while (!d.queue.empty() && d.queue.front().at <= clock->now() && !link(pipe->node[0], pipe->node[1]).partitioned) {
    if (to.closed()) {  // what still travels to a closed end is lost there
      for (const auto& f : d.queue) stats.dropped += f.close_marker ? 0 : 1;
      d.queue.clear();
      d.bytes = 0;
      break;
    }
    if (!to.started) return;  // start() delivers
    InFlight f = std::move(d.queue.front());
    d.queue.pop_front();
    d.bytes -= f.frame.size();
    if (f.close_marker) {
      // The sender's close reached the receiver: a close after flush completes now.
      finish_close(*pipe, dir, pipe->close_after[dir]);
      close_locked(*pipe, 1 - dir, "connection closed by peer", false);
      continue;
    }
    ++stats.delivered;
    to.messages_in.fetch_add(1);
    to.bytes_in.fetch_add(f.frame.size());
    auto handler = to.on_packet;
    lock.unlock();
    if (handler) {
      try {
        handler(std::span<const std::uint8_t>(f.frame.data() + 4, f.frame.size() - 4));
      } catch (const std::exception& ex) {
        to.close(std::string("error while handling a packet: ") + ex.what());
      }
    }
    lock.lock();
  }
  if (!d.queue.empty()) schedule_delivery(pipe, dir);
  forget_if_done(*pipe);
}

std::size_t SimNetwork::Impl::queued_bytes(const End& e) const {
  std::lock_guard lock(mu);
  auto pipe = e.pipe_.lock();
  return pipe ? pipe->dir[e.side_].bytes : 0;
}

// --- closing

bool SimNetwork::Impl::Pipe::live() const {
  return !end[0]->closed() && !end[1]->closed() && !closing[0] && !closing[1];
}

void SimNetwork::Impl::close_end(End& e, const std::string& reason, bool after_flush) {
  std::lock_guard lock(mu);
  auto pipe = e.pipe_.lock();
  if (!pipe) return;
  close_locked(*pipe, e.side_, reason, after_flush);
}

// Closes one side. Its peer learns it through the pipe, behind what this side sent before, so
// not while a partition holds the frames: then when it heals, or when the peer's own tick time
// runs out. After a flush, the side itself closes once its frames have gone (when not held).
void SimNetwork::Impl::close_locked(Pipe& pipe, int side, const std::string& reason, bool after_flush) {
  End& e = *pipe.end[side];
  if (e.closed() || pipe.closing[side]) return;
  Pipe::Dir& out = pipe.dir[side];
  const bool held = link(pipe.node[0], pipe.node[1]).partitioned;
  if (!after_flush) {
    for (const auto& f : out.queue) stats.dropped += f.close_marker ? 0 : 1;
    out.queue.clear();
    out.bytes = 0;
  }
  const Clock::time_point at = out.queue.empty() ? clock->now() : out.queue.back().at;
  out.queue.push_back({at, {}, true});
  if (after_flush && !held && out.queue.size() > 1) {
    pipe.closing[side] = true;
    pipe.close_after[side] = reason;
  } else {
    finish_close(pipe, side, reason);
  }
  for (auto& p : pipes)
    if (p.get() == &pipe) {
      schedule_delivery(p, side);
      break;
    }
}

void SimNetwork::Impl::finish_close(Pipe& pipe, int side, const std::string& reason) {
  End& e = *pipe.end[side];
  if (e.closed()) return;
  e.closed_.store(true, std::memory_order_release);
  pipe.closing[side] = false;
  pipe.close_reason[side] = reason;
  e.closed_promise.set_value();
  notify_closed(e, reason);
}

void SimNetwork::Impl::forget_if_done(Pipe& pipe) {
  if (!pipe.end[0]->closed() || !pipe.end[1]->closed() || !pipe.dir[0].queue.empty() || !pipe.dir[1].queue.empty())
    return;
  pipes.erase(std::remove_if(pipes.begin(), pipes.end(), [&](const auto& p) { return p.get() == &pipe; }), pipes.end());
}

// Under the lock: tells the end's node (on the network thread) that its connection closed.
void SimNetwork::Impl::notify_closed(End& e, const std::string& reason) {
  if (!e.started || e.detached) return;
  post([end = e.shared_from_this(), reason] {
    net::FrameLink::ClosedFn fn;
    {
      std::lock_guard lock(end->net_.mu);
      fn = std::exchange(end->on_closed, nullptr);
      end->on_packet = nullptr;
    }
    if (fn) fn(reason);
  });
}

// --- faults

std::vector<std::shared_ptr<SimNetwork::Impl::Pipe>> SimNetwork::Impl::pipes_between(Atom a, Atom b) const {
  std::vector<std::shared_ptr<Pipe>> out;
  const auto k = key_of(a, b);
  for (const auto& p : pipes)
    if (key_of(p->node[0], p->node[1]) == k) out.push_back(p);
  return out;
}

void SimNetwork::Impl::partition_locked(Atom a, Atom b) {
  Link& l = link(a, b);
  if (l.partitioned) return;
  l.partitioned = true;
  const std::uint64_t epoch = ++l.epoch;
  // Each side declares the other down when its own tick time (or the heartbeat's silence limit
  // its connection was given) passes without traffic.
  for (auto& pipe : pipes_between(a, b))
    for (int side = 0; side < 2; ++side) {
      auto n = nodes.find(pipe->node[side]);
      if (n == nodes.end() || !n->second) continue;
      const auto heartbeat = std::chrono::milliseconds(pipe->end[side]->silent_after_ms.load());
      const auto limit = heartbeat.count() > 0 ? heartbeat : n->second->opts.net_ticktime;
      const std::string reason = heartbeat.count() > 0
          ? "heartbeat_timeout: nothing heard for " + std::to_string(limit.count()) + " ms"
          : "net_tick_timeout: nothing received for " + std::to_string(limit.count()) + " ms";
      post_at(clock->now() + limit, [this, pipe, side, a, b, epoch, reason] {
        std::lock_guard lock(mu);
        const Link& now = link(a, b);
        if (!now.partitioned || now.epoch != epoch) return;
        close_locked(*pipe, side, reason, false);
      });
    }
}

void SimNetwork::Impl::heal_locked(Atom a, Atom b) {
  Link& l = link(a, b);
  l.cut = false;
  if (!l.partitioned) return;
  l.partitioned = false;
  ++l.epoch;
  for (auto& pipe : pipes_between(a, b))
    for (int dir = 0; dir < 2; ++dir) schedule_delivery(pipe, dir);
}

bool SimNetwork::Impl::quiet_now() {
  {
    std::lock_guard lock(mu);
    if (!ready.empty() || running) return false;
    for (const auto& [name, node] : nodes)
      if (node && node->rt && !RuntimeInbound(*node->rt).quiet()) return false;
  }
  return clock->next_deadline() > clock->now();
}

// ------------------------------------------------------------------------------------ public API

SimNetwork::SimNetwork(std::shared_ptr<ManualClock> clock) : impl_(std::make_unique<Impl>(std::move(clock))) {}
SimNetwork::~SimNetwork() = default;

const std::shared_ptr<ManualClock>& SimNetwork::clock() const noexcept { return impl_->clock; }

void SimNetwork::cut(Atom a, Atom b) {
  std::lock_guard lock(impl_->mu);
  impl_->link(a, b).cut = true;
  for (auto& pipe : impl_->pipes_between(a, b))
    for (int side = 0; side < 2; ++side) impl_->close_locked(*pipe, side, "connection reset: link cut", false);
}

void SimNetwork::partition(Atom a, Atom b) {
  std::lock_guard lock(impl_->mu);
  impl_->partition_locked(a, b);
}

void SimNetwork::isolate(Atom a) {
  std::lock_guard lock(impl_->mu);
  for (const auto& [name, node] : impl_->nodes)
    if (name != a) impl_->partition_locked(a, name);
}

void SimNetwork::heal(Atom a, Atom b) {
  std::lock_guard lock(impl_->mu);
  impl_->heal_locked(a, b);
}

void SimNetwork::heal_all() {
  std::lock_guard lock(impl_->mu);
  std::vector<std::pair<Atom, Atom>> keys;
  for (const auto& [k, l] : impl_->links) keys.push_back(k);
  for (const auto& [a, b] : keys) impl_->heal_locked(a, b);
}

void SimNetwork::delay(Atom a, Atom b, Clock::duration d) {
  std::lock_guard lock(impl_->mu);
  impl_->link(a, b).delay = d;
}

void SimNetwork::drop_next(Atom from, Atom to, std::size_t frames) {
  std::lock_guard lock(impl_->mu);
  impl_->link(from, to).drops[key_of(from, to).first == from ? 0 : 1] += frames;
}

bool SimNetwork::connected(Atom a, Atom b) const {
  std::lock_guard lock(impl_->mu);
  for (const auto& pipe : impl_->pipes_between(a, b))
    if (pipe->live()) return true;
  return false;
}

std::size_t SimNetwork::in_flight() const {
  std::lock_guard lock(impl_->mu);
  std::size_t n = 0;
  for (const auto& pipe : impl_->pipes)
    for (const auto& d : pipe->dir)
      for (const auto& f : d.queue) n += f.close_marker ? 0 : 1;
  return n;
}

SimStats SimNetwork::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

bool SimNetwork::settle(std::chrono::milliseconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  // Quiet three looks in a row: a worker between two processes, or the network thread between
  // two actions, is not mistaken for the end.
  for (int calm = 0; calm < 3;) {
    if (impl_->quiet_now()) {
      ++calm;
    } else {
      calm = 0;
      if (std::chrono::steady_clock::now() > give_up) return false;
    }
    std::this_thread::yield();
  }
  return true;
}

bool SimNetwork::advance(Clock::duration d) {
  const Clock::time_point target = impl_->clock->now() + d;
  if (!settle()) return false;
  for (Clock::time_point next = impl_->clock->next_deadline(); next <= target; next = impl_->clock->next_deadline()) {
    impl_->clock->set(next);
    if (!settle()) return false;
  }
  impl_->clock->set(target);
  return settle();
}

bool SimNetwork::run_until(const std::function<bool()>& pred, Clock::duration limit) {
  const Clock::time_point end = impl_->clock->now() + limit;
  if (!settle()) return false;
  while (!pred()) {
    const Clock::time_point next = impl_->clock->next_deadline();
    if (next > end) {
      impl_->clock->set(end);
      return settle() && pred();
    }
    impl_->clock->set(next);
    if (!settle()) return false;
  }
  return true;
}

}  // namespace hypha
