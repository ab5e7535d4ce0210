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
  // Around each process run on a worker (process_run) and each round of I/O handlers: what is sent
  // to other nodes in between may be held and written at batch_end(), a connection's frames with
  // one system call. A process may also be held in a send while a full queue drains.
  virtual void batch_begin(bool process_run) { (void)process_run; }
  virtual void batch_end() {}
};

}  // namespace hypha
