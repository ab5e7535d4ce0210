// rpc served (erpc's spawn requests, rex) and called (spawn_request to erpc:execute_call), as
// OTP 25's kernel/src/erpc.erl and rpc.erl do it.
#include "hypha/otp/rpc.hpp"

#include <string>

#include "hypha/base/log.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/otp/gen_server.hpp"

namespace hypha::rpc {

namespace {

Atom at(std::string_view s) { return Atom(s); }
Term badrpc(Term reason) { return Term::tuple({Term(at("badrpc")), std::move(reason)}); }
Term exit_tuple(Term reason) { return Term::tuple({Term(at("EXIT")), std::move(reason)}); }

// erpc:execute_call/4's exit reason for an outcome.
Term erpc_reason(const Term& res, const Outcome& o) {
  switch (o.cls) {
    case Outcome::Class::Return: return Term::tuple({res, Term(at("return")), o.value});
    case Outcome::Class::Throw: return Term::tuple({res, Term(at("throw")), o.value});
    case Outcome::Class::Exit: return Term::tuple({res, Term(at("exit")), o.value});
    case Outcome::Class::Error: break;
  }
  return Term::tuple({res, Term(at("error")), o.value, o.stack});
}

// rpc:call's value for an outcome (rpc.erl's rpcify_exception).
Term rpc_value(const Outcome& o) {
  switch (o.cls) {
    case Outcome::Class::Return: return o.value;
    case Outcome::Class::Throw:
      if (o.value.is_tuple() && o.value.tuple_size() == 2 && o.value[0].is_atom(at("EXIT"))) return badrpc(o.value);
      return o.value;
    case Outcome::Class::Exit: return badrpc(exit_tuple(o.value));
    case Outcome::Class::Error: break;
  }
  return badrpc(exit_tuple(Term::tuple({o.value, o.stack})));
}

void log_failure(Runtime& rt, const char* what, Atom mod, Atom fun, const Outcome& o) {
  const std::string mfa = std::string(mod.text()) + ":" + std::string(fun.text());
  const std::string reason = exit_reason_of(o).to_string().substr(0, 300);
  log::event(log::Level::Warn, rt.node().text(), what, {{"mfa", mfa}, {"reason", reason}});
}

// Spawned processes: erpc:execute_call(Ref, M, F, A), erpc:execute_cast(M, F, A), or any export.
SpawnHandler spawn_handler(std::shared_ptr<Exports> exports) {
  return [exports](Atom mod, Atom fun, const Term& args) -> ProcessBody {
    const auto argv = args.list_elements();
    if (mod == at("erpc") && fun == at("execute_call") && argv.size() == 4 && argv[1].is_atom() && argv[2].is_atom()) {
      return [exports, res = argv[0], m = argv[1].atom_value(), f = argv[2].atom_value(), a = argv[3]](Process& self) -> Task<> {
        const Outcome o = co_await exports->apply(self, m, f, a);
        self.exit_on_return(erpc_reason(res, o));  // erpc's result is the exit reason
      };
    }
    if (mod == at("erpc") && fun == at("execute_cast") && argv.size() == 3 && argv[0].is_atom() && argv[1].is_atom()) {
      return [exports, m = argv[0].atom_value(), f = argv[1].atom_value(), a = argv[2]](Process& self) -> Task<> {
        const Outcome o = co_await exports->apply(self, m, f, a);
        if (!o.ok()) {
          log_failure(self.runtime(), "cast_failed", m, f, o);
          throw Exit(exit_reason_of(o));
        }
      };
    }
    return [exports, mod, fun, args](Process& self) -> Task<> {
      const Outcome o = co_await exports->apply(self, mod, fun, args);
      if (!o.ok()) throw Exit(exit_reason_of(o));
    };
  };
}

// rex: the features handshake, and rpc's older protocol for callers that do not use erpc.
ProcessBody rex(std::shared_ptr<Exports> exports) {
  return [exports](Process& self) -> Task<> {
    for (;;) {
      const Term m = co_await self.receive();
      if (m.is_tuple() && m.tuple_size() == 2 && m[0].is_pid() && m[1].is_atom(at("features_request"))) {
        self.send(m[0].pid(), Term::tuple({Term(at("features_reply")), Term(self.runtime().node()),
                                           Term::list({Term(at("erpc"))})}));
        continue;
      }
      // {'$gen_call', From, {call | block_call, M, F, A, GroupLeader}} and {'$gen_cast', {cast, M, F, A, GL}}
      std::optional<From> from;
      Term req;
      if (auto call = gen_server::parse_call(m)) {
        from = call->first;
        req = call->second;
      } else if (m.is_tuple() && m.tuple_size() == 2 && m[0].is_atom(at("$gen_cast"))) {
        req = m[1];
      } else {
        continue;
      }
      const bool well_formed = req.is_tuple() && req.tuple_size() == 5 && req[1].is_atom() && req[2].is_atom() &&
                               (req[0].is_atom(at("call")) || req[0].is_atom(at("block_call")) || req[0].is_atom(at("cast")));
      if (!well_formed) {
        if (from) gen_server::reply(self, *from, badrpc(exit_tuple(Term(at("badarg")))));
        continue;
      }
      self.spawn([exports, from, m = req[1].atom_value(), f = req[2].atom_value(), a = req[3]](Process& worker) -> Task<> {
        const Outcome o = co_await exports->apply(worker, m, f, a);
        if (from) gen_server::reply(worker, *from, rpc_value(o));
        else if (!o.ok()) log_failure(worker.runtime(), "cast_failed", m, f, o);
      });
    }
  };
}

Term atom_list(const std::vector<Atom>& v) {
  std::vector<Term> out;
  out.reserve(v.size());
  for (Atom a : v) out.emplace_back(a);
  return Term::list(std::move(out));
}

const Term& req_of(const Term& m) { return m[1]; }

bool is_erpc_answer(const Term& m) {
  return m.is_tuple() && ((m.tuple_size() == 4 && m[0].is_atom(at("spawn_reply"))) ||
                          (m.tuple_size() == 5 && m[0].is_atom(atoms::DOWN())));
}

// The rpc:call value of an erpc answer (a spawn error or the DOWN of the call's process).
Term answer_value(const Term& res, const Term& m) {
  if (m.tuple_size() == 4) {  // {spawn_reply, ReqId, error, Reason}
    const Term& why = m[3];
    if (why.is_atom(atoms::noconnection())) return badrpc(Term(at("nodedown")));
    if (why.is_atom(at("notsup"))) return badrpc(why);
    return badrpc(exit_tuple(why));
  }
  return result_of_down(res, m[4]);
}

Ref request_call(Process& self, Atom node, const Term& res, Atom mod, Atom fun, Term args) {
  SpawnRequestOptions o;
  o.monitor = true;
  o.reply = SpawnRequestOptions::Reply::ErrorOnly;
  return self.spawn_request(node, at("erpc"), at("execute_call"), Term::list({res, Term(mod), Term(fun), std::move(args)}), o);
}

// After a timeout: abandon the request; an answer that came meanwhile still counts.
Task<std::optional<Term>> give_up(Process& self, const Ref& req) {
  if (!self.spawn_request_abandon(req)) self.demonitor(req, false);
  const Term req_term(req);
  co_return co_await self.receive([&](const Term& m) { return is_erpc_answer(m) && req_of(m) == req_term; },
                                  std::chrono::milliseconds(0));
}

}  // namespace

Term result_of_down(const Term& res, const Term& reason) {
  if (reason.is_tuple() && reason.tuple_size() >= 3 && reason[0] == res) {
    const Term& cls = reason[1];
    if (cls.is_atom(at("return")) && reason.tuple_size() == 3) return reason[2];
    if (cls.is_atom(at("throw")) && reason.tuple_size() == 3)
      return rpc_value(Outcome{Outcome::Class::Throw, reason[2], Term()});
    if (cls.is_atom(at("exit")) && reason.tuple_size() == 3) return badrpc(exit_tuple(reason[2]));
    if (cls.is_atom(at("error")) && reason.tuple_size() == 4) return badrpc(exit_tuple(Term::tuple({reason[2], reason[3]})));
    if (cls.is_atom(at("error")) && reason.tuple_size() == 3) {  // {Ref, error, {erpc, Why}}
      const Term& e = reason[2];
      return badrpc(exit_tuple(e.is_tuple() && e.tuple_size() == 2 ? e[1] : e));
    }
  }
  if (reason.is_atom(atoms::noconnection())) return badrpc(Term(at("nodedown")));
  return badrpc(exit_tuple(reason));
}

void require_local(Node& n, const Pid& p) {
  if (p.node != n.name()) throw Error(Term(at("badarg")), "argument 1: " + Term(p).to_string() + " is not a process of this node");
}

// One {Item, Value} of erlang:process_info/2 (the items hypha keeps); badarg for the others.
Term info_item(const ProcessInfo& info, Atom key) {
  Term value;
  if (key == at("status")) {
    static const char* const kNames[] = {"runnable", "running", "waiting", "exiting"};
    value = Term(at(kNames[static_cast<int>(info.status)]));
  } else if (key == at("message_queue_len")) {
    value = Term(static_cast<std::int64_t>(info.message_queue_len));
  } else if (key == at("links")) {
    std::vector<Term> links;
    for (const Pid& l : info.links) links.emplace_back(l);
    value = Term::list(std::move(links));
  } else if (key == at("registered_name")) {
    value = info.registered_name ? Term(*info.registered_name) : Term::list({});
  } else if (key == at("trap_exit")) {
    value = Term(info.trap_exit);
  } else if (key == at("memory")) {
    value = Term(static_cast<std::int64_t>(info.memory));
  } else {
    throw Error(Term(at("badarg")), "argument 2: " + Term(key).to_string() +
                                        " is not kept by hypha (status, message_queue_len, links, registered_name, trap_exit, memory are)");
  }
  return Term::tuple({Term(key), std::move(value)});
}

void add_builtins(Exports& exports, Node& node) {
  Node* n = &node;
  Exports* ex = &exports;
  exports.add("erlang", "node", [n]() { return Term(n->name()); });
  exports.add("erlang", "nodes", [n]() { return atom_list(n->nodes()); });
  exports.add("erlang", "nodes", [n](const Term& which) {
    std::vector<Term> kinds;
    if (which.is_atom()) kinds.push_back(which);
    else if (which.is_proper_list()) kinds.assign(which.list_elements().begin(), which.list_elements().end());
    else throw Error(Term(at("badarg")), "argument 1: expected an atom or a list of atoms");
    std::vector<Atom> out;
    const auto visible = n->nodes(false);
    const auto all = n->nodes(true);
    for (const Term& k : kinds) {
      if (k.is_atom(at("visible"))) out.insert(out.end(), visible.begin(), visible.end());
      else if (k.is_atom(at("connected"))) out.insert(out.end(), all.begin(), all.end());
      else if (k.is_atom(at("hidden"))) {
        for (Atom a : all)
          if (std::find(visible.begin(), visible.end(), a) == visible.end()) out.push_back(a);
      } else if (k.is_atom(at("this")) || k.is_atom(at("known"))) {
        out.push_back(n->name());
        if (k.is_atom(at("known"))) out.insert(out.end(), all.begin(), all.end());
      } else {
        throw Error(Term(at("badarg")), "argument 1: unknown node kind " + k.to_string());
      }
    }
    return atom_list(out);
  });
  exports.add("erlang", "is_alive", []() { return true; });
  exports.add("erlang", "whereis", [n](Atom name) {
    const auto pid = n->runtime().whereis(name);
    return pid ? Term(*pid) : Term(at("undefined"));
  });
  exports.add("erlang", "registered", [n]() { return atom_list(n->runtime().registered()); });
  // The process built-ins a remote shell or a monitoring script calls through rpc.
  exports.add("erlang", "processes", [n]() {
    std::vector<Term> pids;
    for (const Pid& p : n->runtime().processes()) pids.emplace_back(p);
    return Term::list(std::move(pids));
  });
  exports.add("erlang", "is_process_alive", [n](Pid p) {
    require_local(*n, p);
    return n->runtime().alive(p);
  });
  exports.add("erlang", "process_info", [n](Pid p) {
    require_local(*n, p);
    const auto info = n->runtime().process_info(p);
    if (!info) return Term(at("undefined"));
    std::vector<Term> items;
    if (info->registered_name) items.push_back(info_item(*info, at("registered_name")));
    for (const char* key : {"status", "message_queue_len", "links", "trap_exit", "memory"})
      items.push_back(info_item(*info, at(key)));
    return Term::list(std::move(items));
  });
  exports.add("erlang", "process_info", [n](Pid p, Term what) {
    require_local(*n, p);
    const bool many = what.is_nil() || what.is_list();
    if (!many && !what.is_atom()) throw Error(Term(at("badarg")), "argument 2: expected an item or a list of items");
    const auto info = n->runtime().process_info(p);
    if (!info) return Term(at("undefined"));
    // Asked alone, a missing name is [] (in a list it is {registered_name, []}), as in OTP.
    if (!many && what.is_atom(at("registered_name")) && !info->registered_name) return Term::list({});
    if (!many) return info_item(*info, what.atom_value());
    std::vector<Term> items;
    for (const Term& k : what.list_elements()) {
      if (!k.is_atom()) throw Error(Term(at("badarg")), "argument 2: " + k.to_string() + " is not an item");
      items.push_back(info_item(*info, k.atom_value()));
    }
    return Term::list(std::move(items));
  });
  exports.add("erlang", "self", [](Process& self) { return self.pid(); });
  exports.add("erlang", "exit", [](Term reason) -> Term { throw Exit(std::move(reason)); });
  exports.add("erlang", "exit", [](Process& self, Pid target, Term reason) {
    self.exit(target, std::move(reason));
    return true;
  });
  exports.add("erlang", "send", [](Process& self, Term dest, Term msg) {
    if (dest.is_pid()) {
      self.send(dest.pid(), msg);
    } else if (dest.is_ref()) {
      self.send(dest.ref(), msg);
    } else if (dest.is_atom()) {
      if (!self.runtime().whereis(dest.atom_value())) throw Error(Term(at("badarg")), "argument 1: no process registered as " + dest.to_string());
      self.send(dest.atom_value(), msg);
    } else if (dest.is_tuple() && dest.tuple_size() == 2 && dest[0].is_atom() && dest[1].is_atom()) {
      self.send(dest[0].atom_value(), dest[1].atom_value(), msg);
    } else {
      throw Error(Term(at("badarg")), "argument 1: expected a pid, a name, {Name, Node} or an alias");
    }
    return msg;
  });
  // apply/3 passes the called function's exception through, with its own stack.
  exports.add("erlang", "apply", [ex](Process& self, Atom mod, Atom fun, Term args) -> Task<Term> {
    const Outcome o = co_await ex->apply(self, mod, fun, args);
    co_return value_or_rethrow(o);
  });
}

void serve(Node& node, std::shared_ptr<Exports> exports) {
  add_builtins(*exports, node);
  Runtime& rt = node.runtime();
  rt.set_spawn_handler(spawn_handler(exports));
  const Pid rex_pid = rt.spawn(rex(exports));
  rt.register_name(at("rex"), rex_pid);
}

Task<Term> call(Process& self, Atom node, Atom mod, Atom fun, Term args, std::chrono::milliseconds timeout) {
  const Term res(self.make_ref());
  const Ref req = request_call(self, node, res, mod, fun, std::move(args));
  const Term req_term(req);
  auto mine = [&](const Term& m) { return is_erpc_answer(m) && req_of(m) == req_term; };
  std::optional<Term> m = co_await self.receive(mine, timeout);
  if (!m) m = co_await give_up(self, req);
  if (!m) co_return badrpc(Term(at("timeout")));
  co_return answer_value(res, *m);
}

Term call(Runtime& rt, Atom node, Atom mod, Atom fun, Term args, std::chrono::milliseconds timeout) {
  return block_on(rt, [&](Process& self) { return call(self, node, mod, fun, std::move(args), timeout); });
}

void cast(Process& self, Atom node, Atom mod, Atom fun, Term args) {
  SpawnRequestOptions o;
  o.reply = SpawnRequestOptions::Reply::No;
  self.spawn_request(node, at("erpc"), at("execute_cast"), Term::list({Term(mod), Term(fun), std::move(args)}), o);
}

Task<Term> multicall(Process& self, std::vector<Atom> nodes, Atom mod, Atom fun, Term args,
                     std::chrono::milliseconds timeout) {
  const Term res(self.make_ref());
  std::vector<Ref> reqs;
  reqs.reserve(nodes.size());
  for (Atom n : nodes) reqs.push_back(request_call(self, n, res, mod, fun, args));
  const Deadline deadline(timeout);
  std::vector<Term> results;
  std::vector<Atom> bad;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Term req_term(reqs[i]);
    auto mine = [&](const Term& m) { return is_erpc_answer(m) && req_of(m) == req_term; };
    std::optional<Term> m;
    if (timeout == infinity) {
      m = co_await self.receive(mine);
    } else {
      m = co_await self.receive(mine, deadline.left());
      if (!m) m = co_await give_up(self, reqs[i]);
    }
    const Term v = m ? answer_value(res, *m) : badrpc(Term(at("timeout")));
    if (v == badrpc(Term(at("nodedown"))) || v == badrpc(Term(at("timeout")))) bad.push_back(nodes[i]);
    else results.push_back(v);
  }
  co_return Term::tuple({Term::list(std::move(results)), atom_list(bad)});
}

Term multicall(Runtime& rt, const std::vector<Atom>& nodes, Atom mod, Atom fun, Term args,
               std::chrono::milliseconds timeout) {
  return block_on(rt, [&](Process& self) { return multicall(self, nodes, mod, fun, std::move(args), timeout); });
}

}  // namespace hypha::rpc
