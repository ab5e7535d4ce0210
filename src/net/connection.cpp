#include "hypha/net/connection.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "bytes.hpp"

namespace hypha::net {

using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

DistConnection::DistConnection(asio::ip::tcp::socket sock, std::chrono::milliseconds ticktime,
                               ConnectionLimits limits)
    : sock_(std::move(sock)), tick_timer_(sock_.get_executor()), ticktime_(ticktime), limits_(limits) {
  asio::error_code ec;
  sock_.set_option(asio::ip::tcp::no_delay(true), ec);
  last_read_ = last_write_ = Clock::now();
}

void DistConnection::start(PacketFn on_packet, ClosedFn on_closed) {
  on_packet_ = std::move(on_packet);
  on_closed_ = std::move(on_closed);
  auto self = shared_from_this();
  asio::co_spawn(sock_.get_executor(), [self]() { return self->read_loop(); }, asio::detached);
  asio::co_spawn(sock_.get_executor(), [self]() { return self->tick_loop(); }, asio::detached);
}

asio::awaitable<void> DistConnection::read_loop() {
  auto self = shared_from_this();
  std::vector<std::uint8_t> body;
  std::array<std::uint8_t, 4> head;
  for (;;) {
    asio::error_code ec;
    co_await asio::async_read(sock_, asio::buffer(head), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      shut(ec == asio::error::eof ? "connection closed by peer" : "read error: " + ec.message());
      co_return;
    }
    last_read_ = Clock::now();
    const std::size_t len = get32(head.data());
    if (len == 0) continue;  // tick
    if (len > limits_.max_frame) {
      shut("frame of " + std::to_string(len) + " bytes exceeds the limit of " + std::to_string(limits_.max_frame));
      co_return;
    }
    body.resize(len);
    co_await asio::async_read(sock_, asio::buffer(body), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      shut("read error: " + ec.message());
      co_return;
    }
    last_read_ = Clock::now();
    if (closed()) co_return;
    on_packet_(body);
  }
}

asio::awaitable<void> DistConnection::tick_loop() {
  auto self = shared_from_this();
  const auto interval = std::max(ticktime_ / 4, std::chrono::milliseconds(1));
  while (!closed()) {
    tick_timer_.expires_after(interval);
    asio::error_code ec;
    co_await tick_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (closed()) co_return;
    const auto now = Clock::now();
    if (now - last_read_ > ticktime_) {
      shut("net_tick_timeout: nothing received for " + std::to_string(ticktime_.count()) + " ms");
      co_return;
    }
    if (now - last_write_ >= interval) send(std::vector<std::uint8_t>(4, 0));
  }
}

bool DistConnection::send(std::vector<std::uint8_t> frame) {
  if (closed()) return false;
  bool start = false;
  {
    std::lock_guard lock(mu_);
    pending_bytes_ += frame.size();
    if (pending_bytes_ > limits_.max_queued) {
      pending_bytes_ -= frame.size();
      start = false;
    } else {
      pending_.push_back(std::move(frame));
      start = !std::exchange(writing_, true);
      frame.clear();
    }
  }
  if (!frame.empty()) {
    close("send queue over " + std::to_string(limits_.max_queued) + " bytes: peer not keeping up");
    return false;
  }
  if (start) {
    auto self = shared_from_this();
    asio::post(sock_.get_executor(), [self] { self->write_next(); });
  }
  return true;
}

void DistConnection::write_next() {
  std::vector<asio::const_buffer> bufs;
  std::optional<std::string> drained_close;
  {
    std::lock_guard lock(mu_);
    inflight_.clear();
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
  last_write_ = Clock::now();
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
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  asio::error_code ec;
  sock_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  sock_.close(ec);
  tick_timer_.cancel();
  if (on_closed_) on_closed_(reason);
  closed_promise_.set_value();
}

}  // namespace hypha::net
