#include "dashboard.hpp"

#include <algorithm>

#include <unistd.h>

#include <fstream>

#include "http_common.hpp"
#include "hypha/base/log.hpp"
#include "hypha/cluster/events.hpp"
#include "hypha/cluster/pubsub.hpp"
#include "hypha/term/match.hpp"

namespace hypha::http::detail {

std::pair<std::uint64_t, std::uint64_t> count_processes(Node& node) {
  std::uint64_t total = 0, runnable = 0;
  for (const Pid& p : node.runtime().processes())
    if (auto info = node.runtime().process_info(p)) {
      ++total;
      if (info->status == ProcessStatus::Runnable) ++runnable;
    }
  return {total, runnable};
}

json event_json(const Term& t) {
  if (t.is_integer()) {
    if (auto v = from_term<std::int64_t>(t)) return *v;
    return term_text(t);
  }
  if (t.is_float()) return t.float_value();
  if (t.is_atom(Atom("true")) || t.is_atom(Atom("false"))) return t.is_atom(Atom("true"));
  if (t.is_atom(Atom("undefined"))) return nullptr;
  if (t.is_map()) {
    json o = json::object();
    for (const auto& [k, v] : t.map_entries()) {
      const std::string key = term_text(k);
      if ((key == "started" || key == "ended" || key == "at") && v.is_integer())
        o[key] = rfc3339_or_null(from_term<std::int64_t>(v).value_or(0));
      else if (key == "name" || key == "id")
        o[key] = term_text(v);  // a task's name, a child's id: as /api/tasks and the CLI show them
      else
        o[key] = event_json(v);
    }
    return o;
  }
  if (t.is_proper_list() && !t.is_nil()) {
    json a = json::array();
    for (const Term& e : t.list_elements()) a.push_back(event_json(e));
    return a;
  }
  if (t.is_nil()) return json::array();
  return term_text(t);
}

// --- the Hub

void Hub::push(json event) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  event["seq"] = ++seq_;
  if (!event.contains("at")) event["at"] = rfc3339(std::chrono::system_clock::now());
  const std::string kind = event.value("kind", "");
  if (kind == "stats") stats_[event.value("node", "")] = event;
  else if (kind == "groups") groups_ = event;
  else if (kind == "names") names_ = event;
  else {
    // A task's progress, or a child's new pid, is not news: the latest line about that task or
    // child, if it says the same state on the same node, is updated in place (its time stays the
    // state's first); otherwise the history would be all progress of a few tasks.
    const char* key = kind == "task" ? "name" : kind == "child" ? "id" : kind == "download" ? "visitor" : nullptr;
    auto same = history_.rend();
    if (key)
      same = std::find_if(history_.rbegin(), history_.rend(),
                          [&](const json& o) { return o.value("kind", "") == kind && o[key] == event[key]; });
    if (same != history_.rend() && (*same)["status"] == event["status"] && (*same)["node"] == event["node"]) {
      json line = event;
      line["at"] = (*same)["at"];
      *same = std::move(line);
    } else {
      history_.push_back(event);
    }
    if (history_.size() > kHistory) history_.pop_front();
  }
  recent_.emplace_back(seq_, event.dump(-1, ' ', false, json::error_handler_t::replace));
  if (recent_.size() > kRecent) recent_.pop_front();
  cv_.notify_all();
}

json Hub::state() const {
  std::lock_guard lock(mu_);
  json stats = json::array();
  for (const auto& [n, s] : stats_) stats.push_back(s);
  json history = json::array();
  for (const auto& h : history_) history.push_back(h);
  return json{{"seq", seq_}, {"stats", std::move(stats)}, {"groups", groups_}, {"names", names_},
              {"history", std::move(history)}};
}

Hub::Batch Hub::wait(std::uint64_t after, std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [&] { return closed_ || seq_ > after; });
  Batch b;
  b.closed = closed_;
  if (seq_ <= after) return b;
  if (recent_.empty() || recent_.front().first > after + 1) {
    b.lost = true;
    return b;
  }
  for (auto it = recent_.rbegin(); it != recent_.rend() && it->first > after; ++it) b.events.push_back(*it);
  std::reverse(b.events.begin(), b.events.end());
  return b;
}

std::uint64_t Hub::seq() const {
  std::lock_guard lock(mu_);
  return seq_;
}

void Hub::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

// --- the reporter

namespace {

using Clock = std::chrono::steady_clock;
using namespace pattern;

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// This process's resident memory, from /proc/self/statm (0 when unknown).
std::int64_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * ::sysconf(_SC_PAGESIZE);
}

class Reporter {
 public:
  Reporter(Node& node, ReporterOptions opts) : node_(node), opts_(std::move(opts)) {}

