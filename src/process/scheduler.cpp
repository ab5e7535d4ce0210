#include "scheduler.hpp"

#include <chrono>

namespace hypha::detail {

namespace {
// How long frames may be held in a chain of next-slot runs (see loop()).
constexpr int kMaxChain = 8;
constexpr auto kMaxChainTime = std::chrono::microseconds(20);
thread_local void* tl_scheduler = nullptr;
thread_local void* tl_worker = nullptr;
}  // namespace

Scheduler::Scheduler(unsigned threads, std::chrono::microseconds idle_spin, RunFn run, bool track_busy)
    : run_(std::move(run)), idle_spin_(idle_spin), track_busy_(track_busy) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->thread = std::thread([this, wp] { loop(*wp); });
  }
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::stop() {
  if (stop_.exchange(true)) return;
  {
    std::lock_guard lock(global_mu_);
    idle_cv_.notify_all();
  }
  if (IoPoller* p = poller_.load()) p->interrupt();
  {
    std::lock_guard lock(wd_mu_);
    wd_cv_.notify_all();
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  if (watchdog_.joinable()) watchdog_.join();
}

void Scheduler::set_poller(IoPoller* poller) {
  if (poller) {
    poller_.store(poller);
    if (!watchdog_.joinable()) watchdog_ = std::thread([this] { watchdog(); });
    return;
  }
  IoPoller* old = poller_.exchange(nullptr);
  if (!old) return;
  {
    std::lock_guard lock(wd_mu_);
    wd_cv_.notify_all();
  }
  if (watchdog_.joinable()) watchdog_.join();
  // A worker may be inside the old poller: interrupt its wait until it lets the token go.
  while (!poll_token_.try_lock()) {
    old->interrupt();
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  poll_token_.unlock();
}

void Scheduler::schedule(ProcessCore* p) {
  if (track_busy_) busy_.fetch_add(1, std::memory_order_acq_rel);
  if (tl_scheduler == this) {
    auto* w = static_cast<Worker*>(tl_worker);
    ProcessCore* previous = w->next;
    w->next = p;
    if (!previous) return;
    {
      std::lock_guard lock(w->mu);
      w->queue.push_back(previous);
    }
    queued_.fetch_add(1);
    if (sleeping_.load() > 0) {
      wake_one();
    } else if (poller_waiting_.load()) {
      if (IoPoller* io = poller_.load()) io->interrupt();
    }
    return;
  }
  {
    std::lock_guard lock(global_mu_);
    global_.push_back(p);
    queued_.fetch_add(1);
  }
  // A spinning worker will take it; wake a sleeper only when none spins. A spinner that stops
  // right now checks the queue under global_mu_ before it sleeps, so nothing is missed; a worker
  // about to wait on I/O checks the queue after saying so (both sides sequentially consistent).
  if (spinning_.load() > 0) return;
  if (sleeping_.load() > 0) {
    std::lock_guard lock(global_mu_);
    idle_cv_.notify_one();
  } else if (poller_waiting_.load()) {
    if (IoPoller* io = poller_.load()) io->interrupt();
  }
}

void Scheduler::schedule_many(std::span<ProcessCore* const> ps) {
  if (ps.empty()) return;
  if (track_busy_) busy_.fetch_add(ps.size(), std::memory_order_acq_rel);
  if (tl_scheduler == this) {
    auto* w = static_cast<Worker*>(tl_worker);
    {
      std::lock_guard lock(w->mu);
      w->queue.insert(w->queue.end(), ps.begin(), ps.end());
    }
    queued_.fetch_add(ps.size());
  } else {
    std::lock_guard lock(global_mu_);
    global_.insert(global_.end(), ps.begin(), ps.end());
    queued_.fetch_add(ps.size());
  }
  if (sleeping_.load() > 0) {
    std::lock_guard lock(global_mu_);
    idle_cv_.notify_all();
  } else if (poller_waiting_.load()) {
    if (IoPoller* io = poller_.load()) io->interrupt();
  }
}

void Scheduler::wake_one() {
  std::lock_guard lock(global_mu_);
  idle_cv_.notify_one();
}

bool Scheduler::poll_io(Worker& w) {
  if (!poller_.load(std::memory_order_acquire) || !poll_token_.try_lock()) return false;
  IoPoller* io = poller_.load();  // again under the token: set_poller(nullptr) takes it to detach
  if (!io) {
    poll_token_.unlock();
    return false;
  }
  last_poll_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  // What the I/O handlers send is corked too: it leaves when they are done, or, when a message
  // they delivered made a process of this worker runnable, together with what that process sends
  // (an rpc's spawn reply and its result in one write).
  auto run_io = [&](bool block) {
    io->batch_begin(false);
    if (block)
      io->wait();
    else
      io->poll();
    if (!w.next) io->batch_end();
  };
  run_io(false);
  // Spin on the poller a little before blocking in it (when no other worker spins): a reply that
  // comes within idle_spin is taken without the wake-up of a sleeping thread.
  if (!w.next && queued_.load() == 0 && idle_spin_.count() > 0) {
    if (spinning_.fetch_add(1) == 0) {
      const auto spin_until = std::chrono::steady_clock::now() + idle_spin_;
      while (!w.next && queued_.load() == 0 && !stop_.load() && std::chrono::steady_clock::now() < spin_until)
        run_io(false);
    }
    spinning_.fetch_sub(1);
  }
  if (!w.next && queued_.load() == 0 && !stop_.load()) {
    poller_waiting_.store(true);
    if (queued_.load() == 0 && !stop_.load() && poller_.load()) run_io(true);
    poller_waiting_.store(false);
    last_poll_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    if (wd_parked_.load()) {
      std::lock_guard lock(wd_mu_);
      wd_cv_.notify_one();
    }
  }
  poll_token_.unlock();
  return true;
}

// Polls for the workers while they are all busy (no poll for a millisecond). It parks while a
// worker waits on I/O, and once woken stays on its timer for a while (100 ms), so a busy node
// wakes it at most a few times a second and an idle one not at all.
void Scheduler::watchdog() {
  using namespace std::chrono;
  const auto period = duration_cast<steady_clock::duration>(milliseconds(1)).count();
  auto timed_until = steady_clock::now() + milliseconds(100);
  std::unique_lock lock(wd_mu_);
  while (!stop_.load() && poller_.load()) {
    if (steady_clock::now() >= timed_until && poller_waiting_.load()) {
      wd_parked_.store(true);
      wd_cv_.wait(lock, [&] { return stop_.load() || !poller_.load() || !poller_waiting_.load(); });
      wd_parked_.store(false);
      timed_until = steady_clock::now() + milliseconds(100);
      continue;
    }
    wd_cv_.wait_for(lock, milliseconds(1));
    if (poller_waiting_.load()) continue;  // a worker runs the I/O
    const auto now = steady_clock::now().time_since_epoch().count();
    if (now - last_poll_.load(std::memory_order_relaxed) < period) continue;
    lock.unlock();
    if (poll_token_.try_lock()) {
      if (IoPoller* io = poller_.load()) {
        last_poll_.store(now, std::memory_order_relaxed);
        io->poll();
      }
      poll_token_.unlock();
      // A worker that went idle while this thread held the token slept instead of waiting on
      // I/O: wake it to take that role back.
      if (sleeping_.load() > 0 && !poller_waiting_.load()) {
        std::lock_guard g(global_mu_);
        poller_wanted_ = true;
        idle_cv_.notify_one();
      }
    }
    lock.lock();
  }
}

ProcessCore* Scheduler::find_work(Worker& w) {
  if (ProcessCore* p = std::exchange(w.next, nullptr)) return p;
  if (queued_.load(std::memory_order_acquire) == 0) return nullptr;
  {
    std::lock_guard lock(w.mu);
    if (!w.queue.empty()) {
      ProcessCore* p = w.queue.front();
      w.queue.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
      return p;
    }
  }
  {
    std::lock_guard lock(global_mu_);
    if (!global_.empty()) {
      ProcessCore* p = global_.front();
      global_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
      return p;
    }
  }
  for (auto& other : workers_) {
    if (other.get() == &w) continue;
    std::lock_guard lock(other->mu);
    if (!other->queue.empty()) {
      ProcessCore* p = other->queue.back();
      other->queue.pop_back();
      queued_.fetch_sub(1, std::memory_order_relaxed);
      return p;
    }
  }
  return nullptr;
}

void Scheduler::run_one(ProcessCore* p) {
  run_(p);
  if (track_busy_) busy_.fetch_sub(1, std::memory_order_acq_rel);
}

void Scheduler::loop(Worker& w) {
  tl_scheduler = this;
  tl_worker = &w;
  while (!stop_.load(std::memory_order_acquire)) {
    if (ProcessCore* p = find_work(w)) {
      IoPoller* io = poller_.load(std::memory_order_acquire);
      if (!io) {
        run_one(p);
        continue;
      }
      // What a process sends to other nodes is held until the batch ends. When the run made
      // another process runnable on this worker (the next slot: a local call's server, the
      // caller it replies to), that one runs inside the same batch, for a bounded chain, so a
      // request and what answering it sends leave in one write (a task's demonitor, its result
      // and its exit signal), not one write per process run.
      io->batch_begin(true);
      const auto opened = std::chrono::steady_clock::now();
      run_one(p);
      for (int chained = 0; w.next && chained < kMaxChain && !stop_.load(std::memory_order_relaxed) &&
                            std::chrono::steady_clock::now() - opened < kMaxChainTime;
           ++chained)
        run_one(std::exchange(w.next, nullptr));
      io->batch_end();
      continue;
    }
    if (poll_io(w)) continue;
    // One idle worker at a time spins a little before sleeping: waking a sleeping thread costs
    // several microseconds and a reply often arrives within that time (BEAM schedulers spin too).
    // More spinners would only take CPU from the threads doing the work.
    if (idle_spin_.count() > 0) {
      if (spinning_.fetch_add(1, std::memory_order_acq_rel) == 0) {
        const auto spin_until = std::chrono::steady_clock::now() + idle_spin_;
        bool found = false;
        while (!found && std::chrono::steady_clock::now() < spin_until) {
          std::this_thread::yield();
          found = queued_.load(std::memory_order_acquire) > 0;
        }
        spinning_.fetch_sub(1, std::memory_order_acq_rel);
        if (found) continue;
      } else {
        spinning_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
    std::unique_lock lock(global_mu_);
    sleeping_.fetch_add(1, std::memory_order_acq_rel);
    idle_cv_.wait(lock, [&] {
      return stop_.load(std::memory_order_acquire) || queued_.load(std::memory_order_acquire) > 0 || poller_wanted_;
    });
    poller_wanted_ = false;
    sleeping_.fetch_sub(1, std::memory_order_acq_rel);
  }
  tl_scheduler = nullptr;
  tl_worker = nullptr;
}

}  // namespace hypha::detail
