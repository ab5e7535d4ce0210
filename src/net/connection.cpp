#include "hypha/net/connection.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>

#include "bytes.hpp"
#include "hypha/base/log.hpp"

namespace hypha::net {

using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {
thread_local bool tl_corked = false;
thread_local bool tl_may_wait = false;
thread_local std::vector<std::shared_ptr<DistConnection>> tl_corked_conns;
}  // namespace

DistConnection::DistConnection(asio::ip::tcp::socket sock, std::chrono::milliseconds ticktime,
                               ConnectionLimits limits)
    : sock_(std::move(sock)), tick_timer_(sock_.get_executor()), ticktime_(ticktime), limits_(limits) {
  asio::error_code ec;
  sock_.set_option(asio::ip::tcp::no_delay(true), ec);
  last_read_ = Clock::now();
  last_write_ = last_read_.time_since_epoch().count();
}

void DistConnection::start(PacketFn on_packet, ClosedFn on_closed) {
  on_packet_ = std::move(on_packet);
  on_closed_ = std::move(on_closed);
  auto self = shared_from_this();
  asio::co_spawn(sock_.get_executor(), [self]() { return self->read_loop(); }, asio::detached);
  asio::co_spawn(sock_.get_executor(), [self]() { return self->tick_loop(); }, asio::detached);
}

namespace {
std::atomic<std::size_t> g_partial{0};
constexpr std::size_t kReadBuffer = 1024 * 1024;

// A read buffer's bytes beyond kReadBuffer, counted in g_partial while it lives.
struct ReadBuffer {
  Frame bytes = Frame(kReadBuffer);
  ~ReadBuffer() { g_partial.fetch_sub(bytes.size() - kReadBuffer); }
  // Grows to `size` if the process-wide cap allows; the first `keep` bytes are kept.
  bool grow(std::size_t size, std::size_t keep, std::size_t cap) {
    const std::size_t extra = size - bytes.size();
    if (g_partial.fetch_add(extra) + extra > cap) {
      g_partial.fetch_sub(extra);
      return false;
    }
    Frame bigger(size);
    std::copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep), bigger.begin());
    bytes.swap(bigger);
    return true;
  }
  void shrink() {
    if (bytes.size() == kReadBuffer) return;
    g_partial.fetch_sub(bytes.size() - kReadBuffer);
    Frame(kReadBuffer).swap(bytes);
  }
};
}  // namespace

std::size_t partial_frame_bytes() noexcept { return g_partial.load(); }

// Reads into one 1 MiB buffer and hands out every complete frame in it, so a burst of small messages
// costs one system call, not two per message; frames are passed without copying. A frame larger
// than the buffer makes it grow with the bytes that arrive (doubling, up to the frame's size).
asio::awaitable<void> DistConnection::read_loop() {
  auto self = shared_from_this();
  ReadBuffer rb;
  Frame& buf = rb.bytes;
  std::size_t begin = 0, end = 0;  // unconsumed bytes: buf[begin, end)
  for (;;) {
    // Hand out complete frames.
    while (end - begin >= 4) {
      const std::size_t len = get32(&buf[begin]);
      if (len > limits_.max_frame) {
        shut("frame of " + std::to_string(len) + " bytes exceeds the limit of " + std::to_string(limits_.max_frame));
        co_return;
      }
      if (end - begin < 4 + len) {
        if (partial_since_.load(std::memory_order_relaxed) == 0)
          partial_since_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        if (4 + len > buf.size()) {
          if (begin > 0) {  // the frame to the front, then grow once what arrived fills the buffer
            std::copy(buf.begin() + static_cast<std::ptrdiff_t>(begin), buf.begin() + static_cast<std::ptrdiff_t>(end),
                      buf.begin());
            end -= begin;
            begin = 0;
          }
          if (end == buf.size() && !rb.grow(std::min(4 + len, buf.size() * 2), end, limits_.max_partial_total)) {
            shut("frame of " + std::to_string(len) + " bytes refused: partial frames of all connections hold " +
                 std::to_string(partial_frame_bytes()) + " bytes, the limit is " +
                 std::to_string(limits_.max_partial_total));
            co_return;
          }
        }
        break;
      }
      partial_since_.store(0, std::memory_order_relaxed);
      const std::span<const std::uint8_t> frame(&buf[begin + 4], len);
      begin += 4 + len;
      bytes_in_.fetch_add(4 + len, std::memory_order_relaxed);
      if (len == 0) continue;  // a tick
      messages_in_.fetch_add(1, std::memory_order_relaxed);
      if (closed()) co_return;
      // Whatever a handler throws closes this connection only: it never reaches the I/O loop.
      try {
        on_packet_(frame);
      } catch (const std::exception& e) {
        shut(std::string("error while handling a packet: ") + e.what());
        co_return;
      }
    }
    if (begin == end) {
      begin = end = 0;
      rb.shrink();  // a large frame's memory goes back once it has been handled
    } else if (buf.size() - end < 4096 || begin > buf.size() / 2) {
      std::copy(buf.begin() + static_cast<std::ptrdiff_t>(begin), buf.begin() + static_cast<std::ptrdiff_t>(end), buf.begin());
      end -= begin;
      begin = 0;
    }
    // Silence counts while this side waits for bytes, not while it handles what came.
    last_read_ = Clock::now();
    asio::error_code ec;
    const std::size_t n = co_await sock_.async_read_some(asio::buffer(&buf[end], buf.size() - end),
                                                        asio::redirect_error(use_awaitable, ec));
    if (ec) {
      shut(ec == asio::error::eof ? "connection closed by peer" : "read error: " + ec.message());
      co_return;
    }
    end += n;
    last_read_ = Clock::now();
  }
}

