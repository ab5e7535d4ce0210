// DNS look-ups for the dns formation strategy (RFC 1035 §4: header, question, resource records).
#include "dns.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <charconv>
#include <optional>
#include <random>

namespace hypha::formation::dns {

namespace {

using namespace asio::experimental::awaitable_operators;
using asio::use_awaitable;

std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}
void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

// The offset after the (possibly compressed) name at `at`, or nullopt when it runs out of the
// message or is not a name. Skipping never follows a pointer, so it cannot loop.
std::optional<std::size_t> skip_name(std::span<const std::uint8_t> b, std::size_t at) {
  for (;;) {
    if (at >= b.size()) return std::nullopt;
    const std::uint8_t len = b[at];
    if (len == 0) return at + 1;
    if ((len & 0xC0) == 0xC0) {
      if (at + 2 > b.size()) return std::nullopt;
      return at + 2;
    }
    if (len & 0xC0) return std::nullopt;  // the reserved label types
    at += 1 + len;
  }
}

constexpr std::size_t kHeader = 12;

}  // namespace

Result<std::vector<std::uint8_t>, std::string> query(std::uint16_t id, std::string_view name, std::uint16_t type) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return unexpected(std::string("expected a DNS name of 1..253 bytes"));
  std::vector<std::uint8_t> q;
  put16(q, id);
  put16(q, 0x0100);  // a standard query, recursion desired
  put16(q, 1);       // one question
  put16(q, 0);
  put16(q, 0);
  put16(q, 0);
  for (std::size_t start = 0; start <= name.size();) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    const std::size_t len = dot - start;
    if (len == 0 || len > 63) return unexpected("'" + std::string(name) + "': every label must have 1..63 bytes");
    q.push_back(static_cast<std::uint8_t>(len));
    q.insert(q.end(), name.begin() + static_cast<std::ptrdiff_t>(start), name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  q.push_back(0);
  put16(q, type);
  put16(q, 1);  // IN
  return q;
}

Result<std::vector<std::string>, std::string> answers(std::span<const std::uint8_t> b, std::uint16_t id) {
  if (b.size() < kHeader) return unexpected(std::string("a DNS message shorter than its header"));
  if (get16(b, 0) != id) return unexpected(std::string("a reply to another query"));
  const std::uint16_t flags = get16(b, 2);
  if (!(flags & 0x8000)) return unexpected(std::string("a query, not a reply"));
  if (flags & 0x0200) return unexpected(std::string("the reply was truncated (more records than UDP carries)"));
  const unsigned rcode = flags & 0x000F;
  if (rcode == 3) return std::vector<std::string>{};  // NXDOMAIN: nobody is listed
  if (rcode != 0) return unexpected("the server answered with error code " + std::to_string(rcode));
  const std::uint16_t questions = get16(b, 4);
  const std::uint16_t records = get16(b, 6);
  std::size_t at = kHeader;
  for (unsigned i = 0; i < questions; ++i) {
    auto next = skip_name(b, at);
    if (!next || *next + 4 > b.size()) return unexpected(std::string("a malformed question section"));
    at = *next + 4;
  }
  std::vector<std::string> out;
  for (unsigned i = 0; i < records; ++i) {
    auto next = skip_name(b, at);
    if (!next || *next + 10 > b.size()) return unexpected(std::string("a malformed answer record"));
    at = *next;
    const std::uint16_t type = get16(b, at);
    const std::uint16_t klass = get16(b, at + 2);
    const std::uint16_t rdlength = get16(b, at + 8);
    at += 10;
    if (at + rdlength > b.size()) return unexpected(std::string("an answer record past the end of the message"));
    char text[INET6_ADDRSTRLEN] = {};
    if (klass == 1 && type == kA && rdlength == 4) {
      inet_ntop(AF_INET, b.data() + at, text, sizeof text);
      out.emplace_back(text);
    } else if (klass == 1 && type == kAAAA && rdlength == 16) {
      inet_ntop(AF_INET6, b.data() + at, text, sizeof text);
      out.emplace_back(text);
    }  // CNAMEs and other records: skipped (a recursive server gives the addresses too)
    at += rdlength;
  }
  return out;
}

