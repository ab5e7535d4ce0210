// The supervisor: a gen_server that traps exits, as OTP's supervisor.erl is.
#include "hypha/otp/supervisor.hpp"

#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "hypha/base/log.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/term/match.hpp"

namespace hypha {

namespace {

Atom at(std::string_view s) { return Atom(s); }
Term error_tuple(Term why) { return Term::tuple({Term(at("error")), std::move(why)}); }

// Child specs travel to a local supervisor through this table: they hold C++ functions, which a
// message cannot carry. The call names the entry by reference.
std::mutex specs_mu;
std::map<Ref, ChildSpec> pending_specs;

class Supervisor : public GenServer {
 public:
  Supervisor(SupervisorFlags flags, std::vector<ChildSpec> specs,
             std::function<Result<ChildSpec, Term>(const Term&)> child_for_call)
      : flags_(flags), child_for_call_(std::move(child_for_call)) {
    for (auto& s : specs) children_.push_back(Child{std::move(s), std::nullopt});
  }

  Task<> init(Process& self) override {
    for (std::size_t i = 0; i < children_.size(); ++i) {
      auto started = co_await start_one(self, i);
      if (!started) {
        const Term reason = Term::tuple({Term(at("shutdown")), Term::tuple({Term(at("failed_to_start_child")),
                                                                             children_[i].spec.id, started.error()})});
        co_await shut_down_range(self, 0);
        throw Exit(reason);
      }
    }
  }

  Task<Action> handle_call(Process& self, const Term& req, const From&) override {
    using namespace pattern;
    if (req.is_atom(at("which_children"))) co_return which();
    if (req.is_atom(at("count_children"))) co_return count();
    Ref spec_ref;
    Term key;
    if (match(req, tuple("$hypha_start_child", bind(spec_ref)))) {
      std::optional<ChildSpec> spec;
      {
        std::lock_guard lock(specs_mu);
        auto it = pending_specs.find(spec_ref);
        if (it != pending_specs.end()) {
          spec = std::move(it->second);
          pending_specs.erase(it);
        }
      }
      if (!spec) co_return error_tuple(Term(at("not_local")));
      for (const auto& c : children_)
        if (c.spec.id == spec->id && c.pid) co_return error_tuple(Term::tuple({Term(at("already_started")), Term(*c.pid)}));
      std::erase_if(children_, [&](const Child& c) { return c.spec.id == spec->id; });  // a stopped one is replaced
      co_return co_await add_child(self, std::move(*spec), false);
    }
    if (match(req, tuple("terminate_child", bind(key)))) {
      if (auto d = key.is_pid() ? dynamic_.find(key.pid()) : dynamic_.end(); d != dynamic_.end()) {
        co_await shut_down(self, d->second);
        dynamic_.erase(key.pid());
        co_return Term(at("ok"));
      }
      // By id, OTP's supervisor rule: the child stops and keeps its place (restart_child starts it
      // again, delete_child forgets it); a temporary one is forgotten. By pid, DynamicSupervisor's
      // rule: the child stops and is forgotten.
      for (std::size_t i = 0; i < children_.size(); ++i) {
        Child& c = children_[i];
        const bool by_id = c.spec.id == key;
        if (!by_id && !(c.pid && key == Term(*c.pid))) continue;
        co_await shut_down(self, c);
        if (!by_id || c.spec.restart == Restart::Temporary)
          children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
        co_return Term(at("ok"));
      }
      co_return error_tuple(Term(at("not_found")));
    }
    // A child that stopped and kept its place (a transient child that ended cleanly, or one whose
    // restart failed): restart_child starts it again, delete_child forgets it.
    if (match(req, tuple(one_of("restart_child", "delete_child"), bind(key)))) {
      const bool restart = req[0].is_atom(at("restart_child"));
      for (std::size_t i = 0; i < children_.size(); ++i) {
        if (!(children_[i].spec.id == key)) continue;
        if (children_[i].pid) co_return error_tuple(Term(at("running")));
        if (!restart) {
          children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
          co_return Term(at("ok"));
        }
        auto started = co_await start_one(self, i);
        if (!started) co_return error_tuple(started.error());
        co_return Term::tuple({Term(at("ok")), pid_or_undefined(*started)});
      }
      co_return error_tuple(Term(at("not_found")));
    }
    if (child_for_call_) {
      Result<ChildSpec, Term> spec = child_for_call_(req);
      if (!spec) co_return error_tuple(spec.error());
      spec->id = Term(at("undefined"));
      co_return co_await add_child(self, std::move(*spec), true);
    }
    co_return error_tuple(Term::tuple({Term(at("bad_call")), req}));
  }

