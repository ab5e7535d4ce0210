// The gossip strategy's UDP socket (private to the cluster library): joins the multicast group,
// sends this node's heartbeats, and hands the node names of accepted heartbeats to a callback.
// Lives on the node's io_context; close() before the owner goes.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "hypha/cluster/formation.hpp"
#include "hypha/cluster/gossip.hpp"
#include "hypha/term/result.hpp"

namespace hypha::formation {

class GossipSocket : public std::enable_shared_from_this<GossipSocket> {
 public:
  using HeardFn = std::function<void(const std::string& node)>;
  static Result<std::shared_ptr<GossipSocket>, std::string> open(asio::io_context& io, const GossipOptions& o,
                                                                 std::string self, HeardFn heard);
  void send_heartbeat();
  void close();

 private:
  GossipSocket(asio::io_context& io, const GossipOptions& o, std::string self, HeardFn heard);
  void receive();
  void count(gossip::Drop d);

  asio::ip::udp::socket sock_;
  asio::ip::udp::endpoint to_, from_;
  std::string self_;
  HeardFn heard_;
  std::mutex mu_;  // the codec (receives) and heard_ (close)
  gossip::Codec codec_;
  gossip::Codec sender_;
  std::array<std::uint8_t, gossip::kMaxPacket + 1> buf_{};
};

}  // namespace hypha::formation
