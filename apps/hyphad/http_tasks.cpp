// /api/tasks: the cluster's unique tasks (cluster/tasks.hpp) over HTTP (docs/apps.md).
//
//   GET    /api/tasks        200 {"tasks":[Task]}               Task: name, status, node, pid,
//   GET    /api/tasks/NAME   200 Task (with result or reason)    progress, started, ended
//   POST   /api/tasks        201 {"name","pid","node"}; 409 running (with the running task);
//                            400 bad_request naming the field; 401; 503 while the orchestrator moves
//   DELETE /api/tasks/NAME   200 {"name","status":"stopped"|"forgotten"}; 404; 409 starting
#include <optional>
#include <set>

#include "http_common.hpp"
#include "hypha/term/text.hpp"

namespace hypha::http::detail {

namespace {

using tasks::Status;

const char* status_name(Status::Kind k) {
  switch (k) {
    case Status::Kind::Done: return "done";
    case Status::Kind::Failed: return "failed";
    default: return "running";
  }
}

}  // namespace

json task_json(const tasks::Info& i, bool with_result) {
  json j{{"name", term_text(i.name)},
         {"status", status_name(i.state)},
         {"node", i.node.text()},
         {"pid", term_text(Term(i.pid))},
         {"progress", i.progress ? json(*i.progress) : json(nullptr)},
         {"started", rfc3339_or_null(i.started_ms)},
         {"ended", rfc3339_or_null(i.ended_ms)}};
  if (with_result && i.state == Status::Kind::Done) j["result"] = term_text(i.result);
  if (with_result && i.state == Status::Kind::Failed) j["reason"] = term_text(i.result);
  return j;
}

namespace {

bool is_unavailable(const Term& e) { return e == tasks::unavailable(); }

// The errors every task call can give besides its own: 503 while the orchestrator moves or
// without a majority, 500 for anything else (named).
void task_error(httplib::Response& res, const Term& e) {
  if (is_unavailable(e))
    return send_error(res, 503, "unavailable", "the task orchestrator is not running (moving to another node): retry");
  if (e.is_atom(Atom("no_quorum")))
    return send_error(res, 503, "unavailable", "no majority of the supervisor's members is reachable from this node");
  send_error(res, 500, "internal", "the cluster answered " + term_text(e));
}

Term name_of(const httplib::Request& req) { return Term::binary(req.matches[1].str()); }

// A POST body's fields, checked; a 400 naming the field when one is wrong.
struct StartRequest {
  std::optional<std::string> name;
  Atom module, function;
  Term args = Term::list({});
  bool restart = false;
  std::optional<std::pair<Atom, Atom>> callback;
};

std::optional<Atom> atom_field(const json& body, const char* key, httplib::Response& res) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
    send_error(res, 400, "bad_request", std::string(key) + ": required, a non-empty string", {{"field", key}});
    return std::nullopt;
  }
  auto a = Atom::make(it->get<std::string>());
  if (!a) {
    send_error(res, 400, "bad_request", std::string(key) + ": not an atom (at most 255 characters)", {{"field", key}});
    return std::nullopt;
  }
  return *a;
}

std::optional<StartRequest> start_request(const json& body, httplib::Response& res, const Options& opts) {
  static const std::set<std::string> kKnown{"name", "module", "function", "args", "restart", "callback"};
  for (auto it = body.begin(); it != body.end(); ++it)
    if (!kKnown.count(it.key())) {
      send_error(res, 400, "bad_request",
                 it.key() + ": unknown field (known: name, module, function, args, restart, callback)",
                 {{"field", it.key()}});
      return std::nullopt;
    }
  StartRequest r;
  if (auto it = body.find("name"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      send_error(res, 400, "bad_request", "name: a non-empty string, or absent for a generated one", {{"field", "name"}});
      return std::nullopt;
    }
    r.name = it->get<std::string>();
  }
  auto mod = atom_field(body, "module", res);
  if (!mod) return std::nullopt;
  auto fun = atom_field(body, "function", res);
  if (!fun) return std::nullopt;
  r.module = *mod;
  r.function = *fun;
  if (auto it = body.find("args"); it != body.end()) {
    if (!it->is_string()) {
      send_error(res, 400, "bad_request", "args: a string, a list in Erlang syntax such as \"[1000]\"", {{"field", "args"}});
      return std::nullopt;
    }
    auto t = parse_term(it->get<std::string>());
    if (!t) {
      send_error(res, 400, "bad_request", "args: not an Erlang term: " + t.error().message(), {{"field", "args"}});
      return std::nullopt;
    }
    if (!t->is_proper_list() && !t->is_nil()) {
      send_error(res, 400, "bad_request", "args: must be a list (the function's arguments)", {{"field", "args"}});
      return std::nullopt;
    }
    r.args = *t;
  }
  if (auto it = body.find("restart"); it != body.end()) {
    if (!it->is_boolean()) {
      send_error(res, 400, "bad_request", "restart: true or false", {{"field", "restart"}});
      return std::nullopt;
    }
    r.restart = it->get<bool>();
  }
  if (auto it = body.find("callback"); it != body.end() && !it->is_null()) {
    const std::string text = it->is_string() ? it->get<std::string>() : std::string();
    const auto colon = text.find(':');
    auto atom_of = [](std::string_view t) -> std::optional<Atom> {
      if (t.empty()) return std::nullopt;
      auto a = Atom::make(t);
      return a ? std::optional<Atom>(*a) : std::nullopt;
    };
    const auto cm = colon == std::string::npos ? std::nullopt : atom_of(std::string_view(text).substr(0, colon));
    const auto cf = colon == std::string::npos ? std::nullopt : atom_of(std::string_view(text).substr(colon + 1));
    if (!cm || !cf) {
      send_error(res, 400, "bad_request", "callback: \"module:function\" (an export called with name and result)",
                 {{"field", "callback"}});
      return std::nullopt;
    }
    r.callback = std::pair{*cm, *cf};
  }
  const std::size_t arity = r.args.is_nil() ? 0 : r.args.list_elements().size();
  if (opts.exports && !opts.exports->exported(r.module, r.function, arity)) {
    send_error(res, 400, "bad_request",
               "module, function: " + std::string(r.module.text()) + ":" + std::string(r.function.text()) + "/" +
                   std::to_string(arity) + " is not exported on this node",
               {{"field", "function"}});
    return std::nullopt;
  }
  return r;
}

}  // namespace

