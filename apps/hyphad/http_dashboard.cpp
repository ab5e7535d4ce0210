// The live dashboard over HTTP (docs/apps.md "Dashboard"):
//
//   GET /                 the page (one HTML file with its script and style, built into hyphad)
//   GET /api/dashboard    the state a page starts from (JSON)
//   GET /api/events       server-sent events: that state first (event "snapshot"), then every
//                         event this node hears, numbered (id), as they come; a ping event every
//                         5 s of quiet keeps proxies and the page's watchdog from taking it for a dead one
#include "dashboard.hpp"
#include "http_common.hpp"
#include "hypha/cluster/supervisor.hpp"

namespace hypha::http::detail {

extern const char* const kDashboardHtml;  // dashboard.html, generated into dashboard_html.cpp

namespace {

constexpr int kMaxStreams = 32;  // of the 64 HTTP threads
constexpr auto kQuiet = std::chrono::seconds(5);

// hub->state() taken first: every event after its seq reaches the stream after it, so a page
// that applies both (each event says the whole state of one thing) ends up current.
json snapshot(const Context& ctx, const DashboardFeed& feed) {
  json s = feed.hub->state();
  s["self"] = ctx.node.name().text();
  s["nodes"] = feed.nodes()["nodes"];
  json tasks = nullptr;  // null: no [tasks] here, or the orchestrator is moving
  if (ctx.opts.tasks)
    if (auto all = ctx.opts.tasks->list(ctx.node.runtime())) {
      tasks = json::array();
      for (const auto& i : *all) tasks.push_back(task_json(i, false));
    }
  s["tasks"] = std::move(tasks);
  json children = nullptr;
  if (ctx.opts.services.supervisor) {
    children = json::array();
    for (const auto& c : dsup::which_children(ctx.node.runtime(), ctx.opts.services.supervisor->name))
      children.push_back(json{{"id", term_text(c.id)}, {"node", c.node.text()}, {"pid", term_text(Term(c.pid))}});
  }
  s["children"] = std::move(children);
  return s;
}

std::string snapshot_event(const json& s) {
  return "event: snapshot\ndata: " + s.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

struct Stream {
  std::string pending;  // written before waiting for events
  std::uint64_t after = 0;
};

}  // namespace

void add_dashboard_routes(httplib::Server& server, const Context& ctx, DashboardFeed feed) {
  server.Get("/", ctx.open("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(kDashboardHtml, "text/html; charset=utf-8");
  }));

  server.Get("/api/dashboard", ctx.read("/api/dashboard", [&ctx, feed](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, snapshot(ctx, feed));
  }));

  server.Get("/api/events", ctx.read("/api/events", [&ctx, feed](const httplib::Request&, httplib::Response& res) {
    auto hub = feed.hub;
    if (hub->streams.fetch_add(1) >= kMaxStreams) {
      --hub->streams;
      return send_error(res, 503, "busy", "too many event streams on this node; another node may take it");
    }
    auto st = std::make_shared<Stream>();
    const json s = snapshot(ctx, feed);
    st->after = s.value("seq", std::uint64_t{0});
    st->pending = "retry: 1000\n" + snapshot_event(s);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // nginx: pass each event on at once
    res.set_chunked_content_provider(
        "text/event-stream",
        [&ctx, feed, hub, st](std::size_t, httplib::DataSink& sink) {
          if (auto wrote = write_pending(st->pending, sink)) return *wrote;
          Hub::Batch b = hub->wait(st->after, kQuiet);
          if (b.closed) return false;
          if (b.lost) {  // too slow for the events kept: start again from the state
            const json again = snapshot(ctx, feed);
            st->after = again.value("seq", std::uint64_t{0});
            const std::string out = snapshot_event(again);
            return sink.write(out.data(), out.size());
          }
          std::string out;
          if (b.events.empty()) out = "event: ping\ndata: {}\n\n";  // (a comment would not reach the page's script)
          for (const auto& [seq, text] : b.events) {
            out += "id: " + std::to_string(seq) + "\ndata: " + text + "\n\n";
            st->after = seq;
          }
          return sink.write(out.data(), out.size());
        },
        [hub](bool) { --hub->streams; });
  }));
}

}  // namespace hypha::http::detail
