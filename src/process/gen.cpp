#include "hypha/process/gen.hpp"

#include "hypha/term/match.hpp"

namespace hypha::gen {

namespace {
const Atom& alias_atom() {
  static const Atom a("alias");
  return a;
}
}  // namespace

const Atom& call_atom() {
  static const Atom a("$gen_call");
  return a;
}

Term call_message(const Pid& from, Term tag, Term request) {
  return Term::tuple({Term(call_atom()), Term::tuple({Term(from), std::move(tag)}), std::move(request)});
}

std::optional<Call> parse_call(const Term& msg) {
  using namespace pattern;
  Call c;
  if (!match(msg, tuple(call_atom(), tuple(bind(c.from.pid), bind(c.from.tag)), bind(c.request)))) return std::nullopt;
  return c;
}

Term alias_tag(const Ref& mref) { return Term::list({Term(alias_atom())}, Term(mref)); }

const Term* alias_of(const Term& tag) {
  if (!tag.is_list() || tag.list_elements().size() != 1) return nullptr;
  const Term& head = tag.list_elements()[0];
  if (head.is_atom(alias_atom()) && tag.list_tail().is_ref()) return &tag.list_tail();
  if (head.is_list()) return alias_of(head);
  return nullptr;
}

Term reply_message(const Term& tag, Term reply) { return Term::tuple({tag, std::move(reply)}); }

bool is_reply(const Term& msg, const Term& tag) { return msg.is_tuple() && msg.tuple_size() == 2 && msg[0] == tag; }

void reply(Process& self, const From& from, Term reply) {
  Term msg = reply_message(from.tag, std::move(reply));
  if (const Term* alias = alias_of(from.tag)) self.send(alias->ref(), std::move(msg));
  else self.send(from.pid, std::move(msg));
}

void reply(Runtime& rt, const From& from, Term reply) {
  Term msg = reply_message(from.tag, std::move(reply));
  if (const Term* alias = alias_of(from.tag)) rt.send(alias->ref(), std::move(msg));
  else rt.send(from.pid, std::move(msg));
}

}  // namespace hypha::gen
