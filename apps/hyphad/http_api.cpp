#include "http_api.hpp"

#include <httplib.h>

#include <algorithm>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "hypha/base/log.hpp"

namespace hypha::http {

namespace {

using json = nlohmann::json;
using SysClock = std::chrono::system_clock;

constexpr std::size_t kMaxBody = 1u << 20;
constexpr std::size_t kThreads = 64;
constexpr std::chrono::seconds kIoTimeout{5};
constexpr std::size_t kMaxDownNodes = 1000;
constexpr std::chrono::milliseconds kSnapshotEvery{1000};

std::string rfc3339(SysClock::time_point t) {
  const std::time_t secs = SysClock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, std::string_view code, std::string_view detail) {
  send_json(res, status, json{{"error", code}, {"detail", detail}});
}

// Equal strings, in a time that does not depend on where they differ.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

// What the API knows of the nodes of the cluster: the connected ones from the node itself, and
// those that went, with when, from a process that follows nodeup/nodedown. The last figures of
// each peer are kept (refreshed every second and on every change), so a node that went is
// still listed with its kind and traffic.
struct NodeBook {
  struct Entry {
    PeerInfo last;
    bool up = false;
    SysClock::time_point since;
  };
  std::mutex mu;
  std::map<Atom, Entry> entries;
  std::deque<Atom> down_order;  // oldest first, to forget beyond kMaxDownNodes

  void snapshot(const std::vector<PeerInfo>& peers) {
    std::lock_guard lock(mu);
    for (const PeerInfo& p : peers) {
      if (p.hidden) continue;  // CLI clients and erl_call: not members of the cluster
      Entry& e = entries[p.name];
      if (!e.up) e.since = p.since;
      e.up = true;
      e.last = p;
    }
  }
  void went(Atom name) {
    std::lock_guard lock(mu);
    auto it = entries.find(name);
    if (it == entries.end() || !it->second.up) return;
    it->second.up = false;
    it->second.since = SysClock::now();
    down_order.push_back(name);
    while (down_order.size() > kMaxDownNodes) {
      auto old = entries.find(down_order.front());
      if (old != entries.end() && !old->second.up) entries.erase(old);
      down_order.pop_front();
    }
  }
};

struct Api::Impl {
  Node& node;
  Options opts;
  httplib::Server server;
  std::thread thread;
  std::uint16_t port = 0;
  std::shared_ptr<NodeBook> book = std::make_shared<NodeBook>();
  Pid watcher;
  bool stopped = false;

  Impl(Node& n, Options o) : node(n), opts(std::move(o)) {}

  // Reads are open unless read_token is set; mutating calls need the token when it is set.
  bool allowed(const httplib::Request& req, bool mutating) const {
    const std::string& need = mutating ? opts.token : opts.read_token;
    if (need.empty()) return true;
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0) return false;
    const std::string_view given = std::string_view(auth).substr(kBearer.size());
    return same_secret(given, need) || (!mutating && !opts.token.empty() && same_secret(given, opts.token));
  }

  // A route that reads: refused with 401 when read_token is set and not given.
  template <class F>
  httplib::Server::Handler read_route(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      if (!allowed(req, false)) {
        res.set_header("WWW-Authenticate", "Bearer");
        return send_error(res, 401, "unauthorized", "this API's reads need the read token (Authorization: Bearer ...)");
      }
      f(req, res);
    };
  }

  json nodes_json() {
    book->snapshot(node.peers());
    json list = json::array();
    std::lock_guard lock(book->mu);
    for (const auto& [name, e] : book->entries) {
      list.push_back(json{{"name", name.text()},
                          {"status", e.up ? "up" : "down"},
                          {"kind", e.last.hypha ? "hypha" : "beam"},
                          {"since", rfc3339(e.since)},
                          {"messages_in", e.last.messages_in},
                          {"messages_out", e.last.messages_out},
                          {"bytes_in", e.last.bytes_in},
                          {"bytes_out", e.last.bytes_out}});
    }
    return json{{"self", node.name().text()}, {"nodes", std::move(list)}};
  }

  void routes() {
    server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, json{{"status", "ok"}, {"node", node.name().text()}});
    });
    server.Get("/api/nodes", read_route([this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, nodes_json());
    }));
    // Every status an error: a JSON body with its code, unless the route wrote one.
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      switch (res.status) {
        case 404: return send_error(res, 404, "not_found", "no such route: " + req.method + " " + req.path);
        case 413: return send_error(res, 413, "payload_too_large", "bodies are limited to 1 MiB");
        case 400: return send_error(res, 400, "bad_request", "the request could not be read");
        default: return send_error(res, res.status, "error", "HTTP status " + std::to_string(res.status));
      }
    });
    server.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      log::event(log::Level::Error, node.name().text(), "http_handler_failed", {{"path", req.path}, {"reason", what}});
      send_error(res, 500, "internal", what);
    });
  }

  // nodeup / nodedown as they happen, and the peers' figures every second.
  void start_watcher() {
    auto book_ref = book;
    Node* n = &node;
    watcher = node.runtime().spawn([book_ref, n](Process& self) -> Task<> {
      n->monitor_nodes(self.pid());
      const Atom tick("$hypha_http_tick"), down("nodedown");
      self.send_after(kSnapshotEvery, self.pid(), Term(tick));
      book_ref->snapshot(n->peers());
      for (;;) {
        Term m = co_await self.receive();
        if (m.is_atom(tick)) self.send_after(kSnapshotEvery, self.pid(), Term(tick));
        if (m.is_tuple() && m.tuple_size() >= 2 && m[0].is_atom(down) && m[1].is_atom()) book_ref->went(m[1].atom_value());
        book_ref->snapshot(n->peers());
      }
    });
  }
};

Result<std::unique_ptr<Api>, std::string> Api::start(Node& node, Options opts) {
  auto impl = std::make_unique<Impl>(node, std::move(opts));
  Impl& i = *impl;
  i.server.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  i.server.set_read_timeout(kIoTimeout);
  i.server.set_write_timeout(kIoTimeout);
  i.server.set_keep_alive_timeout(kIoTimeout.count());
  i.server.set_payload_max_length(kMaxBody);
  // Address reuse after a restart, but not SO_REUSEPORT (httplib's default): a second daemon
  // given the same port must fail, not share the port with the first.
  i.server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  i.routes();
  int bound = -1;
  if (i.opts.port == 0) {
    bound = i.server.bind_to_any_port(i.opts.bind);
  } else if (i.server.bind_to_port(i.opts.bind, i.opts.port)) {
    bound = i.opts.port;
  }
  if (bound <= 0)
    return unexpected("http: cannot listen on " + i.opts.bind + ":" + std::to_string(i.opts.port) +
                      " (in use, or not an address of this machine)");
  i.port = static_cast<std::uint16_t>(bound);
  i.start_watcher();
  i.thread = std::thread([&i] { i.server.listen_after_bind(); });
  log::event(log::Level::Info, node.name().text(), "http_listening", {{"address", i.opts.bind + ":" + std::to_string(i.port)}});
  return std::unique_ptr<Api>(new Api(std::move(impl)));
}

Api::Api(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Api::~Api() { stop(); }

std::uint16_t Api::port() const noexcept { return impl_->port; }

void Api::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->node.runtime().alive(impl_->watcher)) impl_->node.runtime().exit(impl_->watcher, Term(Atom("kill")));
}

}  // namespace hypha::http
