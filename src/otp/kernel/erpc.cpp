// erpc, served: the processes other nodes spawn here with spawn_request (erpc:call's
// erpc:execute_call(Ref, M, F, A), erpc:cast's execute_cast(M, F, A), spawn/4 of any export), as
// OTP 25's kernel/src/erpc.erl runs them: the result of a call is its process's exit reason.
#include "../rpc_terms.hpp"
#include "kernel_impl.hpp"

namespace hypha::kernel {

using namespace rpc::detail;

SpawnHandler erpc_spawn_handler(std::shared_ptr<Exports> exports) {
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

}  // namespace hypha::kernel
