// tasks::Fake, the double of tasks::Service for applications' tests (cluster/tasks.hpp).
#include "hypha/cluster/tasks.hpp"

#include <algorithm>

namespace hypha::tasks {

namespace {
Term not_found(const Term& name) { return Term::tuple({Term(Atom("distributed_task_not_found")), name}); }
}  // namespace

Task<Result<std::pair<Term, Pid>, Term>> Fake::start_async(Process& self, Atom mod, Atom fun, Term args,
                                                            StartOptions opts) {
  std::lock_guard lock(mu_);
  if (unavailable_) co_return unexpected(unavailable());
  Term name = opts.name.value_or(Term::binary(uuid4()));
  if (auto it = tasks_.find(name); it != tasks_.end() && it->second.state == Status::Kind::Running)
    co_return unexpected(Term::tuple({Term(Atom("running")), Term(it->second.pid)}));
  Started s{name, mod, fun, std::move(args), std::move(opts)};
  s.opts.name = name;
  log_.push_back(s);
  // A pid of this node no process has (the double runs nothing).
  const Pid pid{self.pid().node, static_cast<std::uint32_t>(0x7fff - (next_pid_ & 0x3fff)),
                static_cast<std::uint32_t>(next_pid_ >> 14), self.pid().creation};
  ++next_pid_;
  tasks_[name] = Entry{std::move(s), Status::Kind::Running, Term(), pid, std::nullopt};
  co_return std::pair<Term, Pid>{name, pid};
}

Task<Status> Fake::get_status(Process&, Term name) {
  std::lock_guard lock(mu_);
  if (unavailable_) co_return Status{Status::Kind::Unavailable, name};
  auto it = tasks_.find(name);
  co_return Status{it == tasks_.end() ? Status::Kind::NotFound : it->second.state, name};
}

Task<Result<Term, Term>> Fake::result(Process&, Term name) {
  std::lock_guard lock(mu_);
  if (unavailable_) co_return unexpected(unavailable());
  auto it = tasks_.find(name);
  if (it == tasks_.end()) co_return unexpected(not_found(name));
  switch (it->second.state) {
    case Status::Kind::Done: co_return it->second.result;
    case Status::Kind::Failed:
      co_return unexpected(Term::tuple({Term(Atom("distributed_task_failed")), name, it->second.result}));
    default: co_return unexpected(Term::tuple({Term(Atom("not_finished")), name}));
  }
}

Task<Result<std::vector<Info>, Term>> Fake::list(Process&) {
  std::lock_guard lock(mu_);
  if (unavailable_) co_return unexpected(unavailable());
  std::vector<Info> out;
  for (const auto& [name, e] : tasks_) out.push_back(Info{name, e.state, e.pid.node, e.pid, e.progress});
  co_return out;
}

Task<Result<Info, Term>> Fake::info(Process&, Term name) {
  std::lock_guard lock(mu_);
  if (unavailable_) co_return unexpected(unavailable());
  auto it = tasks_.find(name);
  if (it == tasks_.end()) co_return unexpected(not_found(name));
  const Entry& e = it->second;
  Info i{name, e.state, e.pid.node, e.pid, e.progress};
  i.result = e.state == Status::Kind::Running ? Term(Atom("undefined")) : e.result;
  co_return i;
}

Task<Result<Stopped, Term>> Fake::stop(Process&, Term name) {
  std::lock_guard lock(mu_);
  if (unavailable_) co_return unexpected(unavailable());
  auto it = tasks_.find(name);
  if (it == tasks_.end()) co_return unexpected(not_found(name));
  if (it->second.state != Status::Kind::Running) {
    tasks_.erase(it);
    co_return Stopped::Forgotten;
  }
  it->second.state = Status::Kind::Failed;
  it->second.result = Term(Atom("stopped"));
  co_return Stopped::Stopped;
}

void Fake::set_progress(const Term& name, int percent) {
  std::lock_guard lock(mu_);
  if (auto it = tasks_.find(name); it != tasks_.end()) it->second.progress = std::clamp(percent, 0, 100);
}

void Fake::finish(const Term& name, Term result) {
  std::lock_guard lock(mu_);
  if (auto it = tasks_.find(name); it != tasks_.end()) {
    it->second.state = Status::Kind::Done;
    it->second.result = std::move(result);
  }
}

void Fake::fail(const Term& name, Term reason) {
  std::lock_guard lock(mu_);
  if (auto it = tasks_.find(name); it != tasks_.end()) {
    it->second.state = Status::Kind::Failed;
    it->second.result = std::move(reason);
  }
}

void Fake::set_unavailable(bool on) {
  std::lock_guard lock(mu_);
  unavailable_ = on;
}

std::vector<Fake::Started> Fake::started() const {
  std::lock_guard lock(mu_);
  return log_;
}

}  // namespace hypha::tasks
