// The download manager between real nodes on loopback, against a local HTTP file server that can
// be slowed down, ignore ranges, lie about its checksum or answer 404: a download finishes with
// its length and hash and any node reads the file; one job per visitor; the death of the node
// running a job makes a survivor resume it from its checkpoint with a Range request.
#include "downloads.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <httplib.h>
#include <openssl/evp.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "hypha/cluster/cluster.hpp"
#include "test_util.hpp"

namespace hypha {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string sha256_hex(const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, EVP_sha256(), nullptr);
  static const char* d = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < n; ++i) hex += {d[out[i] >> 4], d[out[i] & 15]};
  return hex;
}

// GET /file: `data`, 32 KiB every `pace`, with ranges (unless ignore_ranges), an ETag and a
// checksum header (the right one, or a wrong one when lie). Every Range header asked is kept.
class FileServer {
 public:
  std::string data;
  std::atomic<bool> ignore_ranges{false}, lie{false};
  std::atomic<int> pace_ms{5};
  std::string redirect_to;  // where GET /redirect sends (set before the first request)

  explicit FileServer(std::size_t size) {
    std::mt19937 gen(42);
    data.resize(size);
    for (auto& ch : data) ch = static_cast<char>(gen());
    // cpp-httplib answers a Range itself (206, Content-Range) for a provider of known length.
    server_.Get("/file", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu_);
        ranges_.push_back(req.get_header_value("Range"));
      }
      res.set_header("ETag", "\"v1\"");
      res.set_header("X-Checksum-Sha256", lie ? std::string(64, '0') : sha256_hex(data));
      auto chunk = [this](std::size_t offset, httplib::DataSink& sink) {
        std::this_thread::sleep_for(std::chrono::milliseconds(pace_ms.load()));
        if (offset >= data.size()) {
          sink.done();
          return true;
        }
        return sink.write(data.data() + offset, std::min<std::size_t>(32 * 1024, data.size() - offset));
      };
      // A source that ignores ranges: the parsed Range forgotten, so the library sends it all.
      if (ignore_ranges) const_cast<httplib::Request&>(req).ranges.clear();
      res.set_content_provider(data.size(), "application/octet-stream",
                               [chunk](std::size_t offset, std::size_t, httplib::DataSink& sink) { return chunk(offset, sink); });
    });
    server_.Get("/redirect", [this](const httplib::Request&, httplib::Response& res) { res.set_redirect(redirect_to); });
    port_ = static_cast<std::uint16_t>(server_.bind_to_any_port("127.0.0.1"));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~FileServer() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path = "/file", const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(port_) + path;
  }
  std::vector<std::string> ranges() {
    std::lock_guard lock(mu_);
    return ranges_;
  }

 private:
  httplib::Server server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> ranges_;
};

class Downloads : public ::testing::Test {
 protected:
  std::uint16_t epmd = testing::free_port();
  fs::path root = fs::temp_directory_path() / ("hypha_dl_" + std::to_string(::getpid()) + "_" +
                                               std::to_string(std::random_device{}()));
  std::map<std::string, std::unique_ptr<Node>> nodes;
  std::map<std::string, downloads::Options> opts;

