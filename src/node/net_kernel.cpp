// The parts of OTP's net_kernel that other nodes talk to: the {is_auth, Node} gen_server call
// that net_adm:ping (and Node.ping) make. Other calls get {error, not_supported}.
#include "hypha/process/gen.hpp"
#include "hypha/term/match.hpp"
#include "node_impl.hpp"

namespace hypha {

ProcessBody net_kernel_process() {
  return [](Process& self) -> Task<> {
    const Atom is_auth("is_auth"), yes("yes"), not_supported("not_supported");
    for (;;) {
      Term m = co_await self.receive();
      auto call = gen::parse_call(m);
      if (!call) continue;
      using namespace pattern;
      gen::reply(self, call->from,
                 match(call->request, tuple(is_auth, any)) ? Term(yes) : Term::tuple({Term(atoms::error()), Term(not_supported)}));
    }
  };
}

}  // namespace hypha
