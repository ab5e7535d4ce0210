// RemoteTransport: the narrow interface through which the process runtime hands everything
// addressed to another node (a pid whose node is not this one, a {Name, Node} pair). The node
// layer implements it; the runtime never includes network code. Calls come from any thread and
// must not block.
#pragma once

#include <cstdint>
#include <span>

#include "hypha/term/term.hpp"

namespace hypha {

// Erlang's spawn_request options: link and monitor (the monitor's reference is the request id)
// and when the requester hears of the outcome ({reply, yes | no | error_only | success_only}).
struct SpawnRequestOptions {
  bool link = false;
  bool monitor = false;
  enum class Reply : std::uint8_t { Yes, No, ErrorOnly, SuccessOnly } reply = Reply::Yes;
  // Whether the requester hears of an outcome that succeeded (`ok`) or failed.
  bool wants_reply(bool ok) const noexcept {
    return reply == Reply::Yes || (ok ? reply == Reply::SuccessOnly : reply == Reply::ErrorOnly);
  }
};

class RemoteTransport {
 public:
  virtual ~RemoteTransport() = default;
  // `from` is nullopt for sends from outside any process (Erlang's SEND without a sender).
  virtual void send(const Pid* from, const Pid& to, const Term& msg) = 0;
  // The same message to several pids of other nodes (pub/sub's forward to every node's adapter):
  // a transport may encode it once for all of them. This one sends to each in turn.
  virtual void send_each(const Pid* from, std::span<const Pid> to, const Term& msg) {
    for (const Pid& p : to) send(from, p, msg);
  }
  virtual void send_name(const Pid* from, Atom name, Atom node, const Term& msg) = 0;
  virtual void send_alias(const Pid* from, const Ref& alias, const Term& msg) = 0;
  virtual void link(const Pid& from, const Pid& to) = 0;
  virtual void unlink(const Pid& from, const Pid& to) = 0;
  // An exit signal: from a link (`linked`, the sender died) or from exit/2.
  virtual void exit(const Pid& from, const Pid& to, const Term& reason, bool linked) = 0;
  // `target` is a pid or an atom (a name registered on `node`).
  virtual void monitor(const Pid& from, const Term& target, Atom node, const Ref& ref) = 0;
  virtual void demonitor(const Pid& from, const Term& target, Atom node, const Ref& ref) = 0;
  // spawn_request to another node (SPAWN_REQUEST); the reply comes back through
  // Runtime::deliver_spawn_reply, or an error reply when the connection fails first.
  virtual void spawn_request(const Pid& from, const Pid& group_leader, Atom node, const Ref& req, Atom mod, Atom fun,
                             const Term& args, const SpawnRequestOptions& opts) = 0;
  // spawn_request_abandon: forget the request if no reply came yet (true); a process created for
  // it later loses its link (exit reason abandoned) and monitor, and nobody is told.
  virtual bool spawn_abandon(const Pid& from, const Ref& req) = 0;
  // The monitored local process died: tell the remote watcher.
  virtual void monitor_exit(const Pid& from, const Term& watched, const Pid& watcher, const Ref& ref,
                            const Term& reason) = 0;
};

}  // namespace hypha
