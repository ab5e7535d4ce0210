// The download manager (the seeds' example, for real): a visitor starts a download; it runs
// somewhere in the cluster, reports its progress, and survives the death of the node running it.
//
//   downloads::Options o{.dir = "/var/lib/hypha/downloads", .cache = Atom("downloads")};
//   downloads::add_exports(exports, o);                     // on every node, before start_node
//   downloads::start(rt, o, visitor, "http://files/x.iso");  // {ok, Pid} | {already_started, Pid}
//   downloads::status(rt, o, visitor);                      // from any node
//
// - One job per visitor in the whole cluster: the job is the distributed supervisor's child
//   {download, Visitor} (cluster/supervisor.hpp), placed by its hash, restarted on a survivor
//   when its node dies (restart transient: a job that ended, ready or in error, stays ended).
// - Its state (Status below) lives in a replicated cache under the same key with a TTL, so any
//   node answers for it; every change is also published as a cluster event
//   #{kind => download, visitor => V, state => ..., progress => ..., ...} (cluster/events.hpp),
//   which is how pages see it move.
// - The job fetches with libcurl on a thread of its own (the process only waits for its
//   messages), into `dir/<job>.part` (the job: a random id per download). A checkpoint is the bytes flushed to disk
//   (fdatasync) and then written to the cache, at most every `checkpoint` and at the end; a job
//   started again (on another node, or after a lost connection) truncates the part file to its
//   checkpoint, hashes what it holds, and asks for the rest with `Range: bytes=N-` (and
//   `If-Range` with the source's ETag or Last-Modified): a 206 appends, a 200 (the source
//   changed or ignores ranges) starts over. A node whose `dir` does not hold the part file (each
//   node its own disk) starts over from 0, logged as `download_checkpoint_missing`.
// - At the end the length is checked against Content-Length / Content-Range, and the SHA-256
//   against the source's when it gives one (`Repr-Digest`/`Digest: sha-256=<base64>` or
//   `X-Checksum-Sha256: <hex>`); a mismatch is the state error. The part file is then renamed
//   `dir/<job>`.
// - The finished file is read by any node: from its own `dir` when it holds it (a shared
//   volume), else in chunks from the node that has it (hypha_downloads:read/3 over rpc).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hypha/cluster/supervisor.hpp"
#include "hypha/node/node.hpp"
#include "hypha/otp/exports.hpp"
#include "hypha/term/result.hpp"

namespace hypha::downloads {

// Where a download may connect (against server-side request forgery: a visitor's URL must not
// reach the cluster's own services, the cloud's metadata address or the office network). Every
// address is checked as libcurl connects to it, after name resolution and at each redirect, so
// a host name that resolves to (or a redirect to) a refused address is refused too:
// - permitted: every public unicast address, and whatever is in `allow`;
// - refused unless allowed: loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
//   link-local (169.254/16 with the metadata address, fe80::/10), CGNAT (100.64/10), this
//   network (0/8, ::), documentation, benchmarking, multicast and reserved ranges, Teredo; an IPv6
//   address embedding an IPv4 one (::ffff:0:0/96, 64:ff9b::/96, 2002::/16) is judged by the
//   IPv4 address it embeds.
class AddressPolicy {
 public:
  AddressPolicy() = default;  // public addresses only
  // Entries "10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1" (an address alone: that one address);
  // "0.0.0.0/0" and "::/0" allow everything. Errors: "expected ..., got \"entry\"".
  static Result<AddressPolicy, std::string> parse(const std::vector<std::string>& allow);
  // One entry: "" when it is one, else "expected ..." (a config reader's check).
  static std::string check(const std::string& entry);
  // A sockaddr_in / sockaddr_in6 (anything else is refused).
  bool permits(const void* sockaddr) const;
  // An address literal ("127.0.0.1", "::1"); nullopt when the text is not an address.
  std::optional<bool> permits_literal(const std::string& text) const;

  struct Network {
    unsigned char addr[16];  // IPv6; IPv4 as ::ffff:a.b.c.d
    int prefix;              // bits
  };

