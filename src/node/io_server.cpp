// The node's group leader: what other nodes' processes created by this node's spawn requests
// (rpc, erpc) send their io requests to, as Erlang's `user`. Output is written to this process's
// stdout, so `hypha rpc NODE io format ...` prints where it was typed; input is not available.
#include <cstdio>
#include <string>

#include "hypha/term/text.hpp"
#include "node_impl.hpp"

namespace hypha {

namespace {

// io_lib:format(Format, Args) for the directives io:format callers mostly use: ~p ~w (printed
// as ~tp on one line), ~s, ~c, ~b/~B, ~n, ~~ (with the t modifier). False for anything else.
bool format_chars(std::string& out, const Term& format, const Term& args) {
  std::string f;
  if (!append_chardata(f, format) || !args.is_proper_list()) return false;
  const auto argv = args.list_elements();
  std::size_t next = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '~') {
      out.push_back(f[i]);
      continue;
    }
    if (++i < f.size() && f[i] == 't') ++i;  // Unicode translation: output is UTF-8 anyway
    if (i >= f.size()) return false;
    const char d = f[i];
    if (d == 'n') { out.push_back('\n'); continue; }
    if (d == '~') { out.push_back('~'); continue; }
    if (next >= argv.size()) return false;
    const Term& arg = argv[next++];
    switch (d) {
      case 'p': case 'P': case 'w': case 'W': out += arg.to_string(); break;
      case 's': if (!append_chardata(out, arg)) return false; break;
      case 'c': if (!append_chardata(out, Term::list({arg}))) return false; break;
      case 'b': case 'B': case 'd': if (!arg.is_integer()) return false; out += arg.to_string(); break;
      default: return false;
    }
  }
  return next == argv.size();
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
    if (req.tuple_size() == 5 && req[2].is_atom(Atom("io_lib")) && req[3].is_atom(Atom("format")) &&
        req[4].is_proper_list() && req[4].list_elements().size() == 2) {
      if (!format_chars(text, req[4].list_elements()[0], req[4].list_elements()[1])) return enotsup;
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

ProcessBody io_server_process() {
  return [](Process& self) -> Task<> {
    for (;;) {
      const Term m = co_await self.receive();
      if (m.is_tuple() && m.tuple_size() == 4 && m[0].is_atom(Atom("io_request")) && m[1].is_pid())
        self.send(m[1].pid(), Term::tuple({Term(Atom("io_reply")), m[2], io_request(m[3])}));
    }
  };
}

}  // namespace hypha
