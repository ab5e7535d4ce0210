// The download manager over HTTP (docs/apps.md "The download manager"). A visitor is a session
// cookie (hypha_session, 128 random bits, HttpOnly, SameSite=Lax): the page sets it, and any
// visitor call without one gets one. The cookie is the visitor's secret; what names its job,
// cache entry and events is its hash (downloads::visitor_id), so the dashboard never shows it.
//
//   GET  /downloads                  the page
//   POST /api/downloads              {"url": "http://..."}: 201 the state; 409 running; 400
//   GET  /api/downloads/me           the visitor's state; 404 not_found
//   GET  /api/downloads/me/file      the finished file (from any node); 409 not_ready
//   GET  /api/downloads/me/events    server-sent events: the state now (event "state"), then
//                                    each change, from the cluster events
#include <random>

#include "dashboard.hpp"
#include "downloads.hpp"
#include "http_common.hpp"

namespace hypha::http::detail {

extern const char* const kDownloadsHtml;  // downloads.html, generated into downloads_html.cpp

namespace {

constexpr const char* kCookie = "hypha_session";
constexpr int kMaxStreams = 48;  // event streams of this node, the dashboard's included (64 HTTP threads)
constexpr std::size_t kChunk = 1 << 20;
constexpr auto kQuiet = std::chrono::seconds(5);

std::string new_session() {
  std::random_device rd;
  static const char* d = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 32; ++i) out += d[rd() & 15];
  return out;
}

// The session cookie's value when the request has a well-formed one (32 hex digits).
std::optional<std::string> session_of(const httplib::Request& req) {
  const std::string header = req.get_header_value("Cookie");
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string item = header.substr(pos, end - pos);
    pos = end + 1;
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    const std::string prefix = std::string(kCookie) + "=";
    if (item.rfind(prefix, 0) != 0) continue;
    const std::string v = item.substr(prefix.size());
    if (v.size() == 32 && std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isxdigit(c); })) return v;
  }
  return std::nullopt;
}

// The visitor of this request, giving it a session (Set-Cookie) when it has none.
std::string visitor_of(const httplib::Request& req, httplib::Response& res) {
  auto s = session_of(req);
  if (!s) {
    s = new_session();
    res.set_header("Set-Cookie", std::string(kCookie) + "=" + *s + "; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000");
  }
  return downloads::visitor_id(*s);
}

json status_json(const downloads::Status& s) {
  auto text_or_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
  return json{{"state", std::string(downloads::state_name(s.state))},
              {"progress", s.progress()},
              {"bytes", s.bytes},
              {"total", s.total ? json(*s.total) : json(nullptr)},
              {"node", text_or_null(s.node)},
              {"sha256", text_or_null(s.sha256)},
              {"url", s.url},
              {"error", text_or_null(s.error)},
              {"updated", rfc3339_or_null(s.updated_ms)}};
}

// The file's name for Content-Disposition: the URL path's last part, reduced to safe characters.
std::string file_name(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  const auto slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? "" : path.substr(slash + 1);
  std::string out;
  for (unsigned char c : base)
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') out += static_cast<char>(c);
  return out.empty() || out[0] == '.' ? "download" : out;
}

// The JSON of a cluster event's text when it is the visitor's download, else nullopt.
std::optional<json> visitor_event(const std::string& text, const std::string& visitor) {
  if (text.find("\"download\"") == std::string::npos) return std::nullopt;  // cheap first look
  json e = json::parse(text, nullptr, false);
  if (e.is_discarded() || e.value("kind", "") != "download" || e.value("visitor", "") != visitor) return std::nullopt;
  return e;
}

struct Stream {
  std::string pending;
  std::uint64_t after = 0;
};

}  // namespace