  Task<Action> handle_info(Process& self, const Term& m) override {
    using namespace pattern;
    Pid pid;
    const Term* reason_at = nullptr;
    if (!match(m, tuple(atoms::EXIT(), bind(pid), bind(reason_at)))) co_return Action::noreply();
    const Term& reason = *reason_at;
    if (auto d = dynamic_.find(pid); d != dynamic_.end()) co_return co_await dynamic_exit(self, d, reason);
    std::size_t i = 0;
    while (i < children_.size() && !(children_[i].pid && *children_[i].pid == pid)) ++i;
    if (i == children_.size()) co_return Action::noreply();  // not a child (any more)
    Child& c = children_[i];
    c.pid.reset();
    // OTP's supervisor reports: any exit of a permanent child, an abnormal one of the others.
    if (c.spec.restart == Restart::Permanent || !gen_server::is_clean_stop(reason))
      report(self, "child_terminated", c.spec.id, pid, reason);
    const bool restart = c.spec.restart == Restart::Permanent ||
                         (c.spec.restart == Restart::Transient && !gen_server::is_clean_stop(reason));
    if (!restart) {
      if (c.spec.restart == Restart::Temporary) children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
      co_return Action::noreply();
    }
    // Restart by the strategy until it works or the intensity is exceeded.
    for (;;) {
      if (!note_restart()) {
        report(self, "reached_max_restart_intensity", children_[i].spec.id, pid, reason);
        co_return Action::stop(Term(at("shutdown")));
      }
      bool ok = true;
      if (flags_.strategy == Strategy::OneForOne) {
        ok = static_cast<bool>(co_await start_one(self, i));
      } else {
        const std::size_t first = flags_.strategy == Strategy::OneForAll ? 0 : i;
        const Term id = children_[i].spec.id;
        co_await shut_down_range(self, first);
        // Temporary siblings are not restarted (OTP's rule); the dead child keeps its place.
        for (std::size_t k = children_.size(); k-- > first;)
          if (children_[k].spec.restart == Restart::Temporary && !(children_[k].spec.id == id))
            children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(k));
        for (std::size_t k = first; k < children_.size() && ok; ++k) ok = static_cast<bool>(co_await start_one(self, k));
        if (!ok) co_await shut_down_range(self, first);
        i = first;
      }
      if (ok) co_return Action::noreply();
    }
  }

  Task<> terminate(Process& self, const Term&) override {
    co_await shut_down_dynamic(self);
    co_await shut_down_range(self, 0);
  }

 private:
  struct Child {
    ChildSpec spec;
    std::optional<Pid> pid;
  };

  // Adds a child and starts it: the reply to the request that asked for it. A dynamic child
  // (from child_for_call) is kept by its pid, and forgotten if its init says ignore.
  Task<Action> add_child(Process& self, ChildSpec spec, bool dynamic) {
    if (children_.size() + dynamic_.size() >= flags_.max_children) co_return error_tuple(Term(at("max_children")));
    if (dynamic) {
      auto started = co_await start_spec(self, spec);
      if (!started) co_return error_tuple(started.error());
      if (*started) dynamic_.emplace(**started, Child{std::move(spec), *started});
      co_return Term::tuple({Term(at("ok")), pid_or_undefined(*started)});
    }
    children_.push_back(Child{std::move(spec), std::nullopt});
    auto started = co_await start_one(self, children_.size() - 1);
    if (!started) {
      children_.pop_back();
      co_return error_tuple(started.error());
    }
    co_return Term::tuple({Term(at("ok")), pid_or_undefined(*started)});
  }

