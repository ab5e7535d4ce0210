// The KV store of Elixir's guide, on hypha: named buckets of key/value pairs, a registry of them
// (which notices a bucket dying), exports that the router calls, and the text server.
//
// Exports (buckets and keys are binaries): kv:create(B) -> ok; kv:get(B, K) -> {ok, V | nil} |
// {error, not_found}; kv:put(B, K, V) -> ok | {error, not_found}; kv:delete(B, K) -> ok |
// {error, not_found}; kv:buckets() -> [B]; kv:whereis(B) -> the bucket's pid | undefined.
//
// The text server (one line per command, CRLF): CREATE b / PUT b k v / GET b k / DELETE b k.
// Replies: OK; for GET the value then OK; NOT FOUND (no such bucket); UNKNOWN COMMAND; and
// ERROR <reason> when routing failed. Every command goes through the router.
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "router.hpp"

namespace hypha::kv {

// Starts the registry (registered as kv_registry) and adds the kv exports.
Result<bool, Term> start_store(Node& node, Exports& exports);

// The reply text (CRLF-terminated lines) for one command line, routed through `router`.
Task<std::string> execute(Process& self, const Router& router, std::string_view line);

// Serves the text protocol on `port` (127.0.0.1 and every other address) until io stops. No
// cookie guards it, so a client cannot make it hold more than a bounded amount: a session stops
// reading while 64 KiB of its replies are unsent (a client that pipelines and never reads is
// backpressured, not buffered), lines are limited to 64 KiB, an idle session is closed, and the
// listener's limits (net/listener.hpp) bound the clients.
struct TextServerLimits {
  std::chrono::milliseconds idle_timeout{60000};  // no request, or replies not read, for this long
  std::size_t max_clients = 1024;
};

class TextServer {
 public:
  using Limits = TextServerLimits;
  static Result<std::unique_ptr<TextServer>, std::string> start(asio::io_context& io, std::uint16_t port, Runtime& rt,
                                                                std::shared_ptr<const Router> router, Limits limits = {});
  std::uint16_t port() const noexcept;
  ~TextServer();
  struct Impl;

 private:
  explicit TextServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace hypha::kv
