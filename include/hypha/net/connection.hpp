// DistConnection: one established distribution connection (after the handshake). It frames
// packets with a 4-byte length, batches queued frames into few writes, sends ticks when idle and
// declares the peer dead when nothing arrives for the tick time (net_ticktime), as OTP does.
//
// Limits and backpressure: a frame longer than max_frame closes the connection (the peer is
// broken or hostile). Memory follows the bytes received, not the length announced: a large
// frame's buffer doubles as its bytes arrive, the extra memory of all connections is capped
// (max_partial_total), and a frame still incomplete after the tick time closes the connection. Frames wait in an outgoing queue while the socket is busy. A process that
// sends past max_queued bytes is held in its send until the queue has room again, as BEAM
// suspends a sender on a busy distribution port; if no room comes within max_send_wait, or the
// sender cannot be held (an I/O handler, a plain thread), the peer is not keeping up and the
// connection is closed: the node then reports nodedown/noconnection to everything that depends
// on the peer, exactly as if the network had failed, instead of growing memory without bound.
//
// send() and close() may be called from any thread; the callbacks run on whichever thread runs
// the io_context (the node's workers, one at a time).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/buffer.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <condition_variable>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hypha/net/link.hpp"

namespace hypha::net {

struct ConnectionLimits {
  std::size_t max_frame = 64u << 20;
  std::size_t max_queued = 64u << 20;
  // How long a process sender is held for room in a full queue before the connection is closed.
  std::chrono::milliseconds max_send_wait = std::chrono::seconds(5);
  // Bytes that read buffers may hold beyond their first MiB, over all connections of the process.
  std::size_t max_partial_total = 256u << 20;
};

// Bytes read buffers hold beyond their first MiB right now, over all connections.
std::size_t partial_frame_bytes() noexcept;

class DistConnection final : public FrameLink, public std::enable_shared_from_this<DistConnection> {
 public:

  DistConnection(asio::ip::tcp::socket sock, std::chrono::milliseconds ticktime, ConnectionLimits limits);
  // Starts reading and ticking. `on_packet` gets each non-tick packet; `on_closed` is called once.
  void start(PacketFn on_packet, ClosedFn on_closed) override;
  // Queues a frame that already starts with its 4-byte length. False when closed or over limit.
  bool send(Frame frame) override;
  // Queues frames without writing them (the frames sent to a peer while its connection was being
  // set up, queued before anyone can send on it directly); flush() writes them.
  void preload(std::vector<Frame> frames) override;
  // Writes what is queued unless a write is in progress (which then writes it).
  void flush() override;
  void close(const std::string& reason) override;
  // Closes once what is queued has been written (leaving a cluster without losing the last sends).
  void close_after_flush(const std::string& reason) override;
  bool closed() const noexcept override { return closed_.load(std::memory_order_acquire); }
  // Ready once the connection is closed.
  std::shared_future<void> closed_future() const override { return closed_future_; }
  std::size_t queued_bytes() const override;
  ConnectionStats stats() const noexcept override;
  // Blocks the calling thread until at most `bytes` are queued, the connection closes, or the
  // deadline passes; true when the queue is below. For senders that produce faster than the
  // network carries (never call it on the I/O thread).
  bool wait_queue_below(std::size_t bytes, std::chrono::steady_clock::time_point deadline) override;
  // The tick loop then wakes every min(tick_every/2, ticktime/4, silent_after/6) and closes once
  // the silence passes silent_after less one wake-up, so the peer is declared down within it.
  void liveness(std::chrono::milliseconds tick_every, std::chrono::milliseconds silent_after) override;

  // Between cork() and uncork(), the frames this thread sends on any connection are held; uncork()
  // writes each connection's frames with one system call. The node's workers cork around each
  // process run, so a gen_server call's MONITOR_P and REG_SEND leave together. `may_wait`: the
  // thread runs a process that may be held in send() while a full queue drains (not an I/O handler).
  static void cork(bool may_wait = false) noexcept;
  static void uncork();

 private:
  bool queue(Frame frame);
  asio::awaitable<void> read_loop();
  asio::awaitable<void> tick_loop();
  void write_next();
  bool writing_now(std::vector<asio::const_buffer>& bufs, const std::optional<std::string>& drained_close);
  void shut(const std::string& reason);
  bool write_direct_locked(std::unique_lock<std::mutex>& lock);
  bool wait_for_room_locked(std::unique_lock<std::mutex>& lock, std::size_t bytes);

  asio::ip::tcp::socket sock_;
  asio::steady_timer tick_timer_;
  std::chrono::milliseconds ticktime_;
  // Set by liveness() (0: the tick time rules); read by the tick loop.
  std::atomic<std::int64_t> tick_every_ms_{0}, silent_after_ms_{0};
  ConnectionLimits limits_;
  PacketFn on_packet_;
  ClosedFn on_closed_;

  mutable std::mutex mu_;
  std::condition_variable drained_;  // signalled when queued bytes go down or the connection closes
  std::deque<Frame> pending_;
  std::size_t pending_bytes_ = 0;
  bool writing_ = false;        // a thread or the I/O thread's writer owns the socket's writes
  bool direct_writer_ = false;  // a sender is writing with mu_ released
  bool close_deferred_ = false;  // shut() left the descriptor open for that sender to close
  // Rounds a direct writer writes what others queued meanwhile before leaving it to the I/O thread.
  static constexpr int kDirectRounds = 4;
  // Small frames written directly by senders in the current window (under mu_).
  static constexpr int kDirectPerWindow = 4;
  // Corked frames are written once this many bytes wait (a burst need not wait for uncork()).
  static constexpr std::size_t kCorkedBytes = 256 * 1024;
  std::chrono::steady_clock::rep window_start_ = 0;
  int direct_in_window_ = 0;
  std::vector<Frame> inflight_;

  std::atomic<bool> closed_{false};
  std::promise<void> closed_promise_;
  std::shared_future<void> closed_future_ = closed_promise_.get_future().share();
  std::optional<std::string> close_when_drained_;  // under mu_
  std::chrono::steady_clock::time_point last_read_;  // I/O thread only
  // When the frame at the front of the read buffer was first seen incomplete (0: none is).
  std::atomic<std::chrono::steady_clock::rep> partial_since_{0};
  std::atomic<std::chrono::steady_clock::rep> last_write_{0};  // written by senders too
  std::atomic<std::uint64_t> messages_in_{0}, messages_out_{0}, bytes_in_{0}, bytes_out_{0};
};

}  // namespace hypha::net
