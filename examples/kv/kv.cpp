#include "kv.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <sys/socket.h>

#include <cerrno>
#include <future>
#include <mutex>
#include <set>
#include <map>
#include <shared_mutex>

#include "hypha/base/log.hpp"
#include "hypha/net/listener.hpp"
#include "hypha/otp/gen_server.hpp"

namespace hypha::kv {

namespace {

Atom at(std::string_view s) { return Atom(s); }
const Atom kRegistry("kv_registry");

// One bucket: key/value pairs.
class Bucket : public GenServer {
 public:
  Task<Action> handle_call(Process&, const Term& req, const From&) override {
    if (req.is_tuple() && req.tuple_size() == 2 && req[0].is_atom(at("get"))) {
      auto it = data_.find(req[1]);
      co_return it == data_.end() ? Term(at("nil")) : it->second;
    }
    if (req.is_tuple() && req.tuple_size() == 3 && req[0].is_atom(at("put"))) {
      data_[req[1]] = req[2];
      co_return Term(at("ok"));
    }
    if (req.is_tuple() && req.tuple_size() == 2 && req[0].is_atom(at("delete"))) {
      data_.erase(req[1]);
      co_return Term(at("ok"));
    }
    co_return Term::tuple({Term(at("error")), Term(at("bad_request"))});
  }

 private:
  std::map<Term, Term> data_;
};

// Bucket name -> bucket process, readable by every process (as the guide's ETS table is);
// only the registry writes it.
struct BucketTable {
  mutable std::shared_mutex mu;
  std::map<Term, Pid> pids;
  std::optional<Pid> find(const Term& name) const {
    std::shared_lock lock(mu);
    auto it = pids.find(name);
    return it == pids.end() ? std::nullopt : std::optional<Pid>(it->second);
  }
};

// The registry: creates buckets; a bucket that dies is forgotten.
class Registry : public GenServer {
 public:
  explicit Registry(std::shared_ptr<BucketTable> table) : table_(std::move(table)) {}
  Task<Action> handle_call(Process& self, const Term& req, const From&) override {
    if (req.is_tuple() && req.tuple_size() == 2 && req[0].is_atom(at("create"))) {
      if (table_->find(req[1])) co_return Term(at("ok"));
      auto pid = co_await gen_server::start(self, std::make_unique<Bucket>());
      if (!pid) co_return Term::tuple({Term(at("error")), pid.error()});
      monitors_.emplace(Term(self.monitor(*pid)), req[1]);
      std::unique_lock lock(table_->mu);
      table_->pids.emplace(req[1], *pid);
      co_return Term(at("ok"));
    }
    if (req.is_atom(at("buckets"))) {
      std::vector<Term> names;
      {
        std::shared_lock lock(table_->mu);
        for (const auto& [name, _] : table_->pids) names.push_back(name);
      }
      co_return Term::list(std::move(names));
    }
    co_return Term::tuple({Term(at("error")), Term(at("bad_request"))});
  }
  Task<Action> handle_info(Process&, const Term& m) override {
    if (m.is_tuple() && m.tuple_size() == 5 && m[0].is_atom(atoms::DOWN())) {
      auto it = monitors_.find(m[1]);
      if (it != monitors_.end()) {
        std::unique_lock lock(table_->mu);
        table_->pids.erase(it->second);
        monitors_.erase(it);
      }
    }
    co_return Action::noreply();
  }

