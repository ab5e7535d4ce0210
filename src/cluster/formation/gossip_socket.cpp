#include "gossip_socket.hpp"

#include <asio/ip/multicast.hpp>
#include <asio/post.hpp>
#include <sys/socket.h>

#include <chrono>

#include "hypha/base/log.hpp"
#include "hypha/base/metrics.hpp"

namespace hypha::formation {

namespace {

gossip::Config codec_config(const GossipOptions& o) {
  return {.format = o.format == "libcluster" ? gossip::Format::Libcluster : gossip::Format::Hypha,
          .secret = o.secret,
          .cluster = o.cluster};
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

GossipSocket::GossipSocket(asio::io_context& io, const GossipOptions& o, std::string self, HeardFn heard)
    : sock_(io), self_(std::move(self)), heard_(std::move(heard)), codec_(codec_config(o)), sender_(codec_config(o)) {}

Result<std::shared_ptr<GossipSocket>, std::string> GossipSocket::open(asio::io_context& io, const GossipOptions& o,
                                                                      std::string self, HeardFn heard) {
  std::shared_ptr<GossipSocket> g;
  try {
    g.reset(new GossipSocket(io, o, std::move(self), std::move(heard)));
  } catch (const std::exception& e) {
    return unexpected(std::string("gossip: ") + e.what());
  }
  asio::error_code ec;
  const auto group = asio::ip::make_address(o.multicast_addr, ec);
  if (ec) return unexpected("gossip: bad multicast_addr " + o.multicast_addr);
  const auto bind_addr = asio::ip::make_address(o.if_addr, ec);
  if (ec) return unexpected("gossip: bad if_addr " + o.if_addr);
  auto& s = g->sock_;
  s.open(group.is_v6() ? asio::ip::udp::v6() : asio::ip::udp::v4(), ec);
  if (!ec) s.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    int one = 1;  // several nodes of one host share the port, as libcluster's sockets do
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (!ec) s.bind(asio::ip::udp::endpoint(bind_addr, o.port), ec);
  if (ec) return unexpected("gossip: cannot bind " + o.if_addr + ":" + std::to_string(o.port) + ": " + ec.message());
  if (o.broadcast_only) {
    s.set_option(asio::socket_base::broadcast(true), ec);
  } else if (group.is_v4()) {
    asio::ip::address_v4 iface = asio::ip::address_v4::any();
    if (!o.multicast_if.empty()) iface = asio::ip::make_address_v4(o.multicast_if, ec);
    if (!ec) s.set_option(asio::ip::multicast::join_group(group.to_v4(), iface), ec);
    if (!ec && !o.multicast_if.empty()) s.set_option(asio::ip::multicast::outbound_interface(iface), ec);
    if (!ec) s.set_option(asio::ip::multicast::hops(o.multicast_ttl), ec);
    if (!ec) s.set_option(asio::ip::multicast::enable_loopback(true), ec);
  } else {
    s.set_option(asio::ip::multicast::join_group(group), ec);
  }
  if (ec) return unexpected("gossip: cannot join " + o.multicast_addr + ": " + ec.message());
  g->to_ = asio::ip::udp::endpoint(group, o.port);
  asio::post(s.get_executor(), [g] { g->receive(); });
  return g;
}

void GossipSocket::count(gossip::Drop d) {
  metrics::counter("hypha_gossip_packets_total", "Gossip packets received, by result",
                   {{"node", self_}, {"result", gossip::drop_name(d)}})
      .add();
}

void GossipSocket::receive() {
  sock_.async_receive_from(asio::buffer(buf_), from_, [self = shared_from_this()](asio::error_code ec, std::size_t n) {
    if (ec == asio::error::operation_aborted || !self->sock_.is_open()) return;
    if (!ec) {
      std::unique_lock lock(self->mu_);
      const auto d = self->codec_.decode(std::span<const std::uint8_t>(self->buf_.data(), n), unix_ms());
      self->count(d.drop);
      if (d.drop != gossip::Drop::None) {
        log::limited(log::Level::Warn, self->self_, "gossip_packet_dropped", gossip::drop_name(d.drop),
                     {{"source", self->from_.address().to_string()}, {"reason", gossip::drop_name(d.drop)}});
      } else if (d.node != self->self_ && self->heard_) {
        auto heard = self->heard_;
        lock.unlock();
        heard(d.node);
      }
    }
    self->receive();
  });
}

void GossipSocket::send_heartbeat() {
  asio::post(sock_.get_executor(), [self = shared_from_this()] {
    if (!self->sock_.is_open()) return;
    auto packet = std::make_shared<std::vector<std::uint8_t>>(self->sender_.encode(self->self_, unix_ms()));
    self->sock_.async_send_to(asio::buffer(*packet), self->to_, [packet](asio::error_code, std::size_t) {});
  });
}

void GossipSocket::close() {
  {
    std::lock_guard lock(mu_);
    heard_ = nullptr;
  }
  asio::post(sock_.get_executor(), [self = shared_from_this()] {
    asio::error_code ec;
    self->sock_.close(ec);
  });
}

}  // namespace hypha::formation