 private:
  bool permits16(const unsigned char* a) const;
  std::vector<Network> allow_;
};

struct Options {
  std::filesystem::path dir;                 // part files and finished files
  Atom cache = Atom("downloads");            // a replicated cache running on every node
  std::optional<Atom> events;                // the events pubsub (progress for pages); none: no events
  Atom supervisor = dsup::default_name();    // the distributed supervisor the jobs run under
  std::chrono::milliseconds ttl{24 * 3600 * 1000};  // a visitor's state is kept this long after its last change
  std::chrono::milliseconds checkpoint{500};        // at most this long between checkpoints
  std::uint64_t max_bytes = 4ULL << 30;      // a bigger download is refused (error too_large)
  int attempts = 5;                          // a transfer that breaks is resumed this many times in a row
  std::chrono::milliseconds stall{15000};    // no byte for this long: the transfer broke
  AddressPolicy addresses;                   // where a download may connect
  std::string proxy;                         // an HTTP(S) proxy for every download ("": none; the
                                             // environment's http_proxy is never used)
};

enum class State { Pending, Processing, Ready, Error };
std::string_view state_name(State s);

struct Status {
  State state = State::Pending;
  std::string url;
  std::string job;        // this download's id (a new one per POST): the part file's name
  std::uint64_t bytes = 0;                 // checkpointed (processing) or all (ready)
  std::optional<std::uint64_t> total;      // when the source said
  std::string node;       // where it runs (ran)
  std::string sha256;     // hex, once ready
  std::string error;      // once in error: why
  std::string validator;  // the source's ETag or Last-Modified, for If-Range
  std::int64_t updated_ms = 0;  // Unix ms of this state
  int progress() const;   // 0..100 (0 while the total is unknown, 100 once ready)

  Term to_term() const;   // #{state => processing, url => <<..>>, ...}: what the cache holds
  static std::optional<Status> from_term(const Term& t);
};

// A visitor's id from its session secret: 32 hex digits of its SHA-256 (the secret itself never
// leaves the HTTP layer: the id is what names the job, the cache entry and the events).
std::string visitor_id(std::string_view session);
// {download, <<Visitor>>}: the job's child id and the cache key.
Term job_key(const std::string& visitor);
// The finished (or part) file of a download in this node's dir.
std::filesystem::path file_path(const Options& o, const Status& s, bool part = false);

// hypha_downloads:run/3 (the job: Visitor, Url, Job, all binaries) and read/3 (Job, Offset,
// Length -> {ok, Binary} | eof | {error, enoent}: a finished file's bytes, 1 MiB at most).
void add_exports(Exports& exports, const Options& o);

// Starts the visitor's download: its state pending in the cache, then the job. Errors:
// {already_started, Pid} (the visitor has one running: nothing changed), {bad_url, Why}, or
// what the supervisor or the cache said.
Result<Pid, Term> start(Runtime& rt, const Options& o, const std::string& visitor, const std::string& url);
// The visitor's state (nullopt: none, or expired).
Result<std::optional<Status>, Term> status(Runtime& rt, const Options& o, const std::string& visitor);

// Reads up to `len` bytes at `offset` of a ready download's file: from this node's dir when it
// holds the whole file, else from the node that ran the job. Empty at the end. Errors: a term
// (nodedown, {error, enoent}, ...).
Result<std::string, Term> read(Runtime& rt, const Options& o, const Status& s, std::uint64_t offset, std::size_t len);

// Removes from `dir` the files of downloads whose state has expired: a finished file or a part
// file not written for `ttl` (the state expires `ttl` after its last change, and a job writes its
// part file at every checkpoint), so nothing can ask for it any more. Only names this library
// makes (32 hex digits, optionally .part) are touched. The number removed.
std::size_t sweep(const Options& o, std::filesystem::file_time_type now = std::filesystem::file_time_type::clock::now());
// A process on `node` that sweeps `dir` every `every` (hyphad starts one with [download_manager]).
Pid start_sweeper(Runtime& rt, const Options& o, std::chrono::milliseconds every = std::chrono::minutes(1));

// "http" / "https" URL with a host: empty, else what is wrong with it. With a policy, a host
// that is an address literal the policy refuses is wrong too (a host name is checked when the
// job connects).
std::string check_url(const std::string& url, const AddressPolicy* policy = nullptr);

}  // namespace hypha::downloads
