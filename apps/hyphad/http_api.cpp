#include "http_api.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "dashboard.hpp"
#include "http_common.hpp"
#include "hypha/base/log.hpp"
#include "hypha/base/metrics.hpp"
#include "hypha/base/utf8.hpp"
#include "hypha/term/text.hpp"

namespace hypha::http {

namespace detail {

using SysClock = std::chrono::system_clock;

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

json rfc3339_or_null(std::int64_t unix_ms) {
  if (unix_ms <= 0) return nullptr;
  return rfc3339(SysClock::time_point(std::chrono::milliseconds(unix_ms)));
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  // Replaced, not escaped, when a text is not UTF-8 (a term's text always is; a header may not).
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, std::string_view code, std::string_view detail, const json& extra) {
  json body{{"error", code}, {"detail", detail}};
  for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
  send_json(res, status, body);
}

namespace {

// UTF-8 without control characters other than tab and newlines: text a person would read.
bool readable_utf8(std::string_view s) {
  for (char c : s)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
  return utf8::valid(s);
}

}  // namespace

std::string term_text(const Term& t) {
  if (t.is_binary() && readable_utf8(t.binary_view())) return std::string(t.binary_view());
  if (t.is_atom()) return std::string(t.atom_value().text());
  std::string out;
  format_term(out, t);
  return out;
}

namespace {

// Equal strings, in a time that does not depend on where they differ.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

bool Context::allowed(const httplib::Request& req, bool mutating) const {
  const std::string& need = mutating ? opts.token : opts.read_token;
  if (need.empty()) return true;
  const std::string auth = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view given;
  if (auth.size() > kBearer.size() && auth.compare(0, kBearer.size(), kBearer) == 0)
    given = std::string_view(auth).substr(kBearer.size());
  else if (!mutating && req.has_param("token"))
    given = req.get_param_value("token");  // a read by a browser's EventSource, which sends no headers
  if (given.empty()) return false;
  return same_secret(given, need) || (!mutating && !opts.token.empty() && same_secret(given, opts.token));
}

Handler Context::open(std::string route, Handler f) const { return wrap(std::move(route), Need::Nothing, std::move(f)); }
Handler Context::read(std::string route, Handler f) const { return wrap(std::move(route), Need::Read, std::move(f)); }
Handler Context::write(std::string route, Handler f) const { return wrap(std::move(route), Need::Write, std::move(f)); }

void count_request(const std::string& node, const std::string& route, const std::string& method, int status,
                   std::chrono::steady_clock::duration took) {
  metrics::counter("hypha_http_requests_total", "HTTP API requests, by route, method and status",
                   {{"node", node}, {"route", route}, {"method", method}, {"status", std::to_string(status)}})
      .add();
  metrics::histogram("hypha_http_request_duration_seconds", "How long HTTP API requests took to answer, by route",
                     {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}, {{"node", node}, {"route", route}})
      .observe(std::chrono::duration<double>(took).count());
}

Handler Context::wrap(std::string route, Need need, Handler f) const {
  return [this, route = std::move(route), need, f = std::move(f)](const httplib::Request& req, httplib::Response& res) {
    ++active;
    struct Done {
      const Context& ctx;
      const std::string& route;
      const httplib::Request& req;
      httplib::Response& res;
      std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
      ~Done() {
        count_request(std::string(ctx.node.name().text()), route, req.method, res.status,
                      std::chrono::steady_clock::now() - t0);
        --ctx.active;
      }
    } done{*this, route, req, res};
    if (need != Need::Nothing && !allowed(req, need == Need::Write)) {
      res.set_header("WWW-Authenticate", "Bearer");
      return send_error(res, 401, "unauthorized",
                        need == Need::Write ? "this call needs the API token (Authorization: Bearer ...)"
                                            : "this API's reads need the read token (Authorization: Bearer ...)");
    }
    f(req, res);
  };
}

std::optional<bool> write_pending(std::string& pending, httplib::DataSink& sink) {
  if (pending.empty()) return std::nullopt;
  const std::string out = std::move(pending);
  pending.clear();
  return sink.write(out.data(), out.size());
}

std::optional<json> body_object(const httplib::Request& req, httplib::Response& res) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) {
    send_error(res, 400, "bad_request", "the body is not JSON", {{"field", "body"}});
    return std::nullopt;
  }
  if (!j.is_object()) {
    send_error(res, 400, "bad_request", "the body must be a JSON object", {{"field", "body"}});
    return std::nullopt;
  }
  return j;
}

}  // namespace detail