  Task<> run(Process& self) {
    node_.monitor_nodes(self.pid());
    if (auto s = pubsub::subscribe(self.runtime(), opts_.pubsub, events::kTopic, self.pid()); !s)
      log::event(log::Level::Warn, node_.name().text(), "dashboard_not_subscribed", {{"reason", s.error().to_string()}});
    const Atom tick("$hypha_dashboard_tick");
    self.send_after(std::chrono::milliseconds(0), self.pid(), Term(tick));
    for (;;) {
      Term m = co_await self.receive();
      Pid pid;
      Ref ref;
      const Term* event = nullptr;
      Atom peer;
      if (m.is_atom(tick)) {
        self.send_after(opts_.every, self.pid(), Term(tick));
        ping_peers(self);
        publish_stats(self);
        if (opts_.hub) local_views();
      } else if (match(m, tuple(bind(ref), "yes")) || match(m, tuple(bind(ref), "no"))) {
        pong(ref);
      } else if (match(m, tuple(events::tag(), bind(event))) && event->is_map()) {
        if (opts_.hub) opts_.hub->push(event_json(*event));
      } else if (match(m, tuple("nodeup", bind(peer))) || match(m, tuple("nodedown", bind(peer)))) {
        const bool up = m[0].is_atom(Atom("nodeup"));
        if (!up) rtt_us_.erase(peer);
        events::publish(self.runtime(), opts_.pubsub,
                        events::map({{"kind", Term(Atom("node"))},
                                     {"node", Term(node_.name())},
                                     {"peer", Term(peer)},
                                     {"status", Term(Atom(up ? "up" : "down"))},
                                     {"at", Term(unix_ms_now())}}));
      }
    }
  }

 private:
  struct Ping {
    Atom peer;
    Clock::time_point sent;
  };

  // An is_auth call to each peer's net_kernel (what net_adm:ping sends): its answer times the
  // link's round trip, through the same connection the node's traffic takes.
  void ping_peers(Process& self) {
    const auto now = Clock::now();
    std::erase_if(pings_, [&](const auto& p) { return now - p.second.sent > std::chrono::seconds(10); });
    const Term me(self.pid());
    for (const PeerInfo& p : node_.peers()) {
      if (p.hidden) continue;
      const Ref ref = self.make_ref();
      pings_[ref] = Ping{p.name, now};
      self.send(Atom("net_kernel"), p.name,
                Term::tuple({Term(Atom("$gen_call")), Term::tuple({me, Term(ref)}),
                             Term::tuple({Term(Atom("is_auth")), Term(node_.name())})}));
    }
  }

  void pong(const Ref& ref) {
    auto it = pings_.find(ref);
    if (it == pings_.end()) return;
    rtt_us_[it->second.peer] =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - it->second.sent).count();
    pings_.erase(it);
  }

  void publish_stats(Process& self) {
    std::vector<Term> links;
    for (const PeerInfo& p : node_.peers()) {
      if (p.hidden) continue;
      auto rtt = rtt_us_.find(p.name);
      links.push_back(events::map(
          {{"peer", Term(p.name)},
           {"kind", Term(Atom(p.hypha ? "hypha" : "beam"))},
           {"rtt_us", rtt == rtt_us_.end() ? Term(Atom("undefined")) : Term(static_cast<std::int64_t>(rtt->second))},
           {"messages_in", Term(static_cast<std::int64_t>(p.messages_in))},
           {"messages_out", Term(static_cast<std::int64_t>(p.messages_out))},
           {"bytes_in", Term(static_cast<std::int64_t>(p.bytes_in))},
           {"bytes_out", Term(static_cast<std::int64_t>(p.bytes_out))},
           {"send_queue", Term(static_cast<std::int64_t>(p.send_queue_bytes))}}));
    }
    std::vector<Term> caches;
    for (const auto& c : opts_.caches) {
      auto s = cache::Cache(c.name).stats(self.runtime());
      if (!s) continue;
      caches.push_back(events::map({{"name", Term(c.name)},
                                    {"mode", Term(Atom(cache::mode_name(c.mode)))},
                                    {"local_size", Term(static_cast<std::int64_t>(s->local_size))},
                                    {"hits", Term(static_cast<std::int64_t>(s->hits))},
                                    {"misses", Term(static_cast<std::int64_t>(s->misses))},
                                    {"writes", Term(static_cast<std::int64_t>(s->writes))}}));
    }
    const auto [total, runnable] = count_processes(node_);
    events::publish(self.runtime(), opts_.pubsub,
                    events::map({{"kind", Term(Atom("stats"))},
                                 {"node", Term(node_.name())},
                                 {"processes", Term(static_cast<std::int64_t>(total))},
                                 {"run_queue", Term(static_cast<std::int64_t>(runnable))},
                                 {"memory", Term(resident_bytes())},
                                 {"links", Term::list(std::move(links))},
                                 {"caches", Term::list(std::move(caches))},
                                 {"at", Term(unix_ms_now())}}));
  }

  // The groups and names as this node sees them (both replicated on every node), to the Hub
  // when they changed.
  void local_views() {
    cluster::Options services;
    services.pg_scopes = opts_.pg_scopes;
    services.events = opts_.pubsub;
    json groups = groups_json(node_.runtime(), services, false);
    if (groups != last_groups_) {
      last_groups_ = groups;
      groups["kind"] = "groups";
      opts_.hub->push(std::move(groups));
    }
    if (!opts_.registry) return;
    json names = names_json(node_.runtime(), *opts_.registry, kNames);
    if (names != last_names_) {
      last_names_ = names;
      names["kind"] = "names";
      opts_.hub->push(std::move(names));
    }
  }

  static constexpr std::size_t kNames = 200;
  Node& node_;
  ReporterOptions opts_;
  std::map<Ref, Ping> pings_;
  std::map<Atom, std::int64_t> rtt_us_;
  json last_groups_ = nullptr, last_names_ = nullptr;
};

}  // namespace

Pid start_reporter(Node& node, ReporterOptions opts) {
  auto reporter = std::make_shared<Reporter>(node, std::move(opts));
  const Pid pid = node.runtime().spawn([reporter](Process& self) -> Task<> { co_await reporter->run(self); });
  node.runtime().register_name(Atom("hypha_dashboard"), pid);
  return pid;
}

}  // namespace hypha::http::detail