void add_task_routes(httplib::Server& server, const Context& ctx) {
  // Without [tasks] on this node: every route says so.
  auto service = [&ctx](httplib::Response& res) -> tasks::Service* {
    if (!ctx.opts.tasks)
      send_error(res, 503, "unavailable", "this node does not run cluster tasks (no [tasks] in its config)");
    return ctx.opts.tasks.get();
  };
  Runtime* rt = &ctx.node.runtime();

  server.Get("/api/tasks", ctx.read("/api/tasks", [service, rt](const httplib::Request&, httplib::Response& res) {
    auto* svc = service(res);
    if (!svc) return;
    auto all = svc->list(*rt);
    if (!all) return task_error(res, all.error());
    json list = json::array();
    for (const auto& i : *all) list.push_back(task_json(i, false));
    send_json(res, 200, json{{"tasks", std::move(list)}});
  }));

  server.Get(R"(/api/tasks/(.+))", ctx.read("/api/tasks/NAME", [service, rt](const httplib::Request& req, httplib::Response& res) {
    auto* svc = service(res);
    if (!svc) return;
    const Term name = name_of(req);
    auto i = svc->info(*rt, name);
    if (i) return send_json(res, 200, task_json(*i, true));
    if (i.error().is_tuple() && i.error().tuple_size() == 2 && i.error()[0].is_atom(Atom("distributed_task_not_found")))
      return send_error(res, 404, "not_found", "no task named " + term_text(name));
    task_error(res, i.error());
  }));

  server.Post("/api/tasks", ctx.write("/api/tasks", [service, rt, &ctx](const httplib::Request& req, httplib::Response& res) {
    auto* svc = service(res);
    if (!svc) return;
    auto body = body_object(req, res);
    if (!body) return;
    auto r = start_request(*body, res, ctx.opts);
    if (!r) return;
    tasks::StartOptions so;
    if (r->name) so.name = Term::binary(*r->name);
    so.restart = r->restart;
    so.callback = r->callback;
    auto started = svc->start_async(*rt, r->module, r->function, r->args, so);
    if (started) {
      res.set_header("Location", "/api/tasks/" + term_text(started->first));
      return send_json(res, 201, json{{"name", term_text(started->first)},
                                      {"pid", term_text(Term(started->second))},
                                      {"node", started->second.node.text()}});
    }
    const Term& e = started.error();
    if (e.is_tuple() && e.tuple_size() == 2 && e[0].is_atom(Atom("running")) && e[1].is_pid()) {
      const Pid running = e[1].pid();
      return send_error(res, 409, "running", "a task of that name runs: stop it first (DELETE) or wait for it",
                        {{"task", json{{"name", r->name ? *r->name : std::string()},
                                       {"pid", term_text(Term(running))},
                                       {"node", running.node.text()}}}});
    }
    task_error(res, e);
  }));

  server.Delete(R"(/api/tasks/(.+))", ctx.write("/api/tasks/NAME", [service, rt](const httplib::Request& req, httplib::Response& res) {
    auto* svc = service(res);
    if (!svc) return;
    const Term name = name_of(req);
    auto s = svc->stop(*rt, name);
    if (s)
      return send_json(res, 200, json{{"name", term_text(name)},
                                      {"status", *s == tasks::Stopped::Stopped ? "stopped" : "forgotten"}});
    const Term& e = s.error();
    if (e.is_tuple() && e.tuple_size() == 2 && e[0].is_atom(Atom("distributed_task_not_found")))
      return send_error(res, 404, "not_found", "no task named " + term_text(name));
    if (e.is_tuple() && e.tuple_size() == 2 && e[0].is_atom(Atom("starting")))
      return send_error(res, 409, "starting", "the task is being started: retry in a moment");
    task_error(res, e);
  }));
}

}  // namespace hypha::http::detail