asio::awaitable<void> DistConnection::tick_loop() {
  using std::chrono::milliseconds;
  auto self = shared_from_this();
  while (!closed()) {
    // The tick time's rule (as OTP: a tick each quarter, down after a whole one of silence), or
    // the faster one liveness() set, which declares the peer down within silent_after.
    const auto every_ms = tick_every_ms_.load(std::memory_order_relaxed);
    const auto silent_ms = silent_after_ms_.load(std::memory_order_relaxed);
    // A pace asked for by liveness() is kept within half a period (the loop wakes twice per one).
    const milliseconds quarter = std::max(ticktime_ / 4, milliseconds(1));
    const milliseconds send_every = every_ms > 0 ? milliseconds(every_ms) : quarter;
    milliseconds interval = every_ms > 0 ? std::min(send_every / 2, quarter) : quarter, limit = ticktime_;
    if (silent_ms > 0) {
      interval = std::min(interval, milliseconds(silent_ms / 6));
      limit = milliseconds(silent_ms) - interval;
    }
    interval = std::max(interval, milliseconds(1));
    tick_timer_.expires_after(interval);
    asio::error_code ec;
    co_await tick_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (closed()) co_return;
    if (ec == asio::error::operation_aborted) continue;  // liveness() changed the pace
    const auto now = Clock::now();
    if (now - last_read_ > limit) {
      // Bytes that wait unread mean the peer spoke and this side was slow (it was stopped, or
      // busy): the peer is not silent.
      asio::error_code aec;
      if (sock_.available(aec) > 0 && !aec) {
        last_read_ = now;
      } else if (silent_ms > 0) {
        shut("heartbeat_timeout: nothing heard for " + std::to_string(silent_ms) + " ms");
        co_return;
      } else {
        shut("net_tick_timeout: nothing received for " + std::to_string(ticktime_.count()) + " ms");
        co_return;
      }
    }
    // Bytes that trickle in keep last_read_ fresh: a frame that stays incomplete is cut too.
    const auto partial = partial_since_.load(std::memory_order_relaxed);
    if (partial != 0 && now - Clock::time_point(Clock::duration(partial)) > ticktime_) {
      shut("partial frame stalled: incomplete for more than " + std::to_string(ticktime_.count()) + " ms");
      co_return;
    }
    if (now - Clock::time_point(Clock::duration(last_write_.load())) >= send_every) send(Frame(4, 0));
  }
}

void DistConnection::liveness(std::chrono::milliseconds tick_every, std::chrono::milliseconds silent_after) {
  tick_every_ms_.store(tick_every.count(), std::memory_order_relaxed);
  silent_after_ms_.store(silent_after.count(), std::memory_order_relaxed);
  auto self = shared_from_this();
  asio::post(sock_.get_executor(), [self] { self->tick_timer_.cancel(); });  // re-paced at once
}

bool DistConnection::send(Frame frame) {
  const std::size_t size = frame.size();
  if (!queue(std::move(frame))) return false;
  bytes_out_.fetch_add(size, std::memory_order_relaxed);
  if (size > 4) messages_out_.fetch_add(1, std::memory_order_relaxed);  // not a tick
  return true;
}

ConnectionStats DistConnection::stats() const noexcept {
  return {messages_in_.load(std::memory_order_relaxed), messages_out_.load(std::memory_order_relaxed),
          bytes_in_.load(std::memory_order_relaxed), bytes_out_.load(std::memory_order_relaxed)};
}

