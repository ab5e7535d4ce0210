// Helpers the test binaries share: terms from Erlang syntax, and a free loopback port (for an
// EPMD port of a test's own).
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <string_view>

#include "hypha/term/text.hpp"

namespace hypha::testing {

inline Term T(std::string_view s) { return parse_term(s).value(); }

inline std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return a.local_endpoint().port();
}

}  // namespace hypha::testing
