// The dns strategy's look-up: A and AAAA records of one name, asked of a given DNS server over
// UDP (RFC 1035 messages, written here: one question, answers read with every bound checked), or
// of the system resolver. Replies are untrusted input: a malformed one is an error, never a crash.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hypha/term/result.hpp"

namespace hypha::formation::dns {

constexpr std::uint16_t kA = 1;
constexpr std::uint16_t kAAAA = 28;

// A query for `name`'s records of `type`, recursion desired. Error: a name DNS cannot carry
// (empty label, label over 63 bytes, name over 253).
Result<std::vector<std::uint8_t>, std::string> query(std::uint16_t id, std::string_view name, std::uint16_t type);

// The addresses in the answer section of a reply to query `id` (A and AAAA records, as text);
// NXDOMAIN is an empty list. Errors: not a reply to that query, a server error, a truncated or
// malformed message.
Result<std::vector<std::string>, std::string> answers(std::span<const std::uint8_t> reply, std::uint16_t id);

// "host:port" (or "[v6]:port"); the port defaults to 53.
Result<std::pair<std::string, std::uint16_t>, std::string> parse_server(std::string_view server);

// Every A and AAAA address of `name`: from `server` when given ("host:port"), else from the system
// resolver. Each address once, in the order received. An error when neither question was
// answered.
asio::awaitable<Result<std::vector<std::string>, std::string>> lookup(asio::io_context& io, std::string name,
                                                                     std::string server,
                                                                     std::chrono::milliseconds timeout);

}  // namespace hypha::formation::dns