  // The new process's pid, or none when its init said ignore; a failure is reported.
  Task<Result<std::optional<Pid>, Term>> start_spec(Process& self, const ChildSpec& spec) {
    Result<Pid, Term> r = unexpected(Term(at("no_start_function")));
    if (spec.start) r = co_await spec.start(self);
    if (r) co_return std::optional<Pid>(*r);
    if (r.error().is_atom(at("ignore"))) co_return std::optional<Pid>();
    report(self, "start_error", spec.id, std::nullopt, r.error());
    co_return unexpected(r.error());
  }

  // Starts children_[i]: its pid, or none when its init said ignore (it keeps its place without a process).
  Task<Result<std::optional<Pid>, Term>> start_one(Process& self, std::size_t i) {
    auto r = co_await start_spec(self, children_[i].spec);
    if (r && *r) children_[i].pid = **r;
    co_return r;
  }

  // A dynamic child ended: restarted alone whatever the strategy (as DynamicSupervisor's and
  // simple_one_for_one's children are), if its restart kind says so; else forgotten.
  Task<Action> dynamic_exit(Process& self, std::map<Pid, Child>::iterator it, const Term& reason) {
    const Pid pid = it->first;
    Child c = std::move(it->second);
    dynamic_.erase(it);
    if (c.spec.restart == Restart::Permanent || !gen_server::is_clean_stop(reason))
      report(self, "child_terminated", c.spec.id, pid, reason);
    const bool restart = c.spec.restart == Restart::Permanent ||
                         (c.spec.restart == Restart::Transient && !gen_server::is_clean_stop(reason));
    while (restart) {
      if (!note_restart()) {
        report(self, "reached_max_restart_intensity", c.spec.id, pid, reason);
        co_return Action::stop(Term(at("shutdown")));
      }
      auto started = co_await start_spec(self, c.spec);
      if (!started) continue;
      if (*started) dynamic_.emplace(**started, Child{std::move(c.spec), *started});
      break;
    }
    co_return Action::noreply();
  }

  // Shuts every dynamic child down at once, as DynamicSupervisor does (one at a time, n children
  // that take their whole shutdown time would take n times as long).
  Task<> shut_down_dynamic(Process& self) {
    std::vector<std::pair<Pid, std::chrono::milliseconds>> all;
    for (const auto& [pid, c] : dynamic_) all.emplace_back(pid, c.spec.shutdown);
    dynamic_.clear();
    co_await stop_processes(self, std::move(all));
  }

  static Term pid_or_undefined(const std::optional<Pid>& p) { return p ? Term(*p) : Term(at("undefined")); }

  // One line per supervisor report, at error level, as OTP's logger prints them.
  static void report(Process& self, const char* what, const Term& id, std::optional<Pid> child, const Term& reason) {
    if (!log::enabled(log::Level::Error)) return;
    log::event(log::Level::Error, self.runtime().node().text(), what,
               {{"supervisor", Term(self.pid()).to_string()},
                {"child", id.to_string().substr(0, 200)},
                {"pid", child ? Term(*child).to_string() : std::string("undefined")},
                {"reason", reason.to_string().substr(0, 300)}});
  }

  // Shuts the children from `first` to the end down, last started first.
  Task<> shut_down_range(Process& self, std::size_t first) {
    for (std::size_t k = children_.size(); k-- > first;) co_await shut_down(self, children_[k]);
  }

  Task<> shut_down(Process& self, Child& c) {
    if (!c.pid) co_return;
    const std::vector<std::pair<Pid, std::chrono::milliseconds>> one{{*c.pid, c.spec.shutdown}};
    c.pid.reset();
    co_await stop_processes(self, one);
  }

