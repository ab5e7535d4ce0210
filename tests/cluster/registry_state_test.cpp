// The cluster registry's merge rules on their own (state.hpp): conflicts, gaps, snapshots,
// members that go, the log of changes, and replicas that converge whatever the delivery order.
#include "state.hpp"

#include <gtest/gtest.h>

#include <random>

namespace hypha::registry::detail {
namespace {

Pid pid_on(const char* node, std::uint32_t id) { return Pid{Atom(node), id, 0, 1}; }
Entry at(const Pid& p, std::uint64_t wall, std::uint32_t logical = 0) { return Entry{p, Term::list({}), {wall, logical}}; }

const Pid kA = pid_on("a@h", 1), kB = pid_on("b@h", 1), kC = pid_on("c@h", 1);  // registry processes
const Term kName(Atom("job"));

TEST(RegistryState, OwnEntriesAreReadAtOnceWithTheirPidsNames) {
  State s(kA);
  const Pid w = pid_on("a@h", 7);
  s.put_own(kName, at(w, 10));
  s.put_own(Term(Atom("other")), at(w, 11));
  ASSERT_NE(s.winner(kName), nullptr);
  EXPECT_EQ(s.winner(kName)->pid, w);
  EXPECT_EQ(*s.winner_origin(kName), kA);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.names_of(w), (std::vector<Term>{kName, Term(Atom("other"))}));
  EXPECT_EQ(s.own_names_of(w).size(), 2u);
  EXPECT_TRUE(s.own_names_of(pid_on("a@h", 8)).empty());
  EXPECT_TRUE(s.remove_own(kName));
  EXPECT_FALSE(s.remove_own(kName));
  EXPECT_EQ(s.winner(kName), nullptr);
  EXPECT_EQ(s.names_of(w), std::vector<Term>{Term(Atom("other"))});
  EXPECT_EQ(s.counter(), 3u);
}

TEST(RegistryState, TheOlderRegistrationWinsWhicheverArrivesFirst) {
  const Pid mine = pid_on("a@h", 7), theirs = pid_on("b@h", 9);
  for (bool older_is_ours : {true, false}) {
    State s(kA);
    std::vector<Conflict> out;
    s.put_own(kName, at(mine, older_is_ours ? 100 : 200));
    s.replace(kB, 1, {{kName, at(theirs, older_is_ours ? 200 : 100)}}, out);
    EXPECT_EQ(s.winner(kName)->pid, older_is_ours ? mine : theirs);
    if (older_is_ours) {
      EXPECT_TRUE(out.empty());
    } else {
      ASSERT_EQ(out.size(), 1u);
      EXPECT_EQ(out[0].name, kName);
      EXPECT_EQ(out[0].loser, mine);
      EXPECT_EQ(out[0].winner, theirs);
    }
  }
}

TEST(RegistryState, SameTimeIsSettledByNodeNameTheSameOnEveryReplica) {
  const Pid pa = pid_on("a@h", 7), pb = pid_on("b@h", 9);
  State on_a(kA), on_b(kB), on_c(kC);
  std::vector<Conflict> ca, cb, cc;
  on_a.put_own(kName, at(pa, 100, 3));
  on_b.put_own(kName, at(pb, 100, 3));
  on_a.replace(kB, 1, {{kName, at(pb, 100, 3)}}, ca);
  on_b.replace(kA, 1, {{kName, at(pa, 100, 3)}}, cb);
  on_c.replace(kB, 1, {{kName, at(pb, 100, 3)}}, cc);
  on_c.replace(kA, 1, {{kName, at(pa, 100, 3)}}, cc);
  for (const State* s : {&on_a, &on_b, &on_c}) EXPECT_EQ(s->winner(kName)->pid, pa);
  EXPECT_TRUE(ca.empty());
  ASSERT_EQ(cb.size(), 1u);  // b's entry lost: b removes it
  EXPECT_EQ(cb[0].loser, pb);
  EXPECT_TRUE(cc.empty());  // c holds neither
}

TEST(RegistryState, ADeltaAfterAGapIsRefusedWhole) {
  State s(kA);
  std::vector<Conflict> out;
  EXPECT_FALSE(s.apply(kB, 0, 1, {Change{kName, at(kB, 1)}}, out));  // no snapshot of b yet
  s.replace(kB, 2, {}, out);
  EXPECT_FALSE(s.apply(kB, 3, 4, {Change{kName, at(kB, 1)}}, out));  // 3 is not where we are
  EXPECT_EQ(s.winner(kName), nullptr);
  EXPECT_EQ(*s.version(kB), 2u);
  EXPECT_TRUE(s.apply(kB, 2, 4, {Change{kName, at(pid_on("b@h", 5), 1)}, Change{Term(1), at(kB, 2)}}, out));
  EXPECT_EQ(*s.version(kB), 4u);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(s.apply(kB, 4, 5, {Change{kName, std::nullopt}}, out));
  EXPECT_EQ(s.winner(kName), nullptr);
}

TEST(RegistryState, ASnapshotReplacesWhatTheOriginHadAndAnOriginThatGoesTakesItsEntries) {
  State s(kA);
  std::vector<Conflict> out;
  const Pid pb = pid_on("b@h", 5), pc = pid_on("c@h", 6);
  s.replace(kB, 3, {{kName, at(pb, 10)}, {Term(1), at(pb, 11)}}, out);
  s.replace(kC, 1, {{kName, at(pc, 20)}}, out);  // younger: c's waits behind b's
  EXPECT_EQ(s.winner(kName)->pid, pb);
  s.replace(kB, 4, {{Term(1), at(pb, 11)}}, out);  // b dropped the name meanwhile
  EXPECT_EQ(s.winner(kName)->pid, pc);
  s.forget(kC);
  EXPECT_EQ(s.winner(kName), nullptr);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.names_of(pb), std::vector<Term>{Term(1)});
  s.forget(kB);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.origins(), std::vector<Pid>{kA});
}

