// rex, the rpc server: the features handshake every BEAM peer sends ({Pid, features_request},
// answered with erpc, so their rpc:multicall and rpc:cast use erpc), and rpc's older protocol for
// callers that do not use erpc: {'$gen_call', From, {call | block_call, M, F, A, GroupLeader}}
// and {'$gen_cast', {cast, M, F, A, GL}}. Each request runs in a process of its own.
#include "../rpc_terms.hpp"
#include "hypha/term/match.hpp"
#include "kernel_impl.hpp"

namespace hypha::kernel {

using namespace rpc::detail;

namespace {

class Rex : public GenServer {
 public:
  explicit Rex(std::shared_ptr<Exports> exports) : exports_(std::move(exports)) {}

  Task<Action> handle_call(Process& self, const Term& request, const From& from) override {
    run(self, request, from);
    co_return Action::noreply();  // the worker replies
  }
  Task<Action> handle_cast(Process& self, const Term& msg) override {
    run(self, msg, std::nullopt);
    co_return Action::noreply();
  }
  Task<Action> handle_info(Process& self, const Term& msg) override {
    using namespace pattern;
    Pid from;
    if (match(msg, tuple(bind(from), "features_request")))
      self.send(from, Term::tuple({Term(at("features_reply")), Term(self.runtime().node()), Term::list({Term(at("erpc"))})}));
    co_return Action::noreply();
  }

 private:
  void run(Process& self, const Term& req, std::optional<From> from) {
    using namespace pattern;
    Atom m, f;
    Term a;
    if (!match(req, tuple(one_of("call", "block_call", "cast"), bind(m), bind(f), bind(a), any))) {
      if (from) gen::reply(self, *from, badrpc(exit_tuple(Term(at("badarg")))));
      return;
    }
    self.spawn([exports = exports_, from, m, f, a](Process& worker) -> Task<> {
      const Outcome o = co_await exports->apply(worker, m, f, a);
      if (from) gen::reply(worker, *from, rpc_value(o));
      else if (!o.ok()) log_failure(worker.runtime(), "cast_failed", m, f, o);
    });
  }

  std::shared_ptr<Exports> exports_;
};

}  // namespace

ChildSpec rex_spec(std::shared_ptr<Exports> exports) {
  return ChildSpec::server(Term(Atom("rex")), [exports] { return std::make_unique<Rex>(exports); }, {.name = Atom("rex")});
}

}  // namespace hypha::kernel
