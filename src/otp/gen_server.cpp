#include "hypha/otp/gen_server.hpp"

#include "hypha/base/log.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/process/gen.hpp"
#include "hypha/term/match.hpp"

namespace hypha {

namespace {

const Atom& a_gen_cast() { static const Atom a("$gen_cast"); return a; }
const Atom& a_system() { static const Atom a("system"); return a; }
const Atom& a_terminate() { static const Atom a("terminate"); return a; }

Term timeout_term(std::chrono::milliseconds t) {
  return t == gen_server::infinity ? Term(Atom("infinity")) : Term(static_cast<std::int64_t>(t.count()));
}

// {Reason, {gen_server, Fun, [Server, Request, Timeout]}}: how gen_server:call exits.
Term call_error(Term reason, const char* fun, const ServerRef& server, const Term& request, std::chrono::milliseconds t) {
  return Term::tuple({std::move(reason), Term::tuple({Term(Atom("gen_server")), Term(Atom(fun)),
                                                      Term::list({server.to_term(), request, timeout_term(t)})})});
}

// What a callback threw, as the exit reason of the server.
Term reason_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const Exit& x) {
    return x.reason();
  } catch (const Error& x) {
    return Term::tuple({x.reason(), Term()});
  } catch (const Throw& x) {
    return Term::tuple({Term::tuple({Term(Atom("nocatch")), x.value()}), Term()});
  } catch (const std::exception& x) {
    return Term::tuple({Term(Atom("exception")), Term::binary(std::string_view(x.what()))});
  } catch (...) {
    return Term(Atom("unknown_exception"));
  }
}

// Sends to the server; false when it is a local name nobody holds.
bool send_to(Process& self, const ServerRef& s, Term msg) {
  if (const Pid* p = s.pid()) {
    self.send(*p, std::move(msg));
    return true;
  }
  if (const Atom* n = s.name()) return self.send(*n, std::move(msg));
  if (const ViaName* v = s.via()) {
    const std::optional<Pid> pid = v->service->whereis(self.runtime(), v->name);
    if (pid) self.send(*pid, std::move(msg));
    return pid.has_value();
  }
  const auto& [name, node] = *s.remote_name();
  if (node == self.runtime().node()) return self.send(name, std::move(msg));
  self.send(name, node, std::move(msg));
  return true;
}

// Monitors the server with an alias (OTP's [{alias, demonitor}]); nullopt when it is a local
// name nobody holds.
std::optional<Ref> monitor_server(Process& self, const ServerRef& s) {
  if (const Pid* p = s.pid()) return self.monitor_alias(*p);
  if (const ViaName* v = s.via()) {
    const std::optional<Pid> pid = v->service->whereis(self.runtime(), v->name);
    if (!pid) return std::nullopt;
    return self.monitor_alias(*pid);
  }
  Atom name, node = self.runtime().node();
  if (const Atom* n = s.name()) name = *n;
  else std::tie(name, node) = *s.remote_name();
  if (node == self.runtime().node()) {
    const std::optional<Pid> pid = self.runtime().whereis(name);
    if (!pid) return std::nullopt;
    return self.monitor_alias(*pid);
  }
  return self.monitor_alias(name, node);
}

Atom node_of(const ServerRef& s, Runtime& rt) {
  if (const Pid* p = s.pid()) return p->node;
  if (const auto* r = s.remote_name()) return r->second;
  if (const ViaName* v = s.via())
    if (auto pid = v->service->whereis(rt, v->name)) return pid->node;
  return rt.node();
}

}  // namespace

struct GenServerAccess {
  static Action take_after_init(GenServer& s) { return std::exchange(s.after_init_, Action()); }
};