TEST(RegistryState, TheLogKeepsOnlyWhatSomeMemberHasNotBeenSent) {
  State s(kA);
  for (int i = 0; i < 1000; ++i) {
    s.put_own(kName, at(pid_on("a@h", 7), i));
    s.remove_own(kName);
  }
  EXPECT_EQ(s.log_size(), 2000u);
  EXPECT_EQ(s.changes_since(1998)->size(), 2u);
  s.truncate_log(1999);
  EXPECT_EQ(s.log_size(), 1u);
  EXPECT_EQ(s.changes_since(1999)->size(), 1u);
  EXPECT_FALSE(s.changes_since(1000));  // cut: the member gets a snapshot instead
  s.truncate_log(s.counter());
  EXPECT_EQ(s.log_size(), 0u);
  EXPECT_EQ(s.changes_since(2000)->size(), 0u);
}

// Three replicas make random changes; each sends its changes to the others as deltas or
// snapshots, in random order with some lost (then asked again). Whatever the order, once all
// is delivered every replica has the same holder for every name, and each name has one.
TEST(RegistryState, ReplicasConvergeWhateverTheDeliveryOrder) {
  for (unsigned seed = 1; seed <= 30; ++seed) {
    std::mt19937 rng(seed);
    std::vector<Pid> origins{kA, kB, kC};
    std::vector<State> rs{State(kA), State(kB), State(kC)};
    struct Msg {
      std::size_t from, to;
      bool snapshot;
      std::uint64_t prev, counter;
      std::vector<Change> changes;
      std::vector<std::pair<Term, Entry>> entries;
    };
    std::vector<Msg> wire;
    std::vector<std::vector<std::uint64_t>> sent(3, std::vector<std::uint64_t>(3, 0));
    auto resolve = [&](std::size_t i, const std::vector<Conflict>& cs) {
      for (const Conflict& c : cs) rs[i].remove_own(c.name);
    };
    auto snapshot = [&](std::size_t from, std::size_t to) {
      wire.push_back({from, to, true, 0, rs[from].counter(), {}, rs[from].own_entries()});
      sent[from][to] = rs[from].counter();
    };
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j)
        if (i != j) snapshot(i, j);
    std::uint64_t clock = 0;
    auto flush = [&](std::size_t i) {
      for (std::size_t j = 0; j < 3; ++j)
        if (i != j && sent[i][j] < rs[i].counter()) {
          wire.push_back({i, j, false, sent[i][j], rs[i].counter(), *rs[i].changes_since(sent[i][j]), {}});
          sent[i][j] = rs[i].counter();
        }
    };
    for (int step = 0; step < 400; ++step) {
      const std::size_t i = rng() % 3;
      const Term name(static_cast<std::int64_t>(rng() % 5));
      if (rng() % 3 && !rs[i].winner(name)) rs[i].put_own(name, at(pid_on(i == 0 ? "a@h" : i == 1 ? "b@h" : "c@h", 100 + step), ++clock, rng() % 2));
      else rs[i].remove_own(name);
      if (rng() % 4 == 0) flush(i);
      if (!wire.empty() && rng() % 2) {
        // Deliver one message from the front of some sender->receiver queue (in order per pair).
        const std::size_t k = rng() % wire.size();
        std::size_t pick = k;
        for (std::size_t x = 0; x < k; ++x)
          if (wire[x].from == wire[k].from && wire[x].to == wire[k].to) { pick = x; break; }
        Msg m = wire[pick];
        wire.erase(wire.begin() + static_cast<std::ptrdiff_t>(pick));
        std::vector<Conflict> cs;
        if (rng() % 10 == 0 && !m.snapshot) {
          snapshot(m.from, m.to);  // lost: the receiver's resync gets a snapshot
          continue;
        }
        if (m.snapshot) rs[m.to].replace(origins[m.from], m.counter, m.entries, cs);
        else if (!rs[m.to].apply(origins[m.from], m.prev, m.counter, m.changes, cs)) snapshot(m.from, m.to);
        resolve(m.to, cs);
      }
    }
    // Drain: deliver everything, flushing what conflicts removed.
    for (int round = 0; round < 50; ++round) {
      for (std::size_t i = 0; i < 3; ++i) flush(i);
      if (wire.empty()) break;
      while (!wire.empty()) {
        Msg m = wire.front();
        wire.erase(wire.begin());
        std::vector<Conflict> cs;
        if (m.snapshot) rs[m.to].replace(origins[m.from], m.counter, m.entries, cs);
        else if (!rs[m.to].apply(origins[m.from], m.prev, m.counter, m.changes, cs)) snapshot(m.from, m.to);
        resolve(m.to, cs);
      }
    }
    ASSERT_TRUE(wire.empty()) << "seed " << seed;
    for (std::int64_t n = 0; n < 5; ++n) {
      const Term name(n);
      const Entry* w0 = rs[0].winner(name);
      for (std::size_t i = 1; i < 3; ++i) {
        const Entry* wi = rs[i].winner(name);
        ASSERT_EQ(w0 == nullptr, wi == nullptr) << "seed " << seed << " name " << n;
        if (w0) EXPECT_EQ(w0->pid, wi->pid) << "seed " << seed << " name " << n;
      }
      // One holder: the losers removed theirs.
      int holders = 0;
      for (std::size_t i = 0; i < 3; ++i) holders += rs[i].own(name) != nullptr;
      EXPECT_LE(holders, 1) << "seed " << seed << " name " << n;
      EXPECT_EQ(holders == 1, w0 != nullptr) << "seed " << seed << " name " << n;
    }
  }
}

}  // namespace
}  // namespace hypha::registry::detail
