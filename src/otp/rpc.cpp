// rpc called (spawn_request to erpc:execute_call), as OTP 25's kernel/src/erpc.erl and rpc.erl
// do it; the serving side is the node's kernel (kernel/rex.cpp, kernel/erpc.cpp).
#include "hypha/otp/rpc.hpp"

#include <string>

#include "hypha/base/log.hpp"
#include "hypha/otp/blocking.hpp"
#include "hypha/otp/gen_server.hpp"
#include "rpc_terms.hpp"

namespace hypha::rpc {

namespace detail {

Atom at(std::string_view s) { return Atom(s); }
Term badrpc(Term reason) { return Term::tuple({Term(at("badrpc")), std::move(reason)}); }
Term exit_tuple(Term reason) { return Term::tuple({Term(at("EXIT")), std::move(reason)}); }

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

Term atom_list(const std::vector<Atom>& v) {
  std::vector<Term> out;
  out.reserve(v.size());
  for (Atom a : v) out.emplace_back(a);
  return Term::list(std::move(out));
}

}  // namespace detail

using namespace detail;

namespace {

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
