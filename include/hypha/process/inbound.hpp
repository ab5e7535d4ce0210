// RuntimeInbound: the node-facing side of a Runtime, beside RemoteTransport (remote.hpp). The node
// layer plugs its transport and its I/O poller in here and hands over the signals that arrived
// from other nodes for local processes. Programs have no use for it: they talk to the Runtime.
//
//   RuntimeInbound in(rt);
//   in.set_remote(&transport);
//   in.deliver(pid, msg);   // a SEND that came from another node
//
// A RuntimeInbound is a handle (one pointer): copy it freely; it must not outlive the runtime.
// Thread-safety: every member may be called from any thread.
#pragma once

#include "hypha/process/io_poller.hpp"
#include "hypha/process/remote.hpp"
#include "hypha/process/runtime.hpp"

namespace hypha {

class RuntimeInbound {
 public:
  explicit RuntimeInbound(Runtime& rt) noexcept : impl_(rt.impl_.get()) {}

  // Where sends to other nodes go (nullptr: they are dropped, as to an unreachable node).
  void set_remote(RemoteTransport* remote) noexcept;
  // Lets idle workers run the node's I/O (see io_poller.hpp); nullptr detaches it, returning once
  // no worker is inside it. The poller must outlive its attachment.
  void set_io_poller(IoPoller* poller);

  // No process runnable or running (a runtime on a ManualClock counts them; on the steady clock
  // this is always true). A harness waits for every runtime of a test to be quiet.
  bool quiet() const noexcept;

  void deliver(const Pid& to, Term msg);
  bool deliver_name(Atom name, Term msg);
  bool deliver_alias(const Ref& alias, Term msg);
  void deliver_exit(const Pid& from, const Pid& to, Term reason, bool linked);
  void deliver_link(const Pid& remote, const Pid& local);    // false link target: exit noproc back
  void deliver_unlink(const Pid& remote, const Pid& local);
  // A remote process monitors a local one (`target` a local pid or registered name).
  void deliver_monitor(const Pid& watcher, const Term& target, const Ref& ref);
  void deliver_demonitor(const Pid& watcher, const Term& target, const Ref& ref);
  // A process of `node` that local processes linked to or monitored died, or the node went away.
  void deliver_down(const Pid& watcher, const Ref& ref, const Term& watched, Term reason);
  // The answer to a spawn_request of `to`: `result` the new pid or an error atom. `linked` and
  // `monitored` say what the other node set up (recorded here so unlink/demonitor/noconnection
  // work); `notify` whether {spawn_reply, Ref, ok, Pid} / {spawn_reply, Ref, error, Reason} is
  // delivered (the request's reply option).
  void deliver_spawn_reply(const Pid& to, const Ref& req, const Term& result, bool linked, bool monitored, bool notify);

 private:
  Runtime::Impl* impl_;
};

}  // namespace hypha
