// The parts of OTP's net_kernel that other nodes talk to: the {is_auth, Node} call that
// net_adm:ping (and Node.ping) make, answered yes. Other calls get {error, not_supported}.
#include "hypha/term/match.hpp"
#include "kernel_impl.hpp"

namespace hypha::kernel {

namespace {

class NetKernel : public GenServer {
 public:
  Task<Action> handle_call(Process&, const Term& request, const From&) override {
    using namespace pattern;
    static const Atom is_auth("is_auth"), yes("yes"), not_supported("not_supported");
    if (match(request, tuple(is_auth, any))) co_return Action::reply(Term(yes));
    co_return Action::reply(Term::tuple({Term(atoms::error()), Term(not_supported)}));
  }
};

}  // namespace

ChildSpec net_kernel_spec() {
  return ChildSpec::server(Term(Atom("net_kernel")), [] { return std::make_unique<NetKernel>(); },
                           {.name = Atom("net_kernel")});
}

}  // namespace hypha::kernel