namespace {

// Before waiting, after an action that asked to hibernate.
void hibernate_now(Process& self, GenServer& s) {
  s.on_hibernate(self);
  self.hibernate();
}

// The server's process: init, acknowledge, then one message at a time.
Task<> serve(Process& self, GenServer& s, std::optional<Pid> parent, Pid starter, Ref ack) {
  std::exception_ptr failed;
  bool ignored = false;
  try {
    co_await s.init(self);
  } catch (const gen_server::Ignore&) {
    ignored = true;
  } catch (...) {
    failed = std::current_exception();
  }
  if (failed || ignored) {
    const Term reason = ignored ? Term(Atom("ignore")) : reason_of(failed);
    if (parent) self.unlink(*parent);  // start() returns the reason; the starter is not killed for it
    self.send(starter, Term::tuple({Term(Atom("$hypha_ack")), Term(ack), Term::tuple({Term(Atom("error")), reason})}));
    throw Exit(ignored ? Term(atoms::normal()) : reason);
  }
  self.send(starter, Term::tuple({Term(Atom("$hypha_ack")), Term(ack), Term(Atom("ok"))}));

  const Action after_init = GenServerAccess::take_after_init(s);
  std::optional<Term> pending_continue = after_init.continue_arg();
  auto idle_timeout = after_init.timeout().value_or(std::chrono::milliseconds::max());  // max: none
  if (after_init.hibernate() && !pending_continue) {
    try {
      hibernate_now(self, s);
    } catch (...) {
      failed = std::current_exception();
    }
    if (failed) {
      const Term reason = reason_of(failed);
      co_await s.terminate(self, reason);
      throw Exit(reason);
    }
  }
  for (;;) {
    std::optional<Term> got;
    if (!pending_continue) got = co_await self.receive(idle_timeout);
    // What the callback is about: the message, {continue, Arg}, or the atom timeout.
    Term m = got                ? std::move(*got)
             : pending_continue ? Term::tuple({Term(Atom("continue")), *pending_continue})
                                : Term(Atom("timeout"));
    std::optional<Term> stop;
    try {
      using namespace pattern;
      Action act;
      std::optional<From> from;
      const Term* part = nullptr;  // what a pattern below binds: the cast, the sys request, the exit reason
      if (pending_continue) {
        const Term arg = std::move(*pending_continue);
        pending_continue.reset();
        act = co_await s.handle_continue(self, arg);
      } else if (!got) {
        act = co_await s.handle_info(self, m);  // the idle timeout
      } else if (auto call = gen_server::parse_call(m)) {
        from = std::move(call->first);
        act = co_await s.handle_call(self, call->second, *from);
      } else if (match(m, tuple(a_gen_cast(), bind(part)))) {
        act = co_await s.handle_cast(self, *part);
      } else if (From sys_from; match(m, tuple(a_system(), tuple(bind(sys_from.pid), bind(sys_from.tag)), bind(part)))) {
        // sys messages: {terminate, Reason} (gen_server:stop, GenServer.stop) stops the server;
        // the state of a C++ object cannot be handed out, so the rest get sys's error.
        const Term& req = *part;
        if (const Term* why = nullptr; match(req, tuple(a_terminate(), bind(why)))) {
          gen_server::reply(self, sys_from, Term(Atom("ok")));  // sys:terminate waits for it, then the DOWN
          act = Action::stop(*why);
        } else {
          gen_server::reply(self, sys_from,
                            Term::tuple({Term(Atom("error")), Term::tuple({Term(Atom("unknown_system_msg")), req})}));
          continue;
        }
      } else if (Pid from; parent && self.trapping_exits() && match(m, tuple(atoms::EXIT(), bind(from), bind(part))) &&
                           from == *parent) {
        act = Action::stop(*part);  // the parent is going: so does its child, cleanly
      } else {
        act = co_await s.handle_info(self, m);
      }
      if (from && act.reply_value()) gen_server::reply(self, *from, *act.reply_value());
      stop = act.stop_reason();
      pending_continue = act.continue_arg();
      idle_timeout = act.timeout().value_or(std::chrono::milliseconds::max());
      if (act.hibernate() && !stop && !pending_continue) hibernate_now(self, s);
    } catch (...) {
      failed = std::current_exception();
    }
    if (failed) stop = reason_of(failed);
    if (stop && !gen_server::is_clean_stop(*stop) && log::enabled(log::Level::Error)) {
      // As OTP's "** Generic server ... terminating": the last message and the reason.
      log::event(log::Level::Error, self.runtime().node().text(), "gen_server_terminating",
                 {{"server", Term(self.pid()).to_string()},
                  {"last_message", m.to_string().substr(0, 300)},
                  {"reason", stop->to_string().substr(0, 300)}});
    }
    if (stop) {
      co_await s.terminate(self, *stop);
      throw Exit(*stop);
    }
  }
}

}  // namespace

