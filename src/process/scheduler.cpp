#include "scheduler.hpp"

#include <chrono>

namespace hypha::detail {

namespace {
thread_local void* tl_scheduler = nullptr;
thread_local void* tl_worker = nullptr;
}  // namespace

Scheduler::Scheduler(unsigned threads, std::chrono::microseconds idle_spin, RunFn run)
    : run_(std::move(run)), idle_spin_(idle_spin) {
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
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

void Scheduler::schedule(ProcessCore* p) {
  if (tl_scheduler == this) {
    auto* w = static_cast<Worker*>(tl_worker);
    ProcessCore* previous = w->next;
    w->next = p;
    if (!previous) return;
    {
      std::lock_guard lock(w->mu);
      w->queue.push_back(previous);
    }
    queued_.fetch_add(1, std::memory_order_release);
    if (sleeping_.load(std::memory_order_acquire) > 0) wake_one();
    return;
  }
  {
    std::lock_guard lock(global_mu_);
    global_.push_back(p);
    queued_.fetch_add(1, std::memory_order_release);
  }
  // A spinning worker will take it; wake a sleeper only when none spins. A spinner that stops
  // right now checks the queue under global_mu_ before it sleeps, so nothing is missed.
  if (spinning_.load(std::memory_order_acquire) == 0 && sleeping_.load(std::memory_order_acquire) > 0)
    idle_cv_.notify_one();
}

void Scheduler::wake_one() {
  std::lock_guard lock(global_mu_);
  idle_cv_.notify_one();
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

void Scheduler::loop(Worker& w) {
  tl_scheduler = this;
  tl_worker = &w;
  while (!stop_.load(std::memory_order_acquire)) {
    if (ProcessCore* p = find_work(w)) {
      run_(p);
      continue;
    }
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
      return stop_.load(std::memory_order_acquire) || queued_.load(std::memory_order_acquire) > 0;
    });
    sleeping_.fetch_sub(1, std::memory_order_acq_rel);
  }
  tl_scheduler = nullptr;
  tl_worker = nullptr;
}

}  // namespace hypha::detail