void add_download_routes(httplib::Server& server, const Context& ctx, std::shared_ptr<Hub> hub) {
  const downloads::Options& o = *ctx.opts.downloads;

  server.Get("/downloads", ctx.open("/downloads", [](const httplib::Request& req, httplib::Response& res) {
    (void)visitor_of(req, res);
    res.set_header("Cache-Control", "no-cache");
    res.set_content(kDownloadsHtml, "text/html; charset=utf-8");
  }));

  server.Post("/api/downloads", ctx.open("/api/downloads", [&ctx, &o](const httplib::Request& req, httplib::Response& res) {
    auto body = body_object(req, res);
    if (!body) return;
    const json* url = body->contains("url") ? &(*body)["url"] : nullptr;
    if (!url || !url->is_string())
      return send_error(res, 400, "bad_request", "url: a string is required", {{"field", "url"}});
    const std::string visitor = visitor_of(req, res);
    Runtime& rt = ctx.node.runtime();
    auto started = downloads::start(rt, o, visitor, url->get<std::string>());
    if (!started) {
      const Term& e = started.error();
      if (e.is_tuple() && e.tuple_size() == 2 && e[0].is_atom(Atom("bad_url")))
        return send_error(res, 400, "bad_request", "url: " + term_text(e[1]), {{"field", "url"}});
      if (e.is_tuple() && e.tuple_size() == 2 && e[0].is_atom(Atom("already_started"))) {
        json extra = json::object();
        if (auto now = downloads::status(rt, o, visitor); now && *now) extra["download"] = status_json(**now);
        return send_error(res, 409, "running", "this visitor has a download running", extra);
      }
      return send_error(res, 503, "unavailable", "the download could not start: " + term_text(e));
    }
    auto now = downloads::status(rt, o, visitor);
    json out = now && *now ? status_json(**now) : json::object();
    out["node"] = started->node.text();  // where it runs (the state says so once it started)
    send_json(res, 201, out);
  }));

  server.Get("/api/downloads/me", ctx.open("/api/downloads/me", [&ctx, &o](const httplib::Request& req, httplib::Response& res) {
    const std::string visitor = visitor_of(req, res);
    auto now = downloads::status(ctx.node.runtime(), o, visitor);
    if (!now) return send_error(res, 503, "unavailable", "the downloads' cache did not answer: " + term_text(now.error()));
    if (!*now) return send_error(res, 404, "not_found", "no download for this visitor");
    send_json(res, 200, status_json(**now));
  }));

  server.Get("/api/downloads/me/file", ctx.open("/api/downloads/me/file", [&ctx, &o](const httplib::Request& req, httplib::Response& res) {
    const std::string visitor = visitor_of(req, res);
    Runtime& rt = ctx.node.runtime();
    auto now = downloads::status(rt, o, visitor);
    if (!now) return send_error(res, 503, "unavailable", "the downloads' cache did not answer: " + term_text(now.error()));
    if (!*now) return send_error(res, 404, "not_found", "no download for this visitor");
    const downloads::Status s = **now;
    if (s.state != downloads::State::Ready)
      return send_error(res, 409, "not_ready", "the download is " + std::string(downloads::state_name(s.state)),
                        {{"download", status_json(s)}});
    // The first chunk before the answer's status: a file nobody can read now is a 503, not a
    // 200 cut short.
    auto first = downloads::read(rt, o, s, 0, kChunk);
    if (!first) return send_error(res, 503, "unavailable", "the file cannot be read now: " + term_text(first.error()));
    auto head = std::make_shared<std::string>(std::move(*first));
    res.set_header("Content-Disposition", "attachment; filename=\"" + file_name(s.url) + "\"");
    res.set_header("X-Checksum-Sha256", s.sha256);
    res.set_content_provider(
        s.bytes, "application/octet-stream",
        [&ctx, &o, s, head](std::size_t offset, std::size_t, httplib::DataSink& sink) {
          if (offset < head->size()) return sink.write(head->data() + offset, head->size() - offset);
          auto chunk = downloads::read(ctx.node.runtime(), o, s, offset, kChunk);
          if (!chunk || chunk->empty()) return false;  // the connection is closed: the client sees it short
          return sink.write(chunk->data(), chunk->size());
        });
  }));

  server.Get("/api/downloads/me/events", ctx.open("/api/downloads/me/events", [&ctx, &o, hub](const httplib::Request& req,
                                                                                              httplib::Response& res) {
    if (!hub) return send_error(res, 503, "unavailable", "no cluster events on this node");
    if (hub->streams.fetch_add(1) >= kMaxStreams) {
      --hub->streams;
      return send_error(res, 503, "busy", "too many event streams on this node; another node may take it");
    }
    const std::string visitor = visitor_of(req, res);
    auto st = std::make_shared<Stream>();
    st->after = hub->seq();  // taken before the state: a change after it comes after it
    auto now = downloads::status(ctx.node.runtime(), o, visitor);
    const json first = now && *now ? status_json(**now) : json{{"state", nullptr}};
    st->pending = "retry: 1000\nevent: state\ndata: " + first.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [&ctx, &o, hub, st, visitor](std::size_t, httplib::DataSink& sink) {
          if (auto wrote = write_pending(st->pending, sink)) return *wrote;
          Hub::Batch b = hub->wait(st->after, kQuiet);
          if (b.closed) return false;
          std::string out;
          if (b.lost) {  // too slow: the state again
            st->after = hub->seq();
            auto again = downloads::status(ctx.node.runtime(), o, visitor);
            if (again && *again) out = "event: state\ndata: " + status_json(**again).dump() + "\n\n";
          }
          for (const auto& [seq, text] : b.events) {
            st->after = seq;
            if (auto e = visitor_event(text, visitor)) {
              json s = {{"state", (*e)["state"]},   {"progress", (*e)["progress"]}, {"bytes", (*e)["bytes"]},
                        {"total", (*e)["total"]},   {"node", (*e)["node"]},         {"url", (*e)["url"]},
                        {"sha256", (*e)["sha256"]}, {"error", (*e)["error"]},       {"updated", (*e)["at"]}};
              for (const char* k : {"sha256", "error"})
                if (s[k] == "") s[k] = nullptr;
              out += "event: state\nid: " + std::to_string(seq) + "\ndata: " + s.dump() + "\n\n";
            }
          }
          if (out.empty()) out = "event: ping\ndata: {}\n\n";
          return sink.write(out.data(), out.size());
        },
        [hub](bool) { --hub->streams; });
  }));
}

}  // namespace hypha::http::detail
