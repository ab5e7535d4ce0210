#include "kv.hpp"

#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <future>
#include <set>
#include <map>
#include <shared_mutex>
#include <sstream>

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

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  for (std::string w; in >> w;) out.push_back(std::move(w));
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

// Runs f in a new hypha process and resumes the asio coroutine with its result.
asio::awaitable<std::string> in_process(Runtime& rt, std::function<Task<std::string>(Process&)> f) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(std::string)>(
      [&rt, f = std::move(f)](auto handler) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        rt.spawn([f = std::move(f), h](Process& self) -> Task<> {
          std::string reply;
          try {
            reply = co_await f(self);
          } catch (const std::exception& e) {
            reply = std::string("ERROR ") + e.what() + "\r\n";
          } catch (...) {
            reply = "ERROR internal\r\n";
          }
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex, [h, reply = std::move(reply)]() mutable { (*h)(std::move(reply)); });
        });
      },
      asio::use_awaitable);
}

constexpr std::size_t kMaxLine = 64 * 1024;

}  // namespace

// Every handler runs on the io_context it was started on (the node's: one thread at a time).
struct TextServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, Runtime& r, std::shared_ptr<const Router> ro) : acceptor(io), rt(r), router(std::move(ro)) {}
  asio::ip::tcp::acceptor acceptor;
  Runtime& rt;
  std::shared_ptr<const Router> router;
  std::set<std::shared_ptr<asio::ip::tcp::socket>> clients;
  bool stopped = false;

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      asio::error_code ec;
      auto s = std::make_shared<asio::ip::tcp::socket>(
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec)));
      if (stopped || ec == asio::error::operation_aborted) co_return;
      if (ec) continue;
      clients.insert(s);
      asio::co_spawn(acceptor.get_executor(), client(s), asio::detached);
    }
  }

  // One client: a line in, the reply out. A line too long gets an error and the connection ends;
  // a bad command gets its error line and the connection goes on.
  asio::awaitable<void> client(std::shared_ptr<asio::ip::tcp::socket> s) {
    auto self = shared_from_this();
    std::string buf;
    for (;;) {
      asio::error_code ec;
      const std::size_t n = co_await asio::async_read_until(*s, asio::dynamic_buffer(buf, kMaxLine), '\n',
                                                            asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::not_found) {
        co_await asio::async_write(*s, asio::buffer(std::string("ERROR line too long\r\n")),
                                   asio::redirect_error(asio::use_awaitable, ec));
        break;
      }
      if (ec || stopped) break;
      std::string line = buf.substr(0, n);
      buf.erase(0, n);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      // Named, not a temporary in the co_await: g++ 12 can destroy such temporaries twice.
      std::function<Task<std::string>(Process&)> work = [router_ref = router, line](Process& p) -> Task<std::string> {
        co_return co_await execute(p, *router_ref, line);
      };
      const std::string reply = co_await in_process(rt, std::move(work));
      if (stopped) break;
      co_await asio::async_write(*s, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    clients.erase(s);
  }

  void stop() {
    stopped = true;
    asio::error_code ec;
    acceptor.close(ec);
    for (const auto& c : clients) c->close(ec);
  }
};

Result<std::unique_ptr<TextServer>, std::string> TextServer::start(asio::io_context& io, std::uint16_t port, Runtime& rt,
                                                                   std::shared_ptr<const Router> router) {
  auto impl = std::make_shared<Impl>(io, rt, std::move(router));
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
// Stops on the io_context's own thread (its handlers are not thread-safe) and waits for it.
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
