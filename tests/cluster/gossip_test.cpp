// Gossip packets: the hypha format's authentication and replay checks, libcluster's packet byte
// for byte, and untrusted input dropped without making atoms.
#include "hypha/cluster/gossip.hpp"

#include <gtest/gtest.h>

#include "hypha/term/etf.hpp"
#include "hypha/term/term.hpp"

namespace hypha::gossip {
namespace {

constexpr std::int64_t kNow = 1'780'000'000'000;  // some Unix time in ms

Codec hypha_codec(std::string secret = "s3cret", std::string cluster = "prod") {
  return Codec({.format = Format::Hypha, .secret = std::move(secret), .cluster = std::move(cluster)});
}

TEST(Gossip, AHeartbeatRoundTripsAndIsAcceptedOnce) {
  Codec tx = hypha_codec(), rx = hypha_codec();
  const auto p = tx.encode("a@127.0.0.1", kNow);
  const auto d = rx.decode(p, kNow + 5);
  EXPECT_EQ(d.drop, Drop::None);
  EXPECT_EQ(d.node, "a@127.0.0.1");
  EXPECT_EQ(rx.decode(p, kNow + 6).drop, Drop::Replayed);  // the same packet again
  EXPECT_EQ(rx.decode(tx.encode("a@127.0.0.1", kNow - 1), kNow + 7).drop, Drop::Replayed);  // older
  EXPECT_EQ(rx.decode(tx.encode("a@127.0.0.1", kNow + 1), kNow + 8).drop, Drop::None);      // newer
  EXPECT_EQ(rx.decode(tx.encode("b@127.0.0.1", kNow - 29'000), kNow).drop, Drop::None);    // in the window
  EXPECT_EQ(rx.decode(tx.encode("c@127.0.0.1", kNow - 31'000), kNow).drop, Drop::Replayed);  // outside it
  EXPECT_EQ(rx.decode(tx.encode("c@127.0.0.1", kNow + 31'000), kNow).drop, Drop::Replayed);
  EXPECT_NE(tx.encode("a@127.0.0.1", kNow), tx.encode("a@127.0.0.1", kNow));  // a fresh nonce each time
}

TEST(Gossip, TamperedForeignAndMalformedPacketsAreDropped) {
  Codec tx = hypha_codec(), rx = hypha_codec();
  auto p = tx.encode("a@127.0.0.1", kNow);
  for (std::size_t i = 0; i < p.size(); ++i) {  // any flipped bit, header included
    auto q = p;
    q[i] ^= 0x20;
    const Drop d = rx.decode(q, kNow).drop;
    EXPECT_TRUE(d == Drop::BadAuth || d == Drop::Malformed) << i;
  }
  EXPECT_EQ(rx.decode(hypha_codec("other").encode("a@127.0.0.1", kNow), kNow).drop, Drop::BadAuth);
  EXPECT_EQ(rx.decode(hypha_codec("s3cret", "staging").encode("a@127.0.0.1", kNow), kNow).drop, Drop::BadAuth);
  EXPECT_EQ(rx.decode(std::vector<std::uint8_t>(kMaxPacket + 1, 'H'), kNow).drop, Drop::Oversized);
  EXPECT_EQ(rx.decode(std::vector<std::uint8_t>{'H', 'Y', 'G', 1}, kNow).drop, Drop::Malformed);
  EXPECT_EQ(rx.decode(std::vector<std::uint8_t>{}, kNow).drop, Drop::Malformed);
  EXPECT_EQ(rx.decode(Codec({.format = Format::Libcluster}).encode("a@h", kNow), kNow).drop, Drop::Malformed);
  EXPECT_EQ(rx.decode(p, kNow).drop, Drop::None);  // and the real one still passes
  EXPECT_THROW(Codec({.format = Format::Hypha}), std::invalid_argument);  // no secret, no hypha format
}

TEST(Gossip, TheLibclusterPacketIsHeartbeatAndTermToBinaryOfTheNodeMap) {
  Codec plain({.format = Format::Libcluster});
  const auto p = plain.encode("elixir@127.0.0.1", kNow);
  std::vector<std::uint8_t> expected{'h', 'e', 'a', 'r', 't', 'b', 'e', 'a', 't', ':', ':'};
  const auto etf = etf::encode(Term::map({{Term(Atom("node")), Term(Atom("elixir@127.0.0.1"))}}));
  expected.insert(expected.end(), etf.begin(), etf.end());
  EXPECT_EQ(p, expected);
  Codec rx({.format = Format::Libcluster});
  auto d = rx.decode(p, kNow);
  EXPECT_EQ(d.drop, Drop::None);
  EXPECT_EQ(d.node, "elixir@127.0.0.1");
  EXPECT_EQ(rx.decode(p, kNow).drop, Drop::None);  // libcluster has no replay protection

  // With a secret: IV ++ AES-256-CBC(SHA-256(secret)), PKCS#7.
  Codec tx({.format = Format::Libcluster, .secret = "lc"}), rx2({.format = Format::Libcluster, .secret = "lc"});
  const auto e = tx.encode("elixir@127.0.0.1", kNow);
  EXPECT_EQ((e.size() - 16) % 16, 0u);
  EXPECT_EQ(rx2.decode(e, kNow).node, "elixir@127.0.0.1");
  EXPECT_EQ(Codec({.format = Format::Libcluster, .secret = "other"}).decode(e, kNow).drop, Drop::BadAuth);
  EXPECT_EQ(rx2.decode(p, kNow).drop, Drop::Malformed);  // a plain packet where a secret is used
}

TEST(Gossip, LibclusterInputIsUntrustedAndMakesNoAtoms) {
  Codec rx({.format = Format::Libcluster});
  auto with = [](std::vector<std::uint8_t> etf) {
    std::vector<std::uint8_t> p{'h', 'e', 'a', 'r', 't', 'b', 'e', 'a', 't', ':', ':'};
    p.insert(p.end(), etf.begin(), etf.end());
    return p;
  };
  const std::string fresh = "never_seen_before_7f3a@127.0.0.1";
  ASSERT_FALSE(Atom::existing(fresh));
  std::vector<std::uint8_t> ok{131, 116, 0, 0, 0, 1, 100, 0, 4, 'n', 'o', 'd', 'e', 100, 0, std::uint8_t(fresh.size())};
  ok.insert(ok.end(), fresh.begin(), fresh.end());
  EXPECT_EQ(rx.decode(with(ok), kNow).node, fresh);  // ATOM_EXT, as older OTPs write it
  EXPECT_FALSE(Atom::existing(fresh));              // parsing made no atom
  auto bad_name = ok;
  bad_name.back() = ' ';
  EXPECT_EQ(rx.decode(with(bad_name), kNow).drop, Drop::Malformed);
  auto extra = ok;
  extra.push_back(0);
  EXPECT_EQ(rx.decode(with(extra), kNow).drop, Drop::Malformed);
  EXPECT_EQ(rx.decode(with(etf::encode(Term::map({{Term(Atom("node")), Term(7)}}))), kNow).drop, Drop::Malformed);
  EXPECT_EQ(rx.decode(with(etf::encode(Term::map({{Term(Atom("nodes")), Term(Atom("a@b"))}}))), kNow).drop,
            Drop::Malformed);
  EXPECT_EQ(rx.decode(with({131, 116, 0, 0, 0, 2}), kNow).drop, Drop::Malformed);
  EXPECT_EQ(rx.decode(with({}), kNow).drop, Drop::Malformed);
}

}  // namespace
}  // namespace hypha::gossip