using namespace detail;

namespace {
constexpr std::size_t kMaxBody = 1u << 20;
constexpr std::size_t kThreads = 64;
constexpr std::chrono::seconds kIoTimeout{5};
constexpr std::size_t kMaxDownNodes = 1000;
constexpr std::chrono::milliseconds kSnapshotEvery{1000};
constexpr std::chrono::seconds kStopGrace{2};

// Shuts down (both ways) every connected socket of this process whose local port is `port`:
// the connections the API accepted, found through /proc/self/fd. Only its listening socket has
// that local port otherwise, and it is not connected.
void shut_connections_to(std::uint16_t port) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == ::dirfd(dir)) continue;
    struct stat st {};
    if (::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    std::uint16_t local = 0;
    if (addr.ss_family == AF_INET) local = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    else if (addr.ss_family == AF_INET6) local = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    else continue;
    int listening = 0;
    socklen_t olen = sizeof listening;
    if (local != port || ::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) != 0 || listening)
      continue;
    ::shutdown(static_cast<int>(fd), SHUT_RDWR);
  }
  ::closedir(dir);
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
  std::shared_ptr<Hub> hub;  // the dashboard's, with services.events
  Pid reporter;
  bool stopped = false;

  Context ctx{node, opts};

  Impl(Node& n, Options o) : node(n), opts(std::move(o)) {}

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
    server.Get("/health", ctx.open("/health", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, json{{"status", "ok"}, {"node", node.name().text()}});
    }));
    server.Get("/api/nodes", ctx.read("/api/nodes", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, nodes_json());
    }));
    add_task_routes(server, ctx);
    add_cluster_routes(server, ctx);
    add_metrics_route(server, ctx);
    if (opts.services.events) {
      hub = std::make_shared<Hub>();
      add_dashboard_routes(server, ctx, DashboardFeed{hub, [this] { return nodes_json(); }});
    }
    if (opts.downloads) add_download_routes(server, ctx, hub);
    // Every status an error: a JSON body with its code, unless the route wrote one.
    server.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a route's own error, counted with it
      count_request(std::string(node.name().text()), "unmatched", req.method, res.status, {});
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
  // Headers and body go in separate writes: with Nagle on, a keep-alive client's delayed ACK
  // holds every answer ~40 ms (measured: 148 requests/s direct against 3,114 through nginx).
  i.server.set_tcp_nodelay(true);
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
  if (i.hub)
    i.reporter = start_reporter(node, ReporterOptions{.pubsub = *i.opts.services.events,
                                                      .hub = i.hub,
                                                      .caches = i.opts.services.caches,
                                                      .registry = i.opts.services.registry
                                                                      ? std::optional<Atom>(i.opts.services.registry->name)
                                                                      : std::nullopt,
                                                      .pg_scopes = i.opts.services.pg_scopes});
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
  if (impl_->hub) impl_->hub->close();  // the event streams end
  impl_->server.stop();  // no new connections
  // Requests being handled get a moment to finish; then the connections left (idle keep-alive
  // ones, which cpp-httplib would otherwise wait on for their whole timeout) are shut down.
  const auto until = std::chrono::steady_clock::now() + kStopGrace;
  while (impl_->ctx.active.load() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  shut_connections_to(impl_->port);
  if (impl_->thread.joinable()) impl_->thread.join();
  for (const Pid& p : {impl_->watcher, impl_->reporter})
    if (impl_->node.runtime().alive(p)) impl_->node.runtime().exit(p, Term(Atom("kill")));
}

}  // namespace hypha::http
