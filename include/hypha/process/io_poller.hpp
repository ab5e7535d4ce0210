// IoPoller: how a runtime's idle workers run a node's network I/O themselves, as BEAM's
// schedulers poll. A message that arrives is then decoded, delivered and its receiver run by the
// same thread, with no hand-off from an I/O thread to a worker (on a VM each such wake-up costs
// more than the work it hands over). The node layer implements it over its asio io_context.
#pragma once

namespace hypha {

class IoPoller {
 public:
  virtual ~IoPoller() = default;
  // Runs the I/O work that is ready now; never blocks.
  virtual void poll() = 0;
  // Blocks until some I/O work ran or interrupt() was called.
  virtual void wait() = 0;
  // Makes a wait() in progress, or the next one, return soon. Any thread.
  virtual void interrupt() = 0;
  // Around each process run on a worker: what the process sends to other nodes in between may be
  // held and written at batch_end(), a connection's frames with one system call.
  virtual void batch_begin() {}
  virtual void batch_end() {}
};

}  // namespace hypha