bool DistConnection::queue(Frame frame) {
  if (closed()) return false;
  bool start = false, over_limit = false;
  {
    std::unique_lock lock(mu_);
    if (closed()) return false;
    if (tl_corked && !writing_ && pending_bytes_ + frame.size() <= limits_.max_queued) {
      // Held until this thread uncorks; a burst goes out once a quarter of the queue limit (at
      // most kCorkedBytes) waits, so corking never fills the queue by itself.
      pending_bytes_ += frame.size();
      pending_.push_back(std::move(frame));
      auto self = shared_from_this();
      if (std::find(tl_corked_conns.begin(), tl_corked_conns.end(), self) == tl_corked_conns.end())
        tl_corked_conns.push_back(std::move(self));
      if (pending_bytes_ < std::min(kCorkedBytes, limits_.max_queued / 4)) return true;
      start = write_direct_locked(lock);
    } else {
      // Fast path: nothing queued and no write in flight, so write from this thread now without
      // waking the I/O thread (see write_direct_locked). Up to a few small
      // frames per 20 us window go out so (a call's request and its monitor, a reply), which keeps
      // round trips free of thread wake-ups; past that it is a burst, and frames queue and go out
      // in batches. A large frame is worth its own system call even in a burst.
      const auto now = Clock::now().time_since_epoch().count();
      const auto window = std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(20)).count();
      if (now - window_start_ > window) {
        window_start_ = now;
        direct_in_window_ = 0;
      }
      const bool large = frame.size() >= 8192;
      if (!writing_ && pending_.empty() && (large || direct_in_window_ < kDirectPerWindow)) {
        ++direct_in_window_;
        pending_bytes_ += frame.size();
        pending_.push_back(std::move(frame));
        start = write_direct_locked(lock);
      } else if (pending_bytes_ + frame.size() > limits_.max_queued &&
          !(tl_may_wait && wait_for_room_locked(lock, frame.size()))) {
        if (closed()) return false;
        over_limit = true;
      } else {
        pending_bytes_ += frame.size();
        pending_.push_back(std::move(frame));
        start = !std::exchange(writing_, true);
      }
    }
  }
  if (over_limit) {
    close("send queue over " + std::to_string(limits_.max_queued) + " bytes: peer not keeping up");
    return false;
  }
  if (start) {
    auto self = shared_from_this();
    asio::post(sock_.get_executor(), [self] { self->write_next(); });
  }
  return true;
}

void DistConnection::preload(std::vector<Frame> frames) {
  std::lock_guard lock(mu_);
  for (auto& f : frames) {
    pending_bytes_ += f.size();
    bytes_out_.fetch_add(f.size(), std::memory_order_relaxed);
    messages_out_.fetch_add(1, std::memory_order_relaxed);
    pending_.push_back(std::move(f));
  }
}

void DistConnection::cork(bool may_wait) noexcept {
  tl_corked = true;
  tl_may_wait = may_wait;
}

void DistConnection::uncork() {
  tl_corked = false;
  tl_may_wait = false;
  if (tl_corked_conns.empty()) return;
  for (auto& c : tl_corked_conns) c->flush();
  tl_corked_conns.clear();
}

// Writes what corked senders queued with one gathered system call; what the socket does not
// take now (or an error) goes to the I/O thread's writer.
void DistConnection::flush() {
  bool start = false;
  {
    std::unique_lock lock(mu_);
    if (closed() || writing_ || pending_.empty()) return;
    start = write_direct_locked(lock);
  }
  if (start) {
    auto self = shared_from_this();
    asio::post(sock_.get_executor(), [self] { self->write_next(); });
  }
}

