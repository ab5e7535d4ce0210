// :global names through a BEAM peer (cluster/global.hpp).
#include "hypha/cluster/global.hpp"

#include <map>

#include "hypha/base/log.hpp"
#include "hypha/otp/gen_server.hpp"
#include "hypha/otp/rpc.hpp"
#include "hypha/term/match.hpp"

namespace hypha::global {

namespace {

const Atom& a_global() { static const Atom a("global"); return a; }

bool is_badrpc(const Term& r) { return r.is_tuple() && r.tuple_size() == 2 && r[0].is_atom(Atom("badrpc")); }

Result<bool, Term> yes_no(const Term& r) {
  if (r.is_atom(Atom("yes"))) return true;
  if (r.is_atom(Atom("no"))) return false;
  return unexpected(r);
}

Result<std::optional<Pid>, Term> pid_or_undefined(const Term& r) {
  if (r.is_pid()) return std::optional<Pid>(r.pid());
  if (r.is_atom(Atom("undefined"))) return std::optional<Pid>();
  return unexpected(r);
}

}  // namespace

std::optional<Atom> beam_peer(Node& node, std::chrono::milliseconds timeout) {
  for (Atom n : node.nodes()) {
    const Term r = rpc::call(node.runtime(), n, Atom("erlang"), Atom("whereis"),
                             Term::list({Term(Atom("global_name_server"))}), timeout);
    if (r.is_pid()) return n;
  }
  return std::nullopt;
}

Result<bool, Term> register_name(Runtime& rt, Atom via, const Term& name, const Pid& pid, std::chrono::milliseconds timeout) {
  return yes_no(rpc::call(rt, via, a_global(), Atom("register_name"), Term::list({name, Term(pid)}), timeout));
}

Result<bool, Term> unregister_name(Runtime& rt, Atom via, const Term& name, std::chrono::milliseconds timeout) {
  const Term r = rpc::call(rt, via, a_global(), Atom("unregister_name"), Term::list({name}), timeout);
  if (is_badrpc(r)) return unexpected(r);
  return true;
}

Result<std::optional<Pid>, Term> whereis_name(Runtime& rt, Atom via, const Term& name, std::chrono::milliseconds timeout) {
  return pid_or_undefined(rpc::call(rt, via, a_global(), Atom("whereis_name"), Term::list({name}), timeout));
}

Task<Result<std::optional<Pid>, Term>> whereis_name(Process& self, Atom via, Term name, std::chrono::milliseconds timeout) {
  Term args = Term::list({std::move(name)});
  const Term r = co_await rpc::call(self, via, a_global(), Atom("whereis_name"), std::move(args), timeout);
  co_return pid_or_undefined(r);
}

Result<Pid, Term> send(Runtime& rt, Atom via, const Term& name, const Term& msg, std::chrono::milliseconds timeout) {
  auto where = whereis_name(rt, via, name, timeout);
  if (!where) return unexpected(where.error());
  if (!*where) return unexpected(Term::tuple({Term(Atom("badarg")), Term::tuple({name, msg})}));
  rt.send(**where, msg);
  return **where;
}

namespace {

class Names final : public GenServer {
 public:
  Names(Node& node, std::vector<Atom> names) : node_(node), names_(std::move(names)) {}

  Task<> init(Process& self) override {
    node_.monitor_nodes(self.pid());
    self.send(self.pid(), Term(Atom("check")));
    co_return;
  }
  Task<> terminate(Process& self, const Term&) override {
    node_.monitor_nodes(self.pid(), false);
    co_return;
  }

  Task<Action> handle_info(Process& self, const Term& msg) override {
    using namespace pattern;
    Atom peer;
    if (match(msg, tuple("nodeup", bind(peer)))) {
      co_await register_all(self, peer, true);
    } else if (match(msg, "check")) {
      // A name whose local process changed (restarted by its supervisor): register the new one.
      for (Atom p : node_.nodes()) {
        if (!co_await runs_global(self, p)) continue;
        co_await register_all(self, p, false);
        break;
      }
      self.runtime().send_after(std::chrono::seconds(1), self.pid(), Term(Atom("check")));
    }
    co_return Action::noreply();
  }

 private:
  Task<bool> runs_global(Process& self, Atom peer) {
    Term args = Term::list({Term(Atom("global_name_server"))});
    const Term r = co_await rpc::call(self, peer, Atom("erlang"), Atom("whereis"), std::move(args), default_timeout);
    co_return r.is_pid();
  }

  // Registers every name through `peer`; `all`: even those already registered from here.
  Task<> register_all(Process& self, Atom peer, bool all) {
    if (all && !co_await runs_global(self, peer)) co_return;
    for (Atom name : names_) {
      const auto local = self.runtime().whereis(name);
      if (!local) continue;
      auto it = registered_.find(name);
      if (!all && it != registered_.end() && it->second == *local) continue;
      Term args = Term::list({Term(name), Term(*local)});
      const Term r = co_await rpc::call(self, peer, a_global(), Atom("register_name"), std::move(args), default_timeout);
      if (r.is_atom(Atom("yes"))) {
        registered_[name] = *local;
        log::event(log::Level::Info, node_.name().text(), "global_name_registered", {{"name", name.text()}, {"via", peer.text()}});
        continue;
      }
      // `no`: taken, by this process (registered through another peer before) or another one.
      Term wargs = Term::list({Term(name)});
      const Term holder = co_await rpc::call(self, peer, a_global(), Atom("whereis_name"), std::move(wargs), default_timeout);
      if (holder.is_pid() && holder.pid() == *local) {
        registered_[name] = *local;
      } else {
        log::limited(log::Level::Warn, node_.name().text(), "global_name_taken", std::string(name.text()),
                     {{"name", name.text()}, {"holder", holder.to_string()}, {"via", peer.text()}});
      }
    }
  }

  Node& node_;
  std::vector<Atom> names_;
  std::map<Atom, Pid> registered_;
};

}  // namespace

ChildSpec names_spec(Node& node, std::vector<Atom> names) {
  return ChildSpec::server(Term(Atom("hypha_global_names")),
                           [&node, names] { return std::make_unique<Names>(node, names); },
                           gen_server::StartOptions{.name = Atom("hypha_global_names")});
}

}  // namespace hypha::global