  ~Downloads() override {
    nodes.clear();
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  // A node with the registry, the distributed supervisor and the downloads cache; its dir is
  // `dir` under root (two nodes given the same one share a volume); downloads may reach `allow`
  // (the file server is on loopback) besides public addresses.
  Node& start(const std::string& alive, const std::string& dir, const std::vector<std::string>& allow = {"127.0.0.0/8"}) {
    downloads::Options o;
    o.dir = root / dir;
    o.addresses = *downloads::AddressPolicy::parse(allow);
    o.checkpoint = 50ms;
    auto exports = std::make_shared<Exports>();
    downloads::add_exports(*exports, o);
    NodeOptions no;
    no.name = alive + "@127.0.0.1";
    no.cookie = "cookie";
    no.epmd_port = epmd;
    no.threads = 2;
    cluster::Options co;
    co.registry = registry::Options{};
    co.supervisor = dsup::Options{};
    co.caches.push_back({.name = Atom("downloads"), .mode = cache::Mode::Replicated});
    auto n = start_cluster_node(no, {.exports = exports}, co);
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error());
    opts[alive] = o;
    return *(nodes[alive] = std::move(*n));
  }
  void mesh() {
    std::vector<std::string> names;
    for (auto& [n, _] : nodes) names.push_back(n);
    for (std::size_t i = 0; i < names.size(); ++i)
      for (std::size_t j = i + 1; j < names.size(); ++j)
        ASSERT_TRUE(nodes[names[i]]->connect(nodes[names[j]]->name(), 5s).ok());
    // Every supervisor and cache member sees the others.
    ASSERT_TRUE(testing::eventually([&] {
      for (auto& [n, node] : nodes) {
        auto st = cache::Cache(Atom("downloads")).stats(node->runtime());
        if (!st || st->members != nodes.size() || !st->ready) return false;
      }
      return true;
    }, 10s));
  }
  std::optional<downloads::Status> status(const std::string& on, const std::string& visitor) {
    auto s = downloads::status(nodes.at(on)->runtime(), opts.at(on), visitor);
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : std::nullopt;
  }
  bool until_state(const std::string& on, const std::string& visitor, downloads::State want,
                   std::chrono::milliseconds limit = 20s) {
    return testing::eventually([&] {
      auto s = status(on, visitor);
      return s && s->state == want;
    }, limit);
  }
  // Two nodes `a` and `b` on one volume; the visitor's download of `files` starts, and once the
  // other node sees a checkpoint of 256 KiB or more, the node running it is gone without
  // leaving cleanly. The survivor's name, and the checkpoint it saw.
  std::pair<std::string, std::uint64_t> start_then_kill_its_node(FileServer& files, const std::string& a,
                                                                 const std::string& b, const std::string& visitor) {
    start(a, "shared"), start(b, "shared");
    mesh();
    auto pid = downloads::start(nodes[a]->runtime(), opts[a], visitor, files.url());
    EXPECT_TRUE(pid.ok()) << (pid.ok() ? "" : pid.error().to_string());
    if (!pid.ok()) return {};
    const std::string ran_on = pid->node.text() == a + "@127.0.0.1" ? a : b;
    const std::string survivor = ran_on == a ? b : a;
    EXPECT_TRUE(testing::eventually([&] {
      auto s = status(survivor, visitor);
      return s && s->bytes >= 256 * 1024;
    }, 10s));
    const std::uint64_t seen = status(survivor, visitor)->bytes;
    nodes.erase(ran_on);  // the survivor sees it down
    return {survivor, seen};
  }
  std::string read_all(const std::string& on, const downloads::Status& s) {
    std::string out;
    for (;;) {
      auto chunk = downloads::read(nodes.at(on)->runtime(), opts.at(on), s, out.size(), 1 << 20);
      EXPECT_TRUE(chunk.ok()) << (chunk.ok() ? "" : chunk.error().to_string());
      if (!chunk.ok() || chunk->empty()) return out;
      out += *chunk;
    }
  }
};

TEST_F(Downloads, ADownloadFinishesWithItsLengthAndHashAndEveryNodeReadsTheFile) {
  FileServer files(1 << 20);
  start("da", "a"), start("db", "b");  // each its own disk
  mesh();
  const std::string visitor = downloads::visitor_id("session-1");
  auto pid = downloads::start(nodes["da"]->runtime(), opts["da"], visitor, files.url());
  ASSERT_TRUE(pid.ok()) << pid.error().to_string();
  ASSERT_TRUE(until_state("db", visitor, downloads::State::Ready));
  const auto s = *status("db", visitor);
  EXPECT_EQ(s.bytes, files.data.size());
  EXPECT_EQ(s.total, files.data.size());
  EXPECT_EQ(s.sha256, sha256_hex(files.data));
  EXPECT_EQ(s.progress(), 100);
  EXPECT_EQ(s.node, pid->node.text());
  // The node that ran it reads its own dir, the other asks it.
  EXPECT_EQ(read_all("da", s), files.data);
  EXPECT_EQ(read_all("db", s), files.data);
  EXPECT_TRUE(fs::exists(root / (s.node == "da@127.0.0.1" ? "a" : "b") / s.job));
  EXPECT_FALSE(fs::exists(root / "a" / (s.job + ".part")));
  EXPECT_FALSE(fs::exists(root / "b" / (s.job + ".part")));
}