// With mu_ held (through `lock`), no writer and frames queued: this thread becomes the writer and
// writes the queue with gathered system calls made with mu_ released, so that other senders are
// not held on the lock meanwhile: they append, and what they append goes out in the next round.
// Returns with mu_ held; true when frames are left (the socket is full, or an error waits to be
// reported) and the I/O thread's writer must go on (writing_ stays set).
bool DistConnection::write_direct_locked(std::unique_lock<std::mutex>& lock) {
  thread_local std::vector<Frame> batch;
  writing_ = true;
  direct_writer_ = true;
  bool left_over = false;
  for (int round = 0; round < kDirectRounds && !pending_.empty() && !closed() && !left_over; ++round) {
    std::array<iovec, 64> iov;
    while (!pending_.empty() && batch.size() < iov.size()) {
      pending_bytes_ -= pending_.front().size();
      batch.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
    drained_.notify_all();
    for (std::size_t i = 0; i < batch.size(); ++i) iov[i] = iovec{batch[i].data(), batch[i].size()};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = batch.size();
    const int fd = sock_.native_handle();  // shut() leaves it open while direct_writer_ is set
    lock.unlock();
    const ssize_t written = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    lock.lock();
    last_write_ = Clock::now().time_since_epoch().count();
    // Drop what was written; what was not goes back to the front of the queue, in order.
    auto left = static_cast<std::size_t>(std::max<ssize_t>(written, 0));
    std::size_t done = 0;
    while (done < batch.size() && left >= batch[done].size()) left -= batch[done++].size();
    if (done < batch.size()) {
      if (left > 0) batch[done].erase(batch[done].begin(), batch[done].begin() + static_cast<std::ptrdiff_t>(left));
      for (std::size_t k = batch.size(); k-- > done;) {
        pending_bytes_ += batch[k].size();
        pending_.push_front(std::move(batch[k]));
      }
      left_over = true;
    }
    batch.clear();
  }
  direct_writer_ = false;
  if (closed()) {
    writing_ = false;
    if (std::exchange(close_deferred_, false)) {
      auto self = shared_from_this();
      asio::post(sock_.get_executor(), [self] {
        std::lock_guard l(self->mu_);
        asio::error_code ec;
        self->sock_.close(ec);
      });
    }
    return false;
  }
  if (!pending_.empty()) return true;
  writing_ = false;
  if (auto reason = std::exchange(close_when_drained_, std::nullopt)) close(*reason);
  return false;
}

// Under mu_, for a process sender that found the queue full: waits (the process is held in its
// send, as on a busy distribution port in BEAM) until `bytes` more fit, or nothing is queued;
// false when the connection closed or no room came within max_send_wait.
bool DistConnection::wait_for_room_locked(std::unique_lock<std::mutex>& lock, std::size_t bytes) {
  const auto deadline = Clock::now() + limits_.max_send_wait;
  auto has_room = [&] { return pending_bytes_ == 0 || pending_bytes_ + bytes <= limits_.max_queued; };
  while (!closed() && !has_room()) {
    if (!writing_) {
      // Frames this thread corked are held with no writer: write them now.
      if (write_direct_locked(lock)) {
        auto self = shared_from_this();
        asio::post(sock_.get_executor(), [self] { self->write_next(); });
      }
      continue;
    }
    if (drained_.wait_until(lock, deadline) == std::cv_status::timeout && !closed() && !has_room()) return false;
  }
  return !closed();
}

void DistConnection::write_next() {
  std::vector<asio::const_buffer> bufs;
  std::optional<std::string> drained_close;
  {
    std::lock_guard lock(mu_);
    inflight_.clear();
    if (!pending_.empty()) drained_.notify_all();
    while (!pending_.empty()) {
      pending_bytes_ -= pending_.front().size();
      inflight_.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
    if (inflight_.empty() || closed()) {
      writing_ = false;
      drained_close = close_when_drained_;
    }
  }
  if (!writing_now(bufs, drained_close)) return;
  last_write_ = Clock::now().time_since_epoch().count();
  auto self = shared_from_this();
  asio::async_write(sock_, bufs, [self](const asio::error_code& ec, std::size_t) {
    if (ec) {
      self->shut("write error: " + ec.message());
      return;
    }
    self->write_next();
  });
}

// After write_next() took the queue: false (and the drained close, if one waits) when nothing is left.
bool DistConnection::writing_now(std::vector<asio::const_buffer>& bufs, const std::optional<std::string>& drained_close) {
  if (inflight_.empty() || closed()) {
    if (drained_close && !closed()) shut(*drained_close);
    return false;
  }
  bufs.reserve(inflight_.size());
  for (const auto& f : inflight_) bufs.emplace_back(asio::buffer(f));
  return true;
}

bool DistConnection::wait_queue_below(std::size_t bytes, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return drained_.wait_until(lock, deadline, [&] { return closed() || pending_bytes_ <= bytes; }) && !closed();
}

std::size_t DistConnection::queued_bytes() const {
  std::lock_guard lock(mu_);
  return pending_bytes_;
}

void DistConnection::close(const std::string& reason) {
  auto self = shared_from_this();
  asio::post(sock_.get_executor(), [self, reason] { self->shut(reason); });
}

void DistConnection::close_after_flush(const std::string& reason) {
  auto self = shared_from_this();
  asio::post(sock_.get_executor(), [self, reason] {
    {
      std::lock_guard lock(self->mu_);
      if (self->writing_ || !self->pending_.empty()) {
        self->close_when_drained_ = reason;
        return;
      }
    }
    self->shut(reason);
  });
}

void DistConnection::shut(const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    if (closed_.exchange(true, std::memory_order_acq_rel)) return;
    asio::error_code ec;
    sock_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    // A sender writing with mu_ released still uses the descriptor: it closes it when done (a
    // descriptor closed now could be reused by another socket before its system call).
    if (direct_writer_)
      close_deferred_ = true;
    else
      sock_.close(ec);
    drained_.notify_all();
  }
  tick_timer_.cancel();
  if (on_closed_) {
    try {
      on_closed_(reason);
    } catch (const std::exception& e) {
      log::event(log::Level::Error, "", "connection_closed_handler_failed", {{"reason", reason}, {"error", e.what()}});
    }
  }
  closed_promise_.set_value();
}

}  // namespace hypha::net
