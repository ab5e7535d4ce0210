// The `erlang` built-ins that callers on other nodes reach through rpc, as on a BEAM node:
// node/0, nodes/0,1, is_alive/0, whereis/1, registered/0, processes/0, is_process_alive/1,
// process_info/1,2, self/0, exit/1,2, send/2, apply/3, phash2/1,2; timer:sleep/1; and
// hypha_node:processes/2 (kernel.hpp's top_processes) and hypha_node:peers/0 (what `hypha top` shows).
#include <algorithm>

#include "../rpc_terms.hpp"
#include "hypha/term/phash.hpp"
#include "kernel_impl.hpp"

namespace hypha::kernel {

using namespace rpc::detail;

namespace {

void require_local(Node& n, const Pid& p) {
  if (p.node != n.name()) throw Error(Term(at("badarg")), "argument 1: " + Term(p).to_string() + " is not a process of this node");
}

Atom status_atom(ProcessStatus s) {
  static const char* const kNames[] = {"runnable", "running", "waiting", "exiting"};
  return at(kNames[static_cast<int>(s)]);
}

// One {Item, Value} of erlang:process_info/2 (the items hypha keeps); badarg for the others.
Term info_item(const ProcessInfo& info, Atom key) {
  Term value;
  if (key == at("status")) {
    value = Term(status_atom(info.status));
  } else if (key == at("message_queue_len")) {
    value = Term(static_cast<std::int64_t>(info.message_queue_len));
  } else if (key == at("links")) {
    std::vector<Term> links;
    for (const Pid& l : info.links) links.emplace_back(l);
    value = Term::list(std::move(links));
  } else if (key == at("registered_name")) {
    value = info.registered_name ? Term(*info.registered_name) : Term::list({});
  } else if (key == at("trap_exit")) {
    value = Term(info.trap_exit);
  } else if (key == at("memory")) {
    value = Term(static_cast<std::int64_t>(info.memory));
  } else {
    throw Error(Term(at("badarg")), "argument 2: " + Term(key).to_string() +
                                        " is not kept by hypha (status, message_queue_len, links, registered_name, trap_exit, memory are)");
  }
  return Term::tuple({Term(key), std::move(value)});
}

}  // namespace

Top top_processes(const Runtime& rt, TopBy by, std::size_t n) {
  Top out;
  for (const Pid& p : rt.processes()) {
    const auto info = rt.process_info(p);
    if (!info) continue;  // ended meanwhile
    ++out.total;
    out.rows.push_back(ProcessRow{p, info->registered_name, info->message_queue_len, info->memory, info->status});
  }
  const auto key = [by](const ProcessRow& r) { return by == TopBy::Queue ? r.queue : r.memory; };
  const auto larger = [&](const ProcessRow& a, const ProcessRow& b) {
    return key(a) != key(b) ? key(a) > key(b) : (a.memory != b.memory ? a.memory > b.memory : a.pid < b.pid);
  };
  const std::size_t keep = std::min(n, out.rows.size());
  std::partial_sort(out.rows.begin(), out.rows.begin() + static_cast<std::ptrdiff_t>(keep), out.rows.end(), larger);
  out.rows.resize(keep);
  return out;
}

void add_builtins(Exports& exports, Node& node) {
  Node* n = &node;
  Exports* ex = &exports;
  exports.add("erlang", "node", [n]() { return Term(n->name()); });
  exports.add("erlang", "nodes", [n]() { return atom_list(n->nodes()); });
  exports.add("erlang", "nodes", [n](const Term& which) {
    std::vector<Term> kinds;
    if (which.is_atom()) kinds.push_back(which);
    else if (which.is_proper_list()) kinds.assign(which.list_elements().begin(), which.list_elements().end());
    else throw Error(Term(at("badarg")), "argument 1: expected an atom or a list of atoms");
    std::vector<Atom> out;
    const auto visible = n->nodes(false);
    const auto all = n->nodes(true);
    for (const Term& k : kinds) {
      if (k.is_atom(at("visible"))) out.insert(out.end(), visible.begin(), visible.end());
      else if (k.is_atom(at("connected"))) out.insert(out.end(), all.begin(), all.end());
      else if (k.is_atom(at("hidden"))) {
        for (Atom a : all)
          if (std::find(visible.begin(), visible.end(), a) == visible.end()) out.push_back(a);
      } else if (k.is_atom(at("this")) || k.is_atom(at("known"))) {
        out.push_back(n->name());
        if (k.is_atom(at("known"))) out.insert(out.end(), all.begin(), all.end());
      } else {
        throw Error(Term(at("badarg")), "argument 1: unknown node kind " + k.to_string());
      }
    }
    return atom_list(out);
  });
  exports.add("erlang", "is_alive", []() { return true; });
  // timer:sleep/1: ok after Ms (or never, for infinity), as OTP's; work tests and demos start by name.
  exports.add("timer", "sleep", [](Process& self, Term ms) -> Task<Term> {
    if (ms.is_atom(at("infinity"))) {
      co_await self.receive([](const Term&) { return false; });
    } else {
      if (!ms.is_small_integer() || ms.small_integer() < 0)
        throw Error(Term(at("function_clause")), "timer:sleep/1: expected a time in milliseconds or infinity");
      co_await self.sleep(std::chrono::milliseconds(ms.small_integer()));
    }
    co_return Term(at("ok"));
  });
  // erlang:phash2/1,2, the same value a BEAM node computes (hypha/term/phash.hpp).
  exports.add("erlang", "phash2", [](Term t) { return Term(phash2(t)); });
  exports.add("erlang", "phash2", [](Term t, Term range) {
    const BigInt r = range.is_integer() ? range.big_integer() : BigInt(0);
    const auto rv = r.to_uint64();
    if (!rv || *rv == 0 || *rv > (std::uint64_t{1} << 32))
      throw Error(Term(at("badarg")), "argument 2: expected an integer range 1..4294967296, got " + range.to_string());
    return Term(phash2(t, *rv));
  });
  exports.add("erlang", "whereis", [n](Atom name) {
    const auto pid = n->runtime().whereis(name);
    return pid ? Term(*pid) : Term(at("undefined"));
  });
  exports.add("erlang", "registered", [n]() { return atom_list(n->runtime().registered()); });
  // The process built-ins a remote shell or a monitoring script calls through rpc.
  exports.add("erlang", "processes", [n]() {
    std::vector<Term> pids;
    for (const Pid& p : n->runtime().processes()) pids.emplace_back(p);
    return Term::list(std::move(pids));
  });
  exports.add("hypha_node", "processes", [n](Atom by, std::int64_t top) {
    if (by != at("queue") && by != at("memory"))
      throw Error(Term(at("badarg")), "argument 1: queue or memory, got " + Term(by).to_string());
    if (top < 0) throw Error(Term(at("badarg")), "argument 2: a count of processes, got " + std::to_string(top));
    const Top t = top_processes(n->runtime(), by == at("queue") ? TopBy::Queue : TopBy::Memory,
                                static_cast<std::size_t>(top));
    std::vector<Term> rows;
    for (const ProcessRow& r : t.rows)
      rows.push_back(Term::tuple({Term(r.pid), r.name ? Term(*r.name) : Term(at("undefined")),
                                  Term(static_cast<std::int64_t>(r.queue)), Term(static_cast<std::int64_t>(r.memory)),
                                  Term(status_atom(r.status))}));
    return Term::tuple({Term(static_cast<std::int64_t>(t.total)), Term::list(std::move(rows))});
  });
  // [{Peer, hypha | beam | hidden, MessagesIn, MessagesOut, BytesIn, BytesOut, SendQueueBytes}]
  exports.add("hypha_node", "peers", [n]() {
    std::vector<Term> out;
    for (const PeerInfo& p : n->peers()) {
      const auto num = [](std::uint64_t v) { return Term(static_cast<std::int64_t>(v)); };
      out.push_back(Term::tuple({Term(p.name), Term(at(p.hidden ? "hidden" : p.hypha ? "hypha" : "beam")),
                                 num(p.messages_in), num(p.messages_out), num(p.bytes_in), num(p.bytes_out),
                                 num(p.send_queue_bytes)}));
    }
    return Term::list(std::move(out));
  });
  exports.add("erlang", "is_process_alive", [n](Pid p) {
    require_local(*n, p);
    return n->runtime().alive(p);
  });
  exports.add("erlang", "process_info", [n](Pid p) {
    require_local(*n, p);
    const auto info = n->runtime().process_info(p);
    if (!info) return Term(at("undefined"));
    std::vector<Term> items;
    if (info->registered_name) items.push_back(info_item(*info, at("registered_name")));
    for (const char* key : {"status", "message_queue_len", "links", "trap_exit", "memory"})
      items.push_back(info_item(*info, at(key)));
    return Term::list(std::move(items));
  });
  exports.add("erlang", "process_info", [n](Pid p, Term what) {
    require_local(*n, p);
    const bool many = what.is_nil() || what.is_list();
    if (!many && !what.is_atom()) throw Error(Term(at("badarg")), "argument 2: expected an item or a list of items");
    const auto info = n->runtime().process_info(p);
    if (!info) return Term(at("undefined"));
    // Asked alone, a missing name is [] (in a list it is {registered_name, []}), as in OTP.
    if (!many && what.is_atom(at("registered_name")) && !info->registered_name) return Term::list({});
    if (!many) return info_item(*info, what.atom_value());
    std::vector<Term> items;
    for (const Term& k : what.list_elements()) {
      if (!k.is_atom()) throw Error(Term(at("badarg")), "argument 2: " + k.to_string() + " is not an item");
      items.push_back(info_item(*info, k.atom_value()));
    }
    return Term::list(std::move(items));
  });
  exports.add("erlang", "self", [](Process& self) { return self.pid(); });
  exports.add("erlang", "exit", [](Term reason) -> Term { throw Exit(std::move(reason)); });
  exports.add("erlang", "exit", [](Process& self, Pid target, Term reason) {
    self.exit(target, std::move(reason));
    return true;
  });
  exports.add("erlang", "send", [](Process& self, Term dest, Term msg) {
    if (dest.is_pid()) {
      self.send(dest.pid(), msg);
    } else if (dest.is_ref()) {
      self.send(dest.ref(), msg);
    } else if (dest.is_atom()) {
      if (!self.runtime().whereis(dest.atom_value())) throw Error(Term(at("badarg")), "argument 1: no process registered as " + dest.to_string());
      self.send(dest.atom_value(), msg);
    } else if (dest.is_tuple() && dest.tuple_size() == 2 && dest[0].is_atom() && dest[1].is_atom()) {
      self.send(dest[0].atom_value(), dest[1].atom_value(), msg);
    } else {
      throw Error(Term(at("badarg")), "argument 1: expected a pid, a name, {Name, Node} or an alias");
    }
    return msg;
  });
  // apply/3 passes the called function's exception through, with its own stack.
  exports.add("erlang", "apply", [ex](Process& self, Atom mod, Atom fun, Term args) -> Task<Term> {
    const Outcome o = co_await ex->apply(self, mod, fun, args);
    co_return value_or_rethrow(o);
  });
}

}  // namespace hypha::kernel