TEST_F(Downloads, OneJobPerVisitorInTheWholeCluster) {
  FileServer files(1 << 20);
  files.pace_ms = 20;
  start("dc", "c"), start("dd", "d");
  mesh();
  const std::string visitor = downloads::visitor_id("session-2");
  auto first = downloads::start(nodes["dc"]->runtime(), opts["dc"], visitor, files.url());
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  ASSERT_TRUE(testing::eventually([&] {
    auto s = status("dd", visitor);
    return s && s->state == downloads::State::Processing;
  }, 10s));
  const std::string job = status("dd", visitor)->job;
  // From the other node: refused, and the running job's state untouched.
  auto second = downloads::start(nodes["dd"]->runtime(), opts["dd"], visitor, files.url("/other"));
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.error().is_tuple() && second.error()[0].is_atom(Atom("already_started"))) << second.error().to_string();
  EXPECT_EQ(status("dc", visitor)->job, job);
  EXPECT_EQ(status("dc", visitor)->url, files.url());
  files.pace_ms = 0;
  ASSERT_TRUE(until_state("dc", visitor, downloads::State::Ready));
  // Ended: the visitor may start another.
  auto third = downloads::start(nodes["dd"]->runtime(), opts["dd"], visitor, files.url());
  ASSERT_TRUE(third.ok()) << third.error().to_string();
  ASSERT_TRUE(until_state("dc", visitor, downloads::State::Ready));
  EXPECT_NE(status("dc", visitor)->job, job);
}

TEST_F(Downloads, ASurvivorResumesTheJobOfANodeThatDiedFromItsCheckpointWithARange) {
  FileServer files(2 << 20);
  files.pace_ms = 15;
  const std::string visitor = downloads::visitor_id("session-3");
  const auto [survivor, checkpoint_seen] = start_then_kill_its_node(files, "de", "df", visitor);
  ASSERT_FALSE(survivor.empty());
  ASSERT_TRUE(until_state(survivor, visitor, downloads::State::Ready, 30s)) << status(survivor, visitor)->error;
  const auto s = *status(survivor, visitor);
  EXPECT_EQ(s.node, survivor + "@127.0.0.1");
  EXPECT_EQ(s.sha256, sha256_hex(files.data));
  EXPECT_EQ(read_all(survivor, s), files.data);
  // The second request asked for the rest only: from at least the checkpoint the test saw.
  const auto ranges = files.ranges();
  ASSERT_GE(ranges.size(), 2u);
  EXPECT_EQ(ranges.front(), "");
  const std::string& resumed = ranges.back();
  ASSERT_EQ(resumed.rfind("bytes=", 0), 0u) << resumed;
  EXPECT_GE(std::stoull(resumed.substr(6)), checkpoint_seen);
}

TEST_F(Downloads, ASourceThatIgnoresTheRangeIsFetchedAgainFromTheStart) {
  FileServer files(2 << 20);
  files.pace_ms = 15;
  files.ignore_ranges = true;
  const std::string visitor = downloads::visitor_id("session-4");
  const std::string survivor = start_then_kill_its_node(files, "dg", "dh", visitor).first;
  ASSERT_FALSE(survivor.empty());
  files.pace_ms = 1;
  ASSERT_TRUE(until_state(survivor, visitor, downloads::State::Ready, 30s));
  const auto s = *status(survivor, visitor);
  EXPECT_EQ(s.bytes, files.data.size());
  EXPECT_EQ(s.sha256, sha256_hex(files.data));
  EXPECT_EQ(read_all(survivor, s), files.data);
}

