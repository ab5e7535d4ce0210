// The wire form of a call, as OTP's `gen` module makes it, in one place: gen_server, the node's
// net_kernel and every service that serves or makes calls by hand use it.
//
//   request: {'$gen_call', {From, Tag}, Request}
//   reply:   {Tag, Reply}, sent to the alias when Tag is [alias | Ref] (OTP 24+ callers, hypha's
//            too) or [[alias | Ref] | _], else to From; older callers tag with a plain reference.
#pragma once

#include <optional>

#include "hypha/process/process.hpp"
#include "hypha/process/runtime.hpp"
#include "hypha/term/term.hpp"

namespace hypha {

// Where a call came from; answer it with gen::reply (gen_server::reply).
struct From {
  Pid pid;
  Term tag;  // [alias | Ref] from OTP 24+ callers (hypha's too), a plain reference from older ones
};

namespace gen {

struct Call {
  From from;
  Term request;
};

const Atom& call_atom();  // '$gen_call'

// {'$gen_call', {From, Tag}, Request}
Term call_message(const Pid& from, Term tag, Term request);
// The call in `msg`, or nullopt when it is not {'$gen_call', {Pid, Tag}, Request}.
std::optional<Call> parse_call(const Term& msg);

// [alias | Mref]: the tag of a request whose reply comes to the monitor's alias.
Term alias_tag(const Ref& mref);
// The alias inside a reply tag ([alias | Ref] or [[alias | Ref] | _]), or nullptr.
const Term* alias_of(const Term& tag);

// {Tag, Reply}
Term reply_message(const Term& tag, Term reply);
// True when `msg` is the reply {Tag, _} to a call tagged `tag`.
bool is_reply(const Term& msg, const Term& tag);

// Sends the reply where the caller wants it: its alias, or its pid.
void reply(Process& self, const From& from, Term reply);
void reply(Runtime& rt, const From& from, Term reply);

}  // namespace gen
}  // namespace hypha