Task<> GenServer::init(Process&) { co_return; }
Task<Action> GenServer::handle_call(Process&, const Term& request, const From&) {
  co_return Action::stop(Term::tuple({Term(Atom("bad_call")), request}));
}
Task<Action> GenServer::handle_cast(Process&, const Term&) { co_return Action::noreply(); }
Task<Action> GenServer::handle_info(Process&, const Term&) { co_return Action::noreply(); }
Task<Action> GenServer::handle_continue(Process&, const Term& arg) {
  co_return Action::stop(Term::tuple({Term(Atom("bad_continue")), arg}));
}
Task<> GenServer::terminate(Process&, const Term&) { co_return; }
void GenServer::on_hibernate(Process&) {}

Term ServerRef::to_term() const {
  if (const Pid* p = pid()) return Term(*p);
  if (const Atom* n = name()) return Term(*n);
  if (const ViaName* v = via()) return v->to_term();
  return Term::tuple({Term(remote_name()->first), Term(remote_name()->second)});
}

namespace gen_server {

std::optional<std::pair<From, Term>> parse_call(const Term& m) {
  auto c = gen::parse_call(m);
  if (!c) return std::nullopt;
  return std::make_pair(std::move(c->from), std::move(c->request));
}

void reply(Process& self, const From& from, Term reply) { gen::reply(self, from, std::move(reply)); }
void reply(Runtime& rt, const From& from, Term reply) { gen::reply(rt, from, std::move(reply)); }

bool is_clean_stop(const Term& r) {
  return r.is_atom(atoms::normal()) || r.is_atom(Atom("shutdown")) ||
         (r.is_tuple() && r.tuple_size() == 2 && r[0].is_atom(Atom("shutdown")));
}

Task<Result<Pid, Term>> start(Process& self, std::unique_ptr<GenServer> server, StartOptions opts) {
  const Ref ack = self.make_ref();
  const Pid starter = self.pid();
  std::optional<Pid> parent;
  if (opts.link) parent = starter;
  std::shared_ptr<GenServer> obj(std::move(server));
  const std::optional<Atom> name = opts.name;
  const std::optional<ViaName> via = opts.via;
  ProcessBody body = [obj, parent, starter, ack, name, via, trap = opts.trap_exit](Process& me) -> Task<> {
    if (trap) me.trap_exit(true);
    if (parent) me.link(*parent);
    // Registered before init, as OTP's gen does; a name that is taken: {already_started, Holder}.
    bool taken = name && !me.register_name(*name);
    std::optional<Pid> holder;
    if (taken) holder = me.runtime().whereis(*name);
    if (!taken && via) {
      Term via_name = via->name;  // named: GCC 12 and temporaries across co_await
      const Pid self_pid = me.pid();
      if (!co_await via->service->register_name(me, via_name, self_pid)) {
        taken = true;
        holder = via->service->whereis(me.runtime(), via_name);
      }
    }
    if (taken) {
      if (parent) me.unlink(*parent);
      const Term why = Term::tuple({Term(Atom("already_started")), holder ? Term(*holder) : Term(Atom("undefined"))});
      me.send(starter, Term::tuple({Term(Atom("$hypha_ack")), Term(ack), Term::tuple({Term(Atom("error")), why})}));
      throw Exit(Term(atoms::normal()));
    }
    co_await serve(me, *obj, parent, starter, ack);
  };
  const auto [pid, mref] = self.spawn_monitor(std::move(body));
  const Term ack_term(ack), mref_term(mref);
  auto match = [&](const Term& m) {
    return m.is_tuple() && ((m.tuple_size() == 3 && m[1] == ack_term && m[0].is_atom(Atom("$hypha_ack"))) ||
                            (m.tuple_size() == 5 && m[1] == mref_term && m[0].is_atom(atoms::DOWN())));
  };
  std::optional<Term> got = co_await self.receive(match, opts.timeout);
  if (!got) {  // init too slow: kill it, as OTP's start does
    self.demonitor(mref, true);
    if (opts.link) self.unlink(pid);
    self.exit(pid, Term(atoms::kill()));
    co_return unexpected(Term(Atom("timeout")));
  }
  if ((*got)[0].is_atom(atoms::DOWN())) co_return unexpected((*got)[4]);
  self.demonitor(mref, true);
  const Term& status = (*got)[2];
  if (status.is_tuple()) co_return unexpected(status[1]);  // {error, Reason}: it unlinked before exiting
  co_return pid;
}

Result<Pid, Term> start(Runtime& rt, std::unique_ptr<GenServer> server, StartOptions opts) {
  opts.link = false;  // a thread has no links
  return block_on(rt, [&](Process& self) { return start(self, std::move(server), opts); });
}

RequestId send_request(Process& self, const ServerRef& server, Term request) {
  RequestId id{monitor_server(self, server), server};
  if (id.mref) {
    const Term tag = gen::alias_tag(*id.mref);
    send_to(self, server, gen::call_message(self.pid(), tag, std::move(request)));
  }
  return id;
}

namespace {

bool is_down_of(const Term& m, const Term& mref) {
  return m.is_tuple() && m.tuple_size() == 5 && m[1] == mref && m[0].is_atom(atoms::DOWN());
}

// A reply or the server's DOWN, for the request: the reply, or why there is none (noproc,
// {nodedown, Node}, the server's exit reason). The monitor is gone afterwards.
Result<Term, Term> outcome_of(Process& self, const RequestId& id, const Term& m) {
  if (m.tuple_size() == 2) {
    self.demonitor(*id.mref, true);
    return m[1];
  }
  const Term& reason = m[4];
  if (reason.is_atom(atoms::noconnection()))
    return unexpected(Term::tuple({Term(Atom("nodedown")), Term(node_of(id.server, self.runtime()))}));
  return unexpected(reason);
}

// The reply to `id` within `timeout`: as outcome_of, or the reason timeout.
Task<Result<Term, Term>> wait_reply(Process& self, const RequestId& id, std::chrono::milliseconds timeout) {
  if (!id.mref) co_return unexpected(Term(atoms::noproc()));
  const Term tag = gen::alias_tag(*id.mref);
  const Term mref_term(*id.mref);
  std::optional<Term> got =
      co_await self.receive([&](const Term& m) { return gen::is_reply(m, tag) || is_down_of(m, mref_term); }, timeout);
  if (!got) {
    self.demonitor(*id.mref, true);  // the alias goes with it: a later reply is dropped
    // A reply that arrived between the timeout and the demonitor still counts, as in OTP.
    got = co_await self.receive([&](const Term& m) { return gen::is_reply(m, tag); }, std::chrono::milliseconds(0));
    if (!got) co_return unexpected(Term(Atom("timeout")));
  }
  co_return outcome_of(self, id, *got);
}

}  // namespace

Task<Result<Term, Term>> receive_response(Process& self, RequestId id, std::chrono::milliseconds timeout) {
  auto r = co_await wait_reply(self, id, timeout);
  if (!r) co_return unexpected(Term::tuple({r.error(), id.server.to_term()}));
  co_return r;
}

std::optional<Result<Term, Term>> check_response(Process& self, const Term& msg, const RequestId& id) {
  if (!id.mref) return Result<Term, Term>(unexpected(Term::tuple({Term(atoms::noproc()), id.server.to_term()})));
  if (!gen::is_reply(msg, gen::alias_tag(*id.mref)) && !is_down_of(msg, Term(*id.mref)))
    return std::nullopt;
  auto r = outcome_of(self, id, msg);
  if (!r) return Result<Term, Term>(unexpected(Term::tuple({r.error(), id.server.to_term()})));
  return r;
}

Task<Result<Term, Term>> call(Process& self, ServerRef server, Term request, std::chrono::milliseconds timeout) {
  const RequestId id = send_request(self, server, request);
  auto r = co_await wait_reply(self, id, timeout);
  if (!r) co_return unexpected(call_error(r.error(), "call", server, request, timeout));
  co_return r;
}

Task<Term> multi_call(Process& self, std::vector<Atom> nodes, Atom name, Term request, std::chrono::milliseconds timeout) {
  std::vector<RequestId> ids;
  ids.reserve(nodes.size());
  for (const Atom& n : nodes) ids.push_back(send_request(self, ServerRef(name, n), request));
  const Deadline deadline(timeout);
  std::vector<Term> replies, bad;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto r = co_await wait_reply(self, ids[i], deadline.left());
    if (r) replies.push_back(Term::tuple({Term(nodes[i]), std::move(*r)}));
    else bad.push_back(Term(nodes[i]));
  }
  co_return Term::tuple({Term::list(std::move(replies)), Term::list(std::move(bad))});
}

