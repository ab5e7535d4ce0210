// The parts of OTP's net_kernel that other nodes talk to: the {is_auth, Node} gen_server call
// that net_adm:ping (and Node.ping) make. Other calls get {error, not_supported}.
#include "node_impl.hpp"

namespace hypha {

ProcessBody net_kernel_process() {
  return [](Process& self) -> Task<> {
    const Atom gen_call("$gen_call"), is_auth("is_auth"), yes("yes"), alias("alias"), not_supported("not_supported");
    for (;;) {
      Term m = co_await self.receive();
      if (!m.is_tuple() || m.tuple_size() != 3 || !m[0].is_atom(gen_call)) continue;
      const Term& from = m[1];
      if (!from.is_tuple() || from.tuple_size() != 2 || !from[0].is_pid()) continue;
      const Term& req = m[2];
      const Term reply = (req.is_tuple() && req.tuple_size() == 2 && req[0].is_atom(is_auth))
                             ? Term(yes)
                             : Term::tuple({Term(atoms::error()), Term(not_supported)});
      const Term& tag = from[1];
      const Term msg = Term::tuple({tag, reply});
      // OTP 24+ callers tag with [alias | Mref]: answer to the alias (the pid would accept it too).
      if (tag.is_list() && tag.list_elements().size() == 1 && tag.list_elements()[0].is_atom(alias) &&
          tag.list_tail().is_ref())
        self.send(tag.list_tail().ref(), msg);
      else
        self.send(from[0].pid(), msg);
    }
  };
}

}  // namespace hypha