  // Stops the processes together: exit(P, shutdown) to each (kill for a zero shutdown time), kill
  // for each still there after its own shutdown time (milliseconds::max(): never); returns when
  // all are gone. Exit signals they sent before they were unlinked are dropped.
  static Task<> stop_processes(Process& self, std::vector<std::pair<Pid, std::chrono::milliseconds>> who) {
    using Clock = std::chrono::steady_clock;
    std::multimap<Clock::time_point, Ref> kill_order;  // the ones not killed yet, by when they will be
    std::map<Ref, std::pair<Pid, std::multimap<Clock::time_point, Ref>::iterator>> waiting;
    const auto now = Clock::now();
    for (const auto& [pid, shutdown] : who) {
      const Ref ref = self.monitor(pid);
      self.unlink(pid);
      const bool brutal = shutdown.count() == 0;
      self.exit(pid, Term(brutal ? atoms::kill() : at("shutdown")));
      const auto at_time = brutal || shutdown == std::chrono::milliseconds::max() ? Clock::time_point::max() : now + shutdown;
      waiting.emplace(ref, std::make_pair(pid, kill_order.emplace(at_time, ref)));
    }
    auto down = [&](const Term& m) {
      return m.is_tuple() && m.tuple_size() == 5 && m[0].is_atom(atoms::DOWN()) && m[1].is_ref() && waiting.count(m[1].ref());
    };
    while (!waiting.empty()) {
      const auto next = kill_order.begin()->first;
      const auto wait = next == Clock::time_point::max()
                            ? std::chrono::milliseconds::max()
                            : std::max(std::chrono::milliseconds(0), std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()));
      if (auto got = co_await self.receive(down, wait)) {
        auto w = waiting.find((*got)[1].ref());
        kill_order.erase(w->second.second);
        waiting.erase(w);
        continue;
      }
      for (auto it = kill_order.begin(); it != kill_order.end() && it->first <= Clock::now();) {  // their time is up
        auto& w = waiting.at(it->second);
        self.exit(w.first, Term(atoms::kill()));
        w.second = kill_order.emplace(Clock::time_point::max(), it->second);
        it = kill_order.erase(it);
      }
    }
    std::set<Pid> gone;
    for (const auto& [pid, shutdown] : who) gone.insert(pid);
    auto stale_exit = [&](const Term& m) {
      return m.is_tuple() && m.tuple_size() == 3 && m[0].is_atom(atoms::EXIT()) && m[1].is_pid() && gone.count(m[1].pid());
    };
    while (co_await self.receive(stale_exit, std::chrono::milliseconds(0))) {
    }
  }

  // Records a restart; false when that makes more than `intensity` within `period`.
  bool note_restart() {
    const auto now = std::chrono::steady_clock::now();
    restarts_.push_back(now);
    while (!restarts_.empty() && now - restarts_.front() > flags_.period) restarts_.pop_front();
    return static_cast<int>(restarts_.size()) <= flags_.intensity;
  }

  Term which() const {
    std::vector<Term> out;
    auto add = [&](const Child& c) {
      out.push_back(Term::tuple({c.spec.id, c.pid ? Term(*c.pid) : Term(at("undefined")),
                                 Term(at(c.spec.is_supervisor ? "supervisor" : "worker")), Term()}));
    };
    for (const auto& c : children_) add(c);
    for (const auto& [pid, c] : dynamic_) add(c);
    return Term::list(std::move(out));
  }

  Term count() const {
    std::int64_t active = 0, sups = 0;
    auto add = [&](const Child& c) {
      active += c.pid ? 1 : 0;
      sups += c.spec.is_supervisor ? 1 : 0;
    };
    for (const auto& c : children_) add(c);
    for (const auto& [pid, c] : dynamic_) add(c);
    const auto n = static_cast<std::int64_t>(children_.size() + dynamic_.size());
    return Term::list({Term::tuple({Term(at("specs")), Term(n)}), Term::tuple({Term(at("active")), Term(active)}),
                       Term::tuple({Term(at("supervisors")), Term(sups)}),
                       Term::tuple({Term(at("workers")), Term(n - sups)})});
  }

  SupervisorFlags flags_;
  std::function<Result<ChildSpec, Term>(const Term&)> child_for_call_;
  std::vector<Child> children_;  // in start order, with their ids
  std::map<Pid, Child> dynamic_;  // started by child_for_call: no id, known by their pid
  std::deque<std::chrono::steady_clock::time_point> restarts_;
};

// {ok, Pid} -> Pid, {ok, undefined} (the child's init said ignore) -> the error ignore,
// {error, E} -> E as an error, a call failure as is.
Result<Pid, Term> child_pid(Result<Term, Term> r) {
  if (!r) return unexpected(r.error());
  using namespace pattern;
  Term v;
  if (match(*r, tuple("ok", bind(v)))) return v.is_pid() ? Result<Pid, Term>(v.pid()) : unexpected(Term(at("ignore")));
  if (match(*r, tuple("error", bind(v)))) return unexpected(v);
  return unexpected(*r);
}

}  // namespace

