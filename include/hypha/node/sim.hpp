// SimNetwork: the deterministic harness for cluster tests. Nodes of one test started with
// NodeOptions::network set to the same SimNetwork reach each other through it instead of TCP and
// EPMD, and run their timers on its ManualClock: time moves only when the test moves it, and
// links fail only when the test says so. Everything above the connection is the real thing
// (distribution frames encoded and decoded, net_kernel, monitors, noconnection, the kernel).
// Model: CAF's deterministic test fixture, FoundationDB's simulation.
//
//   auto net = std::make_shared<hypha::SimNetwork>();
//   auto a = hypha::start_node({.name = "a@sim", .cookie = "c", .network = net});
//   auto b = hypha::start_node({.name = "b@sim", .cookie = "c", .network = net});
//   (*a)->connect(Atom("b@sim"));            // connects through the network's thread
//   net->partition(Atom("a@sim"), Atom("b@sim"));
//   net->advance(std::chrono::seconds(59));  // frames held, both sides still connected
//   net->advance(std::chrono::seconds(1));   // net_ticktime passed: nodedown on both sides
//   net->heal(Atom("a@sim"), Atom("b@sim"));
//
// Link faults (between two nodes, both ways, until heal()):
// - cut: the connection closes now (each side sees nodedown, its links and monitors of the other
//   side's processes get noconnection) and new connections are refused at once.
// - partition: silent, as a dead switch: frames are held, each side declares the other down when
//   its net_ticktime passes without traffic, new connections time out after setup_timeout. Healed
//   before that, the held frames arrive in order and nobody noticed; after, the side that did not
//   time out yet learns the connection closed.
// - delay: frames arrive that much later (in order); drop_next: the next frames one way are lost
//   (the connection stays up: what an abruptly reset sender would have lost).
//
// Running: frames are delivered, and connections made, by the network's one thread, in the order
// they were sent. settle() waits until nothing more happens without time moving: no frame due,
// no process of any node runnable, no timer due. advance(d) moves time to each deadline on the
// way (timers of every node, delayed frames, tick timeouts), settling at each, so the test sees
// every intermediate state in order and the run repeats. Processes still run on their runtimes'
// worker threads: what the harness fixes is time, the network, and when the test looks.
//
// Thread-safety: every member may be called from any thread but the network's own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "hypha/base/clock.hpp"
#include "hypha/term/atom.hpp"

namespace hypha {

struct SimStats {
  std::uint64_t delivered = 0;  // frames handed to the receiving node
  std::uint64_t dropped = 0;    // lost by drop_next, or in flight when a connection closed
  std::uint64_t connects = 0;   // connections made
  std::uint64_t refused = 0;    // connection attempts that failed (no such node, cut, cookie, timeout)
};

class SimNetwork {
 public:
  explicit SimNetwork(std::shared_ptr<ManualClock> clock = nullptr);
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  const std::shared_ptr<ManualClock>& clock() const noexcept;

  void cut(Atom a, Atom b);
  void partition(Atom a, Atom b);
  // Partitions `a` from every other node on the network (those attached now).
  void isolate(Atom a);
  void heal(Atom a, Atom b);
  void heal_all();
  void delay(Atom a, Atom b, Clock::duration d);
  void drop_next(Atom from, Atom to, std::size_t frames);

  // A connection between the two is open on both sides (frames may be held by a partition).
  bool connected(Atom a, Atom b) const;
  std::size_t in_flight() const;  // frames sent and not delivered yet
  SimStats stats() const;

  // Waits (in real time, at most `patience`) until the network and every node on it are quiet;
  // false if they did not go quiet in time (something keeps running without time moving).
  bool settle(std::chrono::milliseconds patience = std::chrono::seconds(10));
  // Moves time forward by `d`, stopping and settling at every deadline on the way.
  bool advance(Clock::duration d);
  // Moves time from deadline to deadline until pred() holds after settling (checked first at
  // the current time); false when `limit` of simulated time passed first.
  bool run_until(const std::function<bool()>& pred, Clock::duration limit);

  struct Impl;
  Impl& impl() noexcept { return *impl_; }  // the node library's side

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hypha