 private:
  std::shared_ptr<BucketTable> table_;
  std::map<Term, Term> monitors_;  // monitor ref -> bucket name
};

Term call_or_throw(const Result<Term, Term>& r) {
  if (!r) throw Exit(r.error());
  return *r;
}

// Calls the bucket's server with `req`, or gives {error, not_found}.
Task<Term> bucket_call(Process& self, const BucketTable& table, Term bucket, Term req) {
  const std::optional<Pid> pid = table.find(bucket);
  if (!pid) co_return Term::tuple({Term(at("error")), Term(at("not_found"))});
  co_return call_or_throw(co_await gen_server::call(self, *pid, req));
}

// The line's words, split on blanks (spaces, tabs, ...).
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  for (std::size_t i = 0; i < line.size();) {
    while (i < line.size() && blank(line[i])) ++i;
    const std::size_t start = i;
    while (i < line.size() && !blank(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// The message of a routing failure ({badroute, Msg}, possibly inside an exit's {Reason, Stack}).
std::optional<std::string> badroute_message(const Term& t, int depth = 0) {
  if (depth > 4 || !t.is_tuple() || t.tuple_size() == 0) return std::nullopt;
  if (t.tuple_size() == 2 && t[0].is_atom(at("badroute")) && t[1].is_binary()) return std::string(t[1].binary_view());
  return badroute_message(t[0], depth + 1);
}

bool is_not_found(const Term& r) {
  return r.is_tuple() && r.tuple_size() == 2 && r[0].is_atom(at("error")) && r[1].is_atom(at("not_found"));
}

}  // namespace

Result<bool, Term> start_store(Node& node, Exports& exports) {
  auto table = std::make_shared<BucketTable>();
  auto reg = gen_server::start(node.runtime(), std::make_unique<Registry>(table), {.name = kRegistry});
  if (!reg) return unexpected(reg.error());
  exports.add("kv", "create", [](Process& self, Term bucket) -> Task<Term> {
    const Term req = Term::tuple({Term(at("create")), bucket});
    co_return call_or_throw(co_await gen_server::call(self, kRegistry, req));
  });
  exports.add("kv", "get", [table](Process& self, Term bucket, Term key) -> Task<Term> {
    const Term req = Term::tuple({Term(at("get")), key});
    const Term r = co_await bucket_call(self, *table, bucket, req);
    co_return is_not_found(r) ? r : Term::tuple({Term(at("ok")), r});
  });
  exports.add("kv", "put", [table](Process& self, Term bucket, Term key, Term value) -> Task<Term> {
    const Term req = Term::tuple({Term(at("put")), key, value});
    co_return co_await bucket_call(self, *table, bucket, req);
  });
  exports.add("kv", "delete", [table](Process& self, Term bucket, Term key) -> Task<Term> {
    const Term req = Term::tuple({Term(at("delete")), key});
    co_return co_await bucket_call(self, *table, bucket, req);
  });
  exports.add("kv", "whereis", [table](Term bucket) {
    const std::optional<Pid> pid = table->find(bucket);
    return pid ? Term(*pid) : Term(at("undefined"));
  });
  exports.add("kv", "buckets", [](Process& self) -> Task<Term> {
    co_return call_or_throw(co_await gen_server::call(self, kRegistry, Term(at("buckets"))));
  });
  return true;
}

Task<std::string> execute(Process& self, const Router& router, std::string_view line) {
  const auto w = words(line);
  const auto bin = [&](std::size_t i) { return Term::binary(w[i]); };
  Atom fun;
  Term args;
  if (w.size() == 2 && w[0] == "CREATE") {
    fun = at("create");
    args = Term::list({bin(1)});
  } else if (w.size() == 3 && w[0] == "GET") {
    fun = at("get");
    args = Term::list({bin(1), bin(2)});
  } else if (w.size() == 4 && w[0] == "PUT") {
    fun = at("put");
    args = Term::list({bin(1), bin(2), bin(3)});
  } else if (w.size() == 3 && w[0] == "DELETE") {
    fun = at("delete");
    args = Term::list({bin(1), bin(2)});
  } else {
    co_return "UNKNOWN COMMAND\r\n";
  }
  const Outcome o = co_await outcome_of(router.route(self, bin(1), at("kv"), fun, args));
  if (!o.ok()) {
    const Term reason = exit_reason_of(o);
    co_return "ERROR " + badroute_message(reason).value_or(reason.to_string().substr(0, 500)) + "\r\n";
  }
  const Term& r = o.value;
  if (is_not_found(r)) co_return "NOT FOUND\r\n";
  if (fun == at("get") && r.is_tuple() && r.tuple_size() == 2) {
    const Term& v = r[1];
    co_return (v.is_binary() ? std::string(v.binary_view()) : v.is_atom(at("nil")) ? std::string() : v.to_string()) +
        "\r\nOK\r\n";
  }
  co_return "OK\r\n";
}

// ---------------------------------------------------------------------------------- text server

namespace {

constexpr std::size_t kMaxLine = 64 * 1024;
// Replies waiting to be written: past this the session writes (and waits for the client to read)
// before it answers more lines, so a client that pipelines and never reads holds this much.
constexpr std::size_t kMaxUnsent = 64 * 1024;
using Socket = asio::ip::tcp::socket;

// What a connection process hears from asio: the socket is ready (or its wait was cancelled).
Term io_event(bool ok) { return Term::tuple({Term(Atom("$kv_io")), Term(Atom(ok ? "ready" : "closed"))}); }

// Waits until the socket is ready to read or write: asio's reactor tells the process with a
// message, so the process never blocks its worker. Arming the wait from the process's thread
// needs no wake-up of the thread polling the node's I/O.
// A client that stays idle (or does not read its replies) for `idle` loses the connection.
Task<bool> ready(Process& self, Socket& s, Socket::wait_type what, std::chrono::milliseconds idle) {
  Runtime& rt = self.runtime();
  const Pid me = self.pid();
  s.async_wait(what, [&rt, me](const asio::error_code& ec) { rt.send(me, io_event(!ec)); });
  auto is_io = [](const Term& m) { return m.is_tuple() && m.tuple_size() == 2 && m[0].is_atom(Atom("$kv_io")); };
  auto m = co_await self.receive(is_io, idle);
  if (!m) {
    log::limited(log::Level::Warn, rt.node().text(), "kv_client_closed", net::source_of(s) + " idle",
                 {{"source", net::source_of(s)},
                  {"reason", what == Socket::wait_read ? "idle" : "not reading its replies"},
                  {"after_ms", std::to_string(idle.count())}});
    asio::error_code ec;
    s.cancel(ec);
    co_await self.receive(is_io);  // the cancelled wait's event: none is left behind
    co_return false;
  }
  co_return (*m)[1].is_atom(Atom("ready"));
}

// Writes all of `out` (non-blocking socket); false when the connection is gone.
Task<bool> write_all(Process& self, Socket& s, std::string out, std::chrono::milliseconds idle) {
  std::size_t off = 0;
  while (off < out.size()) {
    const ssize_t n = ::send(s.native_handle(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!co_await ready(self, s, Socket::wait_write, idle)) co_return false;
    } else {
      co_return false;
    }
  }
  co_return true;
}

// One request line (CR/LF stripped) to its reply; a failure becomes an error line.
Task<std::string> reply_to(Process& self, const Router& router, std::string line) {
  try {
    co_return co_await execute(self, router, line);
  } catch (const std::exception& e) {
    co_return std::string("ERROR ") + e.what() + "\r\n";
  } catch (...) {
    co_return std::string("ERROR internal\r\n");
  }
}

// One client, served by one process for the life of the connection: it reads what the socket
// has, answers every complete line (replies to pipelined lines go out in one write), and waits
// for readiness when the socket is empty. A line too long gets an error and the connection ends;
// a bad command gets its error line and the connection goes on.
Task<> serve_client(Process& self, std::shared_ptr<net::Connection> c, std::shared_ptr<const Router> router,
                    std::chrono::milliseconds idle) {
  // The caller keeps c and router alive while this runs; the helpers take references to them.
  Socket* s = &c->socket();
  asio::error_code ec;
  s->non_blocking(true, ec);
  std::string in;
  std::vector<char> buf(16 * 1024);
  for (;;) {
    const ssize_t n = ::recv(s->native_handle(), buf.data(), buf.size(), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) break;
      if (!co_await ready(self, *s, Socket::wait_read, idle)) break;
      continue;
    }
    in.append(buf.data(), static_cast<std::size_t>(n));
    std::string out;
    std::size_t begin = 0;
    bool gone = false;
    for (std::size_t nl; (nl = in.find('\n', begin)) != std::string::npos; begin = nl + 1) {
      std::string line = in.substr(begin, nl - begin);
      while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
      out += co_await reply_to(self, *router, std::move(line));
      if (out.size() >= kMaxUnsent) {  // backpressure: no more answers until these are read
        if (!co_await write_all(self, *s, std::exchange(out, {}), idle)) {
          gone = true;
          break;
        }
      }
    }
    if (gone) break;
    if (begin > 0) c->settle();
    in.erase(0, begin);
    const bool too_long = in.size() > kMaxLine;
    if (too_long) out += "ERROR line too long\r\n";
    if (!out.empty() && !co_await write_all(self, *s, std::move(out), idle)) break;
    if (too_long) break;
  }
  c->settle();  // before the descriptor closes (see net::Connection)
  s->close(ec);
}

}  // namespace

// The acceptor runs on the io_context it was started on (the node's); each client is a process.
struct TextServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, Runtime& r, std::shared_ptr<const Router> ro, TextServer::Limits l)
      : acceptor(io), rt(r), limits(l), router(std::move(ro)) {}
  asio::ip::tcp::acceptor acceptor;
  Runtime& rt;
  TextServer::Limits limits;
  net::Listener listener{"kv", std::string(rt.node().text()), net::ListenerLimits{limits.max_clients, 256, 64}};
  std::shared_ptr<const Router> router;
  std::mutex mu;
  std::set<Pid> clients;  // under mu
  bool stopped = false;   // under mu

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    co_await listener.accept_loop(acceptor, [this](std::shared_ptr<net::Connection> c) { serve(std::move(c)); });
  }

