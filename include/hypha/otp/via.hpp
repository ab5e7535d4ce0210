// Names from a name service, as Erlang's {via, Module, Name}: a gen_server (and so a supervisor
// child made with ChildSpec::server) can be started under such a name and called by it.
//
//   auto names = hypha::registry::via();                      // the cluster registry (cluster/registry.hpp)
//   gen_server::start(rt, std::make_unique<Billing>(), {.via = hypha::ViaName{names, Term("billing"_atom)}});
//   gen_server::call(rt, hypha::ViaName{names, Term("billing"_atom)}, request);   // from any member node
//
// The service is an interface so that otp does not depend on what implements it (the cluster
// registry, above otp, does; so can an application, or a test double). Its calls follow OTP's
// via-module callbacks: register_name answers yes or no, and a server whose name is taken does
// not start ({already_started, Pid}, Pid from whereis, as OTP's gen does). The service removes
// the name when the process exits (as global and the cluster registry do); nothing unregisters.
#pragma once

#include <memory>
#include <optional>

#include "hypha/process/process.hpp"
#include "hypha/term/term.hpp"

namespace hypha {

class NameService {
 public:
  virtual ~NameService() = default;
  // The Module of {via, Module, Name} (in exit reasons and to_term()).
  virtual Atom module() const = 0;
  // Registers `pid` under `name`; false when it is taken (or the service cannot be reached).
  virtual Task<bool> register_name(Process& self, Term name, Pid pid) const = 0;
  virtual std::optional<Pid> whereis(const Runtime& rt, const Term& name) const = 0;
};

struct ViaName {
  std::shared_ptr<const NameService> service;
  Term name;
  Term to_term() const { return Term::tuple({Term(Atom("via")), Term(service->module()), name}); }
};

}  // namespace hypha