ChildSpec ChildSpec::process(Term id, ProcessBody body, Restart restart) {
  ChildSpec s;
  s.id = std::move(id);
  s.restart = restart;
  s.start = [body = std::move(body)](Process& sup) -> Task<Result<Pid, Term>> { co_return sup.spawn_link(body); };
  return s;
}

ChildSpec ChildSpec::server(Term id, std::function<std::unique_ptr<GenServer>()> make, gen_server::StartOptions opts,
                            Restart restart) {
  ChildSpec s;
  s.id = std::move(id);
  s.restart = restart;
  opts.link = true;
  s.start = [make = std::move(make), opts](Process& sup) -> Task<Result<Pid, Term>> {
    co_return co_await gen_server::start(sup, make(), opts);
  };
  return s;
}

namespace supervisor {

Task<Result<Pid, Term>> start(Process& self, SupervisorFlags flags, std::vector<ChildSpec> children, StartOptions opts) {
  gen_server::StartOptions g;
  g.name = opts.name;
  g.via = opts.via;
  g.link = opts.link;
  g.trap_exit = true;
  co_return co_await gen_server::start(
      self, std::make_unique<Supervisor>(flags, std::move(children), std::move(opts.child_for_call)), g);
}

Result<Pid, Term> start(Runtime& rt, SupervisorFlags flags, std::vector<ChildSpec> children, StartOptions opts) {
  opts.link = false;
  return block_on(rt, [&](Process& self) { return start(self, flags, std::move(children), opts); });
}

Task<Result<Pid, Term>> start_child(Process& self, ServerRef sup, ChildSpec spec) {
  const Ref key = self.make_ref();
  {
    std::lock_guard lock(specs_mu);
    pending_specs.emplace(key, std::move(spec));
  }
  const Term req = Term::tuple({Term(at("$hypha_start_child")), Term(key)});  // (g++ 12: no braced temporaries in co_await)
  auto r = co_await gen_server::call(self, sup, req, gen_server::infinity);
  {
    std::lock_guard lock(specs_mu);
    pending_specs.erase(key);  // not taken: the supervisor is gone or remote
  }
  Result<Pid, Term> out = child_pid(std::move(r));
  co_return out;
}

Result<Pid, Term> start_child(Runtime& rt, const ServerRef& sup, ChildSpec spec) {
  return block_on(rt, [&](Process& self) { return start_child(self, sup, std::move(spec)); });
}

namespace {
// A supervisor request whose {error, E} reply becomes an error result.
Task<Result<Term, Term>> request(Process& self, ServerRef sup, const char* what, Term arg) {
  const Term req = Term::tuple({Term(at(what)), std::move(arg)});
  auto r = co_await gen_server::call(self, sup, req, gen_server::infinity);
  Term e;
  if (r && pattern::match(*r, pattern::tuple("error", pattern::bind(e)))) co_return unexpected(e);
  co_return r;
}
}  // namespace

Task<Result<Term, Term>> terminate_child(Process& self, ServerRef sup, Term id_or_pid) {
  co_return co_await request(self, sup, "terminate_child", std::move(id_or_pid));
}

Task<Result<Pid, Term>> restart_child(Process& self, ServerRef sup, Term id) {
  const Term req = Term::tuple({Term(at("restart_child")), std::move(id)});
  auto r = co_await gen_server::call(self, sup, req, gen_server::infinity);
  co_return child_pid(std::move(r));
}

Task<Result<Term, Term>> delete_child(Process& self, ServerRef sup, Term id) {
  co_return co_await request(self, sup, "delete_child", std::move(id));
}

Task<Result<Term, Term>> which_children(Process& self, ServerRef sup) {
  co_return co_await gen_server::call(self, sup, Term(at("which_children")), gen_server::infinity);
}

Task<Result<Term, Term>> count_children(Process& self, ServerRef sup) {
  co_return co_await gen_server::call(self, sup, Term(at("count_children")), gen_server::infinity);
}

}  // namespace supervisor
}  // namespace hypha