  // A client stays pending in the listener (the oldest gives way in a flood of connections)
  // until its first command line.
  void serve(std::shared_ptr<net::Connection> c) {
    {
      std::lock_guard lock(mu);
      if (stopped) return;
      const Pid pid = rt.spawn([c, router = router, weak = weak_from_this(), idle = limits.idle_timeout](Process& p) -> Task<> {
        co_await serve_client(p, c, router, idle);
        if (auto impl = weak.lock()) {
          std::lock_guard l(impl->mu);
          impl->clients.erase(p.pid());
        }
      });
      clients.insert(pid);
    }
  }

  // Ends the acceptor and every client (a killed client's socket closes with its process).
  void stop() {
    std::set<Pid> all;
    {
      std::lock_guard lock(mu);
      stopped = true;
      all.swap(clients);
    }
    asio::error_code ec;
    acceptor.close(ec);
    for (const Pid& p : all) rt.exit(p, Term(Atom("kill")));
  }
};

Result<std::unique_ptr<TextServer>, std::string> TextServer::start(asio::io_context& io, std::uint16_t port, Runtime& rt,
                                                                   std::shared_ptr<const Router> router, Limits limits) {
  auto impl = std::make_shared<Impl>(io, rt, std::move(router), limits);
  asio::error_code ec;
  const asio::ip::tcp::endpoint ep(asio::ip::tcp::v4(), port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unexpected("kv: cannot listen on port " + std::to_string(port) + ": " + ec.message());
  asio::co_spawn(io, impl->accept_loop(), asio::detached);
  return std::unique_ptr<TextServer>(new TextServer(std::move(impl)));
}

TextServer::TextServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
// Stops on the io_context's own thread (the acceptor is not thread-safe) and waits for it.
TextServer::~TextServer() {
  std::promise<void> done;
  asio::post(impl_->acceptor.get_executor(), [impl = impl_, &done] {
    impl->stop();
    done.set_value();
  });
  done.get_future().wait();
}
std::uint16_t TextServer::port() const noexcept { return impl_->acceptor.local_endpoint().port(); }

}  // namespace hypha::kv