Result<std::pair<std::string, std::uint16_t>, std::string> parse_server(std::string_view s) {
  std::string host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos) return unexpected(std::string("expected [address]:port"));
    host = std::string(s.substr(1, close - 1));
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return unexpected(std::string("expected [address]:port"));
      port = s.substr(close + 2);
    }
  } else {
    const auto colon = s.rfind(':');
    host = std::string(s.substr(0, colon));
    if (colon != std::string_view::npos) port = s.substr(colon + 1);
  }
  asio::error_code ec;
  (void)asio::ip::make_address(host, ec);
  if (ec) return unexpected(std::string("expected an IP address and port (\"127.0.0.1:5353\")"));
  unsigned p = 53;
  if (!port.empty()) {
    auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (err != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
      return unexpected(std::string("expected a port of 1..65535"));
  }
  return std::pair{host, static_cast<std::uint16_t>(p)};
}

namespace {

void add_unique(std::vector<std::string>& to, const std::vector<std::string>& from) {
  for (const auto& a : from)
    if (std::find(to.begin(), to.end(), a) == to.end()) to.push_back(a);
}

// Both questions to the server, then replies until both are answered (datagrams for other ids are
// ignored; the socket is connected, so only the server's arrive, and a server that is not there
// is known at once from the ICMP error rather than at the timeout). One type refused (a server with no IPv6 records that forwards
// AAAA questions to no upstream, say) leaves the other's addresses; both refused is an error.
asio::awaitable<Result<std::vector<std::string>, std::string>> ask(asio::ip::udp::socket& sock,
                                                                  const std::string& name) {
  std::mt19937 rng{std::random_device{}()};
  const std::array<std::uint16_t, 2> types{kA, kAAAA};
  std::array<std::uint16_t, 2> ids{};
  for (std::size_t i = 0; i < 2; ++i) {
    ids[i] = static_cast<std::uint16_t>(rng());
    auto q = query(ids[i], name, types[i]);
    if (!q) co_return unexpected(q.error());
    co_await sock.async_send(asio::buffer(*q), use_awaitable);
  }
  std::vector<std::string> out;
  std::string failure;  // of the first type that failed
  int failed = 0;
  std::array<bool, 2> done{false, false};
  std::array<std::uint8_t, 4096> buf;
  while (!(done[0] && done[1])) {
    const std::size_t n = co_await sock.async_receive(asio::buffer(buf), use_awaitable);
    if (n < kHeader) continue;
    const std::span<const std::uint8_t> reply(buf.data(), n);
    const std::uint16_t id = get16(reply, 0);
    for (std::size_t i = 0; i < 2; ++i) {
      if (done[i] || id != ids[i]) continue;
      auto a = answers(reply, id);
      if (a) add_unique(out, *a);
      else if (failed++ == 0) failure = a.error();
      done[i] = true;
    }
  }
  if (failed == 2) co_return unexpected(failure);
  co_return out;
}

}  // namespace

asio::awaitable<Result<std::vector<std::string>, std::string>> lookup(asio::io_context& io, std::string name,
                                                                     std::string server,
                                                                     std::chrono::milliseconds timeout) {
  asio::steady_timer timer(io, timeout);
  try {
    if (server.empty()) {
      asio::ip::tcp::resolver resolver(io);
      auto found = co_await (resolver.async_resolve(name, "", use_awaitable) || timer.async_wait(use_awaitable));
      if (found.index() == 1) co_return unexpected("no answer from the system resolver within " +
                                                   std::to_string(timeout.count()) + " ms");
      std::vector<std::string> out;
      for (const auto& e : std::get<0>(found)) add_unique(out, {e.endpoint().address().to_string()});
      co_return out;
    }
    auto where = parse_server(server);
    if (!where) co_return unexpected(where.error());
    const asio::ip::udp::endpoint ep(asio::ip::make_address(where->first), where->second);
    asio::ip::udp::socket sock(io, ep.protocol());
    sock.connect(ep);
    auto got = co_await (ask(sock, name) || timer.async_wait(use_awaitable));
    if (got.index() == 1) co_return unexpected("no answer from " + server + " within " + std::to_string(timeout.count()) + " ms");
    co_return std::get<0>(std::move(got));
  } catch (const std::system_error& e) {
    // The system resolver's "host not found" is an empty list, as NXDOMAIN is.
    if (e.code() == asio::error::host_not_found) co_return std::vector<std::string>{};
    co_return unexpected(std::string(e.what()));
  }
}

}  // namespace hypha::formation::dns