TEST_F(Downloads, AWrongChecksumA404AndABadUrlAreErrorsThatNameTheCause) {
  FileServer files(64 * 1024);
  files.lie = true;
  start("di", "i");
  mesh();
  auto& rt = nodes["di"]->runtime();
  const std::string v1 = downloads::visitor_id("session-5");
  ASSERT_TRUE(downloads::start(rt, opts["di"], v1, files.url()).ok());
  ASSERT_TRUE(until_state("di", v1, downloads::State::Error));
  EXPECT_NE(status("di", v1)->error.find("checksum mismatch"), std::string::npos) << status("di", v1)->error;
  const std::string v2 = downloads::visitor_id("session-6");
  ASSERT_TRUE(downloads::start(rt, opts["di"], v2, files.url("/missing")).ok());
  ASSERT_TRUE(until_state("di", v2, downloads::State::Error));
  EXPECT_EQ(status("di", v2)->error, "HTTP status 404");
  // Nothing is left behind in the dir.
  EXPECT_TRUE(fs::is_empty(root / "i"));
  for (const char* bad : {"ftp://host/x", "file:///etc/passwd", "http:///x", "not a url", "http://h/a b"}) {
    auto r = downloads::start(rt, opts["di"], downloads::visitor_id(bad), bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.error()[0].is_atom(Atom("bad_url"))) << bad;
  }
}

TEST_F(Downloads, AddressesThePolicyRefusesAreNotReachedByLiteralNameOrRedirect) {
  FileServer files(64 * 1024);
  // (A job runs on any node, under that node's policy: one node per policy here.)
  start("dp", "p", {});  // public addresses only
  mesh();
  auto& rt = nodes["dp"]->runtime();
  // Address literals are refused at once, IPv4 in IPv6 too.
  for (const std::string host : {"127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "user@127.0.0.1", "10.0.0.1", "169.254.169.254"}) {
    auto r = downloads::start(rt, opts["dp"], downloads::visitor_id("lit" + host), files.url("/file", host));
    ASSERT_FALSE(r.ok()) << host;
    EXPECT_TRUE(r.error()[0].is_atom(Atom("bad_url"))) << host;
    EXPECT_NE(r.error()[1].to_string().find("download_manager.allow"), std::string::npos) << r.error().to_string();
  }
  // A name is checked where it resolves to, as the job connects: the source sees nothing.
  const std::string v1 = downloads::visitor_id("by-name");
  ASSERT_TRUE(downloads::start(rt, opts["dp"], v1, files.url("/file", "localhost")).ok());
  ASSERT_TRUE(until_state("dp", v1, downloads::State::Error)) << status("dp", v1)->to_term().to_string();
  EXPECT_EQ(status("dp", v1)->error.rfind("address_refused: ", 0), 0u) << status("dp", v1)->error;
  EXPECT_TRUE(files.ranges().empty());
  nodes.clear();
  start("dq", "q", {"127.0.0.1/32"});
  mesh();
  // An allowed source redirecting to a refused address: the redirect is not followed.
  files.redirect_to = files.url("/file", "127.0.0.2");
  const std::string v2 = downloads::visitor_id("redirected");
  ASSERT_TRUE(downloads::start(nodes["dq"]->runtime(), opts["dq"], v2, files.url("/redirect")).ok());
  ASSERT_TRUE(until_state("dq", v2, downloads::State::Error));
  EXPECT_EQ(status("dq", v2)->error,
            "address_refused: 127.0.0.2 is not an address downloads may reach (download_manager.allow)");
  EXPECT_TRUE(files.ranges().empty());  // /redirect was asked, /file never
  // Allowed, the same redirect target on the allowed address is fetched.
  files.redirect_to = files.url("/file");
  const std::string v3 = downloads::visitor_id("redirected-ok");
  ASSERT_TRUE(downloads::start(nodes["dq"]->runtime(), opts["dq"], v3, files.url("/redirect")).ok());
  ASSERT_TRUE(until_state("dq", v3, downloads::State::Ready));
  EXPECT_EQ(status("dq", v3)->sha256, sha256_hex(files.data));
}

TEST(DownloadsAddressPolicy, PublicAddressesAndTheAllowedNetworksOnly) {
  const downloads::AddressPolicy pub;
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8",
                        "64:ff9b::808:808", "2002:808:808::1"})
    EXPECT_EQ(pub.permits_literal(a), true) << a;
  for (const char* a : {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.7",
                        "198.18.0.1", "::", "::1", "fe80::1", "fd12::1", "fc00::1", "ff02::1", "2001:db8::1",
                        "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::", "2001::1"})
    EXPECT_EQ(pub.permits_literal(a), false) << a;
  EXPECT_EQ(pub.permits_literal("localhost"), std::nullopt);
  EXPECT_EQ(pub.permits_literal("127.1"), std::nullopt);  // not an address literal: checked once resolved

  auto lan = downloads::AddressPolicy::parse({"10.0.0.0/8", "fd00::/8", "192.168.7.9"});
  ASSERT_TRUE(lan.ok()) << lan.error();
  for (const char* a : {"10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::a00:1", "fd12::1", "192.168.7.9", "8.8.8.8"})
    EXPECT_EQ(lan->permits_literal(a), true) << a;
  for (const char* a : {"192.168.7.10", "fc00::1", "127.0.0.1", "11.0.0.0" /* public */})
    EXPECT_EQ(lan->permits_literal(a), std::string(a) == "11.0.0.0") << a;

  auto v4all = downloads::AddressPolicy::parse({"0.0.0.0/0"});
  EXPECT_EQ(v4all->permits_literal("127.0.0.1"), true);
  EXPECT_EQ(v4all->permits_literal("::1"), false);
  auto all = downloads::AddressPolicy::parse({"::/0"});
  EXPECT_EQ(all->permits_literal("::1"), true);
  EXPECT_EQ(all->permits_literal("10.0.0.1"), true);

  // A sockaddr as libcurl gives it.
  sockaddr_in in{};
  in.sin_family = AF_INET;
  ::inet_pton(AF_INET, "192.168.1.1", &in.sin_addr);
  EXPECT_FALSE(pub.permits(&in));
  ::inet_pton(AF_INET, "9.9.9.9", &in.sin_addr);
  EXPECT_TRUE(pub.permits(&in));
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  ::inet_pton(AF_INET6, "::1", &in6.sin6_addr);
  EXPECT_FALSE(pub.permits(&in6));

  for (const auto& [bad, says] : std::vector<std::pair<std::string, std::string>>{
           {"10.0.0.1/8", "expected a network without host bits (10.0.0.0/8), got \"10.0.0.1/8\""},
           {"fd00::1/8", "(fd00::/8)"}, {"10.0.0.0/33", "0..32"}, {"::1/129", "0..128"},
           {"files.lan", "not a host name), got \"files.lan\""}, {"10.0.0.0/", "0..32"}, {"10.0.0.0/-1", "0..32"}}) {
    auto p = downloads::AddressPolicy::parse({"127.0.0.0/8", bad});
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.error().find(says), std::string::npos) << p.error();
  }
}

