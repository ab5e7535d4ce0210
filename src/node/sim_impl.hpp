// SimNetwork::Impl (private to the node library): what node/sim.hpp's network keeps, and the
// calls the node makes on it (attach, connect, its connections' ends).
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hypha/net/link.hpp"
#include "hypha/node/node.hpp"
#include "hypha/node/sim.hpp"

namespace hypha {

struct SimNetwork::Impl final : ManualClock::Observer {
  class End;
  struct InFlight {
    Clock::time_point at;
    net::Frame frame;
    bool close_marker = false;  // the sender closed: the receiver learns it here, in order
  };
  // One connection: node[0] made it, node[1] accepted it. dir[i] holds what end i sent.
  struct Pipe {
    std::array<Atom, 2> node;
    std::array<std::shared_ptr<End>, 2> end;
    struct Dir {
      std::deque<InFlight> queue;
      std::size_t bytes = 0;
    };
    std::array<Dir, 2> dir;
    std::array<bool, 2> closing{false, false};  // closing after its queued frames have gone
    std::array<std::string, 2> close_after, close_reason;
    bool live() const;
  };
  // The faults between two nodes (by their names in order).
  struct Link {
    bool cut = false;
    bool partitioned = false;
    std::uint64_t epoch = 0;  // bumped by each partition and heal: stale tick timeouts do nothing
    Clock::duration delay{};
    std::array<std::size_t, 2> drops{0, 0};  // [0]: frames from the first name to the second
  };

  explicit Impl(std::shared_ptr<ManualClock> clock);
  ~Impl() override;

  // --- the node's side
  // The name for a node about to start, and the creation it gets (a new one for each start, as
  // EPMD gives); then attach() once its runtime runs. detach() frees the name.
  Result<std::uint32_t, std::string> reserve(Atom name);
  void attach(Node::Impl* node);
  void detach(Node::Impl* node);  // returns once no callback into the node runs
  void connect_later(Node::Impl* from, Atom to, std::uint64_t attempt);
  void start_end(End& e, net::FrameLink::PacketFn on_packet, net::FrameLink::ClosedFn on_closed);
  bool transmit(End& e, net::Frame frame);
  std::size_t queued_bytes(const End& e) const;
  void close_end(End& e, const std::string& reason, bool after_flush);

  // --- inside (under `mu` where it says so)
  void loop();
  void post(std::function<void()> action);                                // under mu
  void post_at(Clock::time_point at, std::function<void()> action);       // under mu
  void on_time(Clock::time_point now) override;
  Clock::time_point next_deadline() const override;
  Link& link(Atom a, Atom b);                                             // under mu
  void connect(Atom from, Atom to, std::uint64_t attempt);
  void schedule_delivery(const std::shared_ptr<Pipe>& pipe, int dir);     // under mu
  void deliver(const std::shared_ptr<Pipe>& pipe, int dir);
  void close_locked(Pipe& pipe, int side, const std::string& reason, bool after_flush);
  void finish_close(Pipe& pipe, int side, const std::string& reason);     // under mu
  void notify_closed(End& e, const std::string& reason);                  // under mu
  void forget_if_done(Pipe& pipe);                                        // under mu
  std::vector<std::shared_ptr<Pipe>> pipes_between(Atom a, Atom b) const; // under mu
  void partition_locked(Atom a, Atom b);
  void heal_locked(Atom a, Atom b);
  bool quiet_now();

  std::shared_ptr<ManualClock> clock;
  mutable std::mutex mu;
  std::condition_variable work_cv, idle_cv;
  std::deque<std::function<void()>> ready;
  std::map<std::pair<Clock::time_point, std::uint64_t>, std::function<void()>> timed;
  std::uint64_t next_seq = 0;
  bool running = false;
  bool stop = false;
  std::map<Atom, Node::Impl*> nodes;
  std::map<Atom, std::uint32_t> creations;
  std::vector<std::shared_ptr<Pipe>> pipes;
  std::map<std::pair<Atom, Atom>, Link> links;
  SimStats stats;
  std::thread thread;
};

}  // namespace hypha
