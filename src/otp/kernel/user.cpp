// The node's group leader: what other nodes' processes created by this node's spawn requests
// (rpc, erpc) send their io requests to, as Erlang's `user`. Output is written to this process's
// stdout, so `hypha rpc NODE io format ...` prints where it was typed; input is not available.
#include <cstdio>
#include <optional>
#include <string>

#include "hypha/term/text.hpp"
#include "kernel_impl.hpp"

namespace hypha::kernel {

namespace {

// What a put_chars request with a module and function asks for: io_lib:format/fwrite (what
// io:format sends) and io_lib:write; nullopt when the request is malformed or fails (the caller
// then gets badarg, as from BEAM's io servers).
std::optional<std::string> apply_io_lib(const Term& fun, const Term& args) {
  if (!args.is_proper_list()) return std::nullopt;
  const auto argv = args.list_elements();
  if ((fun.is_atom(Atom("format")) || fun.is_atom(Atom("fwrite"))) && argv.size() == 2 && argv[1].is_proper_list()) {
    std::string f;
    if (argv[0].is_atom()) f = argv[0].atom_value().text();
    else if (!append_chardata(f, argv[0])) return std::nullopt;
    const auto fargs = argv[1].list_elements();
    auto r = io_lib_format(f, fargs);
    if (!r) return std::nullopt;
    return std::move(*r);
  }
  if (fun.is_atom(Atom("write")) && argv.size() == 1) return argv[0].to_string();
  return std::nullopt;
}

// One io request: output is written to stdout; input is not available here.
Term io_request(const Term& req) {
  const Term ok(Atom("ok"));
  const Term enotsup = Term::tuple({Term(Atom("error")), Term(Atom("enotsup"))});
  if (!req.is_tuple() || req.tuple_size() == 0 || !req[0].is_atom()) return Term::tuple({Term(Atom("error")), Term(Atom("request"))});
  const Atom op = req[0].atom_value();
  if (op == Atom("put_chars")) {
    // {put_chars, Encoding, Chars} or the old {put_chars, Chars}.
    // {put_chars, Enc, io_lib, format, [Format, Args]} is what io:format sends.
    const Term* chars = req.tuple_size() == 3 ? &req[2] : req.tuple_size() == 2 ? &req[1] : nullptr;
    std::string text;
    if (req.tuple_size() == 5 && req[2].is_atom(Atom("io_lib"))) {
      auto formatted = apply_io_lib(req[3], req[4]);
      if (!formatted) return Term::tuple({Term(Atom("error")), Term(Atom("format"))});
      text = std::move(*formatted);
    } else if (!chars || !append_chardata(text, *chars)) {
      return enotsup;
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return ok;
  }
  if (op == Atom("requests") && req.tuple_size() == 2 && req[1].is_proper_list()) {
    Term last = ok;
    for (const Term& r : req[1].list_elements()) {
      last = io_request(r);
      if (!(last == ok)) break;
    }
    return last;
  }
  if (op == Atom("getopts")) return Term();
  if (op == Atom("setopts")) return ok;
  return enotsup;  // get_chars, get_line, get_until: no input here
}

}  // namespace

ProcessBody user_process() {
  return [](Process& self) -> Task<> {
    for (;;) {
      const Term m = co_await self.receive();
      if (m.is_tuple() && m.tuple_size() == 4 && m[0].is_atom(Atom("io_request")) && m[1].is_pid())
        self.send(m[1].pid(), Term::tuple({Term(Atom("io_reply")), m[2], io_request(m[3])}));
    }
  };
}

ChildSpec user_spec() {
  // Each (re)start makes the new process the runtime's group leader.
  return ChildSpec::process(Term(Atom("user")), [](Process& self) -> Task<> {
    self.runtime().set_group_leader(self.pid());
    const ProcessBody body = user_process();  // named: a temporary must not live across co_await (GCC 12)
    co_await body(self);
  });
}

}  // namespace hypha::kernel