TEST(DownloadsSweep, FilesOfExpiredDownloadsGoOthersStay) {
  const fs::path dir = fs::temp_directory_path() / ("hypha_sweep_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  downloads::Options o;
  o.dir = dir;
  o.ttl = std::chrono::hours(1);
  const auto now = fs::file_time_type::clock::now();
  auto make = [&](const std::string& name, std::chrono::minutes age) {
    std::ofstream(dir / name) << "x";
    fs::last_write_time(dir / name, now - age);
  };
  const std::string a(32, 'a'), b(32, 'b'), c(32, 'c');
  make(a, std::chrono::minutes(61));            // finished, expired
  make(b + ".part", std::chrono::minutes(90));  // an orphan part file
  make(c, std::chrono::minutes(10));            // finished, still asked for
  make(c + ".part", std::chrono::minutes(1));   // being written
  make("notes.txt", std::chrono::minutes(999)); // not ours
  EXPECT_EQ(downloads::sweep(o, now), 2u);
  EXPECT_FALSE(fs::exists(dir / a));
  EXPECT_FALSE(fs::exists(dir / (b + ".part")));
  EXPECT_TRUE(fs::exists(dir / c));
  EXPECT_TRUE(fs::exists(dir / (c + ".part")));
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));
  EXPECT_EQ(downloads::sweep(o, now), 0u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hypha
