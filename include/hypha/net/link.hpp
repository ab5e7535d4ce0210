// FrameLink: one established distribution connection as the node sees it: frames out (each
// starting with its 4-byte length), packets in, a close with a reason, counters. DistConnection
// (connection.hpp) is the one over TCP; the simulated network of deterministic tests
// (node/sim.hpp) has its own. The node's connection table holds FrameLinks and never knows which.
//
// Thread-safety: send(), close() and the readers may be called from any thread; on_packet and
// on_closed run one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace hypha::net {

// An allocator that leaves new bytes uninitialised: frames are written in full right after they
// are sized, so zero-filling them first would only cost time.
template <class T>
struct UninitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};

// One distribution frame, starting with its 4-byte length.
using Frame = std::vector<std::uint8_t, UninitAllocator<std::uint8_t>>;

// What crossed one connection: messages are frames other than ticks; bytes count frames whole
// (length included, ticks too). Outgoing ones count when queued (queued_bytes() says how many of
// those bytes wait for the socket).
struct ConnectionStats {
  std::uint64_t messages_in = 0, messages_out = 0, bytes_in = 0, bytes_out = 0;
};

class FrameLink {
 public:
  using PacketFn = std::function<void(std::span<const std::uint8_t>)>;
  using ClosedFn = std::function<void(const std::string& reason)>;
  virtual ~FrameLink() = default;

  // Starts reading. `on_packet` gets each packet that is not a tick; `on_closed` is called once.
  virtual void start(PacketFn on_packet, ClosedFn on_closed) = 0;
  // Queues a frame that already starts with its 4-byte length. False when closed or over limit.
  virtual bool send(Frame frame) = 0;
  // Queues frames without writing them (the frames sent to a peer while its connection was being
  // set up, queued before anyone can send on it directly); flush() writes them.
  virtual void preload(std::vector<Frame> frames) = 0;
  virtual void flush() = 0;
  virtual void close(const std::string& reason) = 0;
  // Closes once what is queued has gone out (leaving a cluster without losing the last sends).
  virtual void close_after_flush(const std::string& reason) = 0;
  virtual bool closed() const noexcept = 0;
  virtual std::shared_future<void> closed_future() const = 0;  // ready once closed
  virtual std::size_t queued_bytes() const = 0;
  virtual ConnectionStats stats() const noexcept = 0;
  // Blocks the calling thread until at most `bytes` are queued, the link closes, or the deadline
  // passes; true when the queue is below.
  virtual bool wait_queue_below(std::size_t bytes, std::chrono::steady_clock::time_point deadline) = 0;
  // Failure detection faster than the tick time, for a peer known to keep up with it (node.hpp,
  // NodeOptions::detect): from now on a tick goes out whenever nothing was written for
  // `tick_every`, and the link closes ("heartbeat_timeout") once nothing has been heard from the
  // peer for `silent_after` at the latest. Until called, the tick time rules (ticktime/4, ticktime).
  virtual void liveness(std::chrono::milliseconds tick_every, std::chrono::milliseconds silent_after) = 0;
};

}  // namespace hypha::net