void abcast(Process& self, const std::vector<Atom>& nodes, Atom name, const Term& msg) {
  for (const Atom& n : nodes) send_to(self, ServerRef(name, n), Term::tuple({Term(a_gen_cast()), msg}));
}

Result<Term, Term> call(Runtime& rt, const ServerRef& server, Term request, std::chrono::milliseconds timeout) {
  return block_on(rt, [&](Process& self) { return call(self, server, request, timeout); });
}

void cast(Process& self, const ServerRef& server, Term msg) {
  send_to(self, server, Term::tuple({Term(a_gen_cast()), std::move(msg)}));
}

void cast(Runtime& rt, const ServerRef& server, Term msg) {
  Term m = Term::tuple({Term(a_gen_cast()), std::move(msg)});
  if (const Pid* p = server.pid()) rt.send(*p, std::move(m));
  else if (const Atom* n = server.name()) rt.send(*n, std::move(m));
  else rt.send(server.remote_name()->first, server.remote_name()->second, std::move(m));
}

Task<Result<Term, Term>> stop(Process& self, ServerRef server, Term reason, std::chrono::milliseconds timeout) {
  const std::optional<Ref> mref = monitor_server(self, server);
  if (!mref) co_return unexpected(call_error(Term(atoms::noproc()), "stop", server, reason, timeout));
  const Term tag = gen::alias_tag(*mref);
  send_to(self, server, Term::tuple({Term(a_system()), Term::tuple({Term(self.pid()), tag}),
                                     Term::tuple({Term(Atom("terminate")), reason})}));
  const Term mref_term(*mref);
  std::optional<Term> got = co_await self.receive([&](const Term& m) { return is_down_of(m, mref_term); }, timeout);
  if (!got) {
    self.demonitor(*mref, true);
    co_return unexpected(call_error(Term(Atom("timeout")), "stop", server, reason, timeout));
  }
  // The server answered ok before it went: take that reply out of the mailbox too.
  co_await self.receive([&](const Term& m) { return gen::is_reply(m, tag); }, std::chrono::milliseconds(0));
  if ((*got)[4] == reason) co_return Term(Atom("ok"));
  co_return unexpected(call_error((*got)[4], "stop", server, reason, timeout));
}

}  // namespace gen_server
}  // namespace hypha
