// The download manager's job, its state and its file (downloads.hpp).
#include "downloads.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "hypha/base/log.hpp"
#include "hypha/cluster/cache.hpp"
#include "hypha/cluster/events.hpp"
#include "hypha/otp/rpc.hpp"

namespace hypha::downloads {

namespace fs = std::filesystem;

namespace {

const Atom& a_download() { static const Atom a("download"); return a; }
const Atom& a_tag() { static const Atom a("hypha_download"); return a; }
const Atom& a_module() { static const Atom a("hypha_downloads"); return a; }

constexpr std::size_t kMaxRead = 1 << 20;  // read/4's largest chunk

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string random_hex(std::size_t bytes) {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    const unsigned char b = static_cast<unsigned char>(gen());
    out += hex(&b, 1);
  }
  return out;
}

// Base64 (RFC 4648, with or without padding) to bytes; nullopt when it is not.
std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// The SHA-256 in a digest header's list: "sha-256=<base64>" (Digest) or "sha-256=:<base64>:"
// (Repr-Digest), as hex; empty when it has none.
std::string digest_sha256(std::string_view value) {
  std::size_t pos = 0;
  while (pos < value.size()) {
    std::size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    const std::string item = trim(value.substr(pos, comma - pos));
    pos = comma + 1;
    const auto eq = item.find('=');
    if (eq == std::string::npos || lower(item.substr(0, eq)) != "sha-256") continue;
    std::string b64 = item.substr(eq + 1);
    if (b64.size() >= 2 && b64.front() == ':' && b64.back() == ':') b64 = b64.substr(1, b64.size() - 2);
    if (auto raw = base64_decode(b64); raw && raw->size() == 32)
      return hex(reinterpret_cast<const unsigned char*>(raw->data()), raw->size());
  }
  return {};
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { reset(); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void reset() { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  void update(const void* p, std::size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string hex_digest() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, out, &n);
    return hex(out, n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

// --- addresses (AddressPolicy) ---

using Addr16 = std::array<unsigned char, 16>;
constexpr unsigned char kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};  // ::ffff:0:0/96

// IPv4 a.b.c.d as ::ffff:a.b.c.d.
Addr16 mapped(const unsigned char* v4) {
  Addr16 a{};
  a[10] = a[11] = 0xff;
  std::memcpy(a.data() + 12, v4, 4);
  return a;
}

std::string address_text(const unsigned char* a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(a, kV4Mapped, 12) == 0) ::inet_ntop(AF_INET, a + 12, buf, sizeof buf);
  else ::inet_ntop(AF_INET6, a, buf, sizeof buf);
  return buf;
}

bool in_network(const unsigned char* a, const AddressPolicy::Network& n) {
  const int full = n.prefix / 8, rest = n.prefix % 8;
  if (std::memcmp(a, n.addr, static_cast<std::size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[full] & mask) == (n.addr[full] & mask);
}

// "10.0.0.0/8", "::1": nullopt when it is not a network, and `why` says what was expected.
std::optional<AddressPolicy::Network> parse_network(const std::string& text, std::string& why) {
  const auto slash = text.find('/');
  const std::string addr = text.substr(0, slash);
  AddressPolicy::Network n{};
  int bits = 0;
  unsigned char v4[4];
  if (::inet_pton(AF_INET, addr.c_str(), v4) == 1) {
    const Addr16 m = mapped(v4);
    std::memcpy(n.addr, m.data(), 16);
    bits = 32;
  } else if (::inet_pton(AF_INET6, addr.c_str(), n.addr) == 1) {
    bits = 128;
  } else {
    why = "an address or network (10.0.0.0/8, 127.0.0.1, fd00::/8; not a host name)";
    return std::nullopt;
  }
  int prefix = bits;
  if (slash != std::string::npos) {
    const std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        std::stoi(p) > bits) {
      why = "a prefix length of 0.." + std::to_string(bits);
      return std::nullopt;
    }
    prefix = std::stoi(p);
  }
  n.prefix = prefix + (128 - bits);
  AddressPolicy::Network masked = n;
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(n.prefix - 8 * i, 0, 8);
    masked.addr[i] = static_cast<unsigned char>(n.addr[i] & (keep == 0 ? 0 : 0xff << (8 - keep)));
  }
  if (std::memcmp(masked.addr, n.addr, 16) != 0) {
    why = "a network without host bits (" + address_text(masked.addr) + "/" + std::to_string(prefix) + ")";
    return std::nullopt;
  }
  return n;
}

// Ranges that are not public unicast (IANA special-purpose registries), refused unless allowed.
const std::vector<AddressPolicy::Network>& not_public() {
  static const std::vector<AddressPolicy::Network> nets = [] {
    std::vector<AddressPolicy::Network> out;
    for (const char* t : {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                          "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
                          "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128",
                          "100::/64", "2001::/32", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"}) {
      std::string why;
      out.push_back(*parse_network(t, why));
    }
    return out;
  }();
  return nets;
}

// The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), as ::ffff:a.b.c.d.
std::optional<Addr16> embedded_v4(const unsigned char* a) {
  static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(a, kV4Mapped, 12) == 0) return std::nullopt;  // already IPv4
  if (std::memcmp(a, nat64, 12) == 0) return mapped(a + 12);
  if (a[0] == 0x20 && a[1] == 0x02) return mapped(a + 2);
  return std::nullopt;
}

// A sockaddr's address as 16 bytes; nullopt for another family.
std::optional<Addr16> sockaddr_bytes(const void* sa) {
  const auto* base = static_cast<const sockaddr*>(sa);
  if (base->sa_family == AF_INET) {
    const auto* in = static_cast<const sockaddr_in*>(sa);
    return mapped(reinterpret_cast<const unsigned char*>(&in->sin_addr));
  }
  if (base->sa_family == AF_INET6) {
    Addr16 a;
    std::memcpy(a.data(), &static_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    return a;
  }
  return std::nullopt;
}

std::once_flag curl_once;

// One fetch on a thread of its own; it tells the job's process what happens, as
//   {hypha_download, Ref, progress, Bytes, Total | undefined, Validator}   after each checkpoint
//   {hypha_download, Ref, done, ok | {error, Why}, Sha256Hex}             at the end
// and stops soon after `cancel` is set (the job's process ended).
struct Fetch {
  // Set before the thread starts.
  Runtime* rt = nullptr;
  Pid to;
  Term ref;
  std::string url, validator, node;
  fs::path part;
  std::uint64_t from = 0;
  std::optional<std::uint64_t> total;
  Options o;
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::condition_variable cv;  // a back-off sleep that cancel cuts short

  // The thread's own.
  int fd = -1;
  Sha256 sha;
  std::uint64_t bytes = 0;
  std::chrono::steady_clock::time_point last_checkpoint;
  long status = 0;
  bool body_started = false;
  std::string source_sha, etag, last_modified, failure;
  std::optional<std::uint64_t> length_header, range_total, range_start;
  std::string refused;  // an address the policy refused to connect to

  // Nothing once cancelled: the job's process is gone, and its runtime may be on its way out.
  void send(Term msg) {
    if (!cancel) rt->send(to, Term::tuple({Term(a_tag()), ref, std::move(msg)}));
  }

  bool checkpoint() {
    if (fd >= 0 && ::fdatasync(fd) != 0) {
      failure = "cannot sync the part file: " + std::string(std::strerror(errno));
      return false;
    }
    last_checkpoint = std::chrono::steady_clock::now();
    const std::string v = !etag.empty() ? etag : last_modified;
    if (!v.empty()) validator = v;
    send(Term::tuple({Term(Atom("progress")), Term(static_cast<std::int64_t>(bytes)),
                      total ? Term(static_cast<std::int64_t>(*total)) : Term(Atom("undefined")), Term::binary(validator)}));
    return true;
  }

  bool write_all(const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        failure = "cannot write the part file: " + std::string(std::strerror(errno));
        return false;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  // Starting again from 0 (a 200 to a Range request: the source changed or ignores ranges).
  bool restart_from_zero() {
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) {
      failure = "cannot truncate the part file";
      return false;
    }
    sha.reset();
    bytes = 0;
    return true;
  }

  // The first body bytes of a response: is it what we asked for?
  bool start_body() {
    body_started = true;
    if (bytes > 0 && status == 200) {
      log::event(log::Level::Info, node, "download_restarted", {{"url", url}, {"reason", "the source sent the whole file"}});
      if (!restart_from_zero()) return false;
    } else if (bytes > 0 && status == 206) {
      if (!range_start || *range_start != bytes) {
        failure = "the source answered a range from another offset";
        return false;
      }
    } else if (status != 200 && status != 206) {
      failure = "HTTP status " + std::to_string(status);
      return false;
    }
    if (status == 206 && range_total) total = range_total;
    else if (status == 200 && length_header) total = length_header;
    if (total && *total > o.max_bytes) {
      failure = "too_large: " + std::to_string(*total) + " bytes, more than " + std::to_string(o.max_bytes);
      return false;
    }
    return true;
  }

  static std::size_t on_body(char* p, std::size_t size, std::size_t n, void* self_) {
    auto* self = static_cast<Fetch*>(self_);
    const std::size_t len = size * n;
    if (self->cancel) return 0;
    if (!self->body_started && !self->start_body()) return 0;
    if (self->bytes + len > self->o.max_bytes) {
      self->failure = "too_large: more than " + std::to_string(self->o.max_bytes) + " bytes";
      return 0;
    }
    if (!self->write_all(p, len)) return 0;
    self->sha.update(p, len);
    self->bytes += len;
    if (std::chrono::steady_clock::now() - self->last_checkpoint >= self->o.checkpoint && !self->checkpoint()) return 0;
    return len;
  }

  static std::size_t on_header(char* p, std::size_t size, std::size_t n, void* self_) {
    auto* self = static_cast<Fetch*>(self_);
    const std::size_t len = size * n;
    const std::string line(p, len);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect or a 100): its own headers
      self->etag.clear();
      self->last_modified.clear();
      self->source_sha.clear();
      self->length_header.reset();
      self->range_total.reset();
      self->range_start.reset();
      const auto sp = line.find(' ');
      self->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
      return len;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) return len;
    const std::string name = lower(trim(line.substr(0, colon)));
    const std::string value = trim(line.substr(colon + 1));
    auto number = [](const std::string& s) -> std::optional<std::uint64_t> {
      if (s.empty() || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }) || s.size() > 19)
        return std::nullopt;
      return std::stoull(s);
    };
    if (name == "etag") self->etag = value;
    else if (name == "last-modified") self->last_modified = value;
    else if (name == "content-length") self->length_header = number(value);
    else if (name == "content-range") {  // bytes START-END/TOTAL
      const auto dash = value.find('-'), slash = value.find('/');
      if (value.rfind("bytes ", 0) == 0 && dash != std::string::npos && slash != std::string::npos) {
        self->range_start = number(value.substr(6, dash - 6));
        self->range_total = number(value.substr(slash + 1));
      }
    } else if (name == "x-checksum-sha256") {
      if (value.size() == 64) self->source_sha = lower(value);
    } else if (name == "repr-digest" || name == "digest") {
      if (auto h = digest_sha256(value); !h.empty()) self->source_sha = h;
    }
    return len;
  }

  // Every connection libcurl makes (to the source, after each redirect): refused unless the
  // policy permits the address it resolved to.
  static curl_socket_t on_open_socket(void* self_, curlsocktype purpose, curl_sockaddr* address) {
    auto* self = static_cast<Fetch*>(self_);
    if (purpose == CURLSOCKTYPE_IPCXN && !self->o.addresses.permits(&address->addr)) {
      const auto a = sockaddr_bytes(&address->addr);
      self->refused = a ? address_text(a->data()) : "an address of family " + std::to_string(address->family);
      return CURL_SOCKET_BAD;
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  }

  static int on_progress(void* self_, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Fetch*>(self_)->cancel ? 1 : 0;
  }

  // One request from `bytes`: true when the body was all received.
  bool transfer(bool& retryable) {
    CURL* c = curl_easy_init();
    if (!c) {
      failure = "libcurl could not start";
      return false;
    }
    body_started = false;
    status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(o.stall.count() / 1000)));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hypha-download-manager");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Fetch::on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Fetch::on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Fetch::on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, &Fetch::on_open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, this);
    curl_easy_setopt(c, CURLOPT_PROXY, o.proxy.c_str());  // "": no proxy, whatever the environment says
    const std::string range = std::to_string(bytes) + "-";
    curl_slist* headers = nullptr;
    if (bytes > 0) {
      curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
      if (!validator.empty()) headers = curl_slist_append(headers, ("If-Range: " + validator).c_str());
    }
    if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    failure.clear();
    refused.clear();
    const CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK && !body_started && !start_body()) {  // an empty body: its status still to be checked
      retryable = false;
      return false;
    }
    if (rc == CURLE_OK) return true;
    if (!refused.empty() && rc == CURLE_COULDNT_CONNECT) {
      failure = "address_refused: " + refused + " is not an address downloads may reach (download_manager.allow)";
      retryable = false;
      return false;
    }
    if (failure.empty()) failure = curl_easy_strerror(rc);
    // What a dead or stalled connection looks like: try again from what we have.
    retryable = !cancel && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_PARTIAL_FILE || rc == CURLE_OPERATION_TIMEDOUT ||
                            rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
                            (rc == CURLE_HTTP_RETURNED_ERROR && status >= 500) ||
                            (rc == CURLE_WRITE_ERROR && status >= 500));
    if (rc == CURLE_WRITE_ERROR && status >= 500) failure = "HTTP status " + std::to_string(status);
    return false;
  }

  // Hashes the part file's first `from` bytes (a resumed download): false when it holds fewer.
  bool hash_existing() {
    std::ifstream in(part, std::ios::binary);
    std::vector<char> buf(1 << 16);
    std::uint64_t left = from;
    while (left > 0 && in) {
      in.read(buf.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(left, buf.size())));
      const auto got = static_cast<std::uint64_t>(in.gcount());
      if (got == 0) break;
      sha.update(buf.data(), got);
      left -= got;
    }
    return left == 0;
  }

  std::string run_all() {
    fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot open " + part.string() + ": " + std::strerror(errno);
    // One writer at a time: a node taken for dead (stopped, cut off) may still be writing the
    // part file on a shared volume; it is waited for (a killed one's lock goes with it).
    bool told = false;
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) return "cannot lock " + part.string() + ": " + std::strerror(errno);
      if (!told) log::event(log::Level::Warn, node, "download_waiting_for_writer", {{"file", part.string()}});
      told = true;
      std::unique_lock lock(mu);
      if (cv.wait_for(lock, std::chrono::milliseconds(100), [this] { return cancel.load(); })) return "cancelled";
    }
    if (from > 0 && !hash_existing()) from = 0;
    if (::ftruncate(fd, static_cast<off_t>(from)) != 0 || ::lseek(fd, static_cast<off_t>(from), SEEK_SET) < 0)
      return "cannot truncate " + part.string();
    bytes = from;
    last_checkpoint = std::chrono::steady_clock::now();
    int left = o.attempts;
    for (;;) {
      bool retryable = false;
      if (transfer(retryable)) break;
      if (cancel) return "cancelled";
      if (!retryable || left-- <= 0) return failure;
      (void)checkpoint();
      log::event(log::Level::Info, node, "download_resuming", {{"url", url}, {"reason", failure}});
      std::unique_lock lock(mu);
      const auto backoff = std::chrono::milliseconds(500 << std::min(o.attempts - left - 1, 4));
      if (cv.wait_for(lock, backoff, [this] { return cancel.load(); })) return "cancelled";
    }
    if (!checkpoint()) return failure;
    if (total && bytes != *total)
      return "length mismatch: " + std::to_string(bytes) + " bytes received, " + std::to_string(*total) + " announced";
    return {};
  }

  void run() {
    std::string why = run_all();
    const std::string digest = sha.hex_digest();
    if (why.empty() && !source_sha.empty() && source_sha != digest)
      why = "checksum mismatch: sha256 " + digest + ", the source says " + source_sha;
    if (fd >= 0) ::close(fd);
    if (cancel) return;
    send(Term::tuple({Term(Atom("done")),
                      why.empty() ? Term(Atom("ok")) : Term::tuple({Term(Atom("error")), Term::binary(why)}),
                      Term::binary(digest)}));
  }
};

// Ends the fetch when the job's process ends, however it ends (its frame is destroyed).
struct FetchThread {
  std::shared_ptr<Fetch> f;
  std::thread t;
  ~FetchThread() {
    if (!f) return;
    {
      std::lock_guard lock(f->mu);
      f->cancel = true;
    }
    f->cv.notify_all();
    if (t.joinable()) t.join();
  }
};

Task<bool> save(Process& self, const Options& o, const std::string& visitor, Status& st) {
  st.updated_ms = now_ms();
  const cache::Cache c(o.cache);
  const Term key = job_key(visitor);
  const Term value = st.to_term();
  auto put = co_await c.put(self, key, value, o.ttl);
  Term ev = events::map({{"kind", Term(a_download())},
                         {"visitor", Term::binary(visitor)},
                         {"state", Term(Atom(state_name(st.state)))},
                         {"status", Term(Atom(state_name(st.state)))},  // what the dashboard's history groups by
                         {"progress", Term(static_cast<std::int64_t>(st.progress()))},
                         {"bytes", Term(static_cast<std::int64_t>(st.bytes))},
                         {"total", st.total ? Term(static_cast<std::int64_t>(*st.total)) : Term(Atom("undefined"))},
                         {"node", Term(Atom(st.node))},
                         {"url", Term::binary(st.url)},
                         {"sha256", Term::binary(st.sha256)},
                         {"error", Term::binary(st.error)},
                         {"at", Term(st.updated_ms)}});
  events::publish(self.runtime(), o.events, ev);
  if (!put) log::event(log::Level::Warn, self.runtime().node().text(), "download_state_not_saved",
                       {{"visitor", visitor}, {"reason", put.error().to_string()}});
  co_return static_cast<bool>(put);
}

std::string text_of(const Term& t) { return t.is_binary() ? std::string(t.binary_view()) : t.to_string(); }

Task<Term> run_job(Process& self, Options o, std::string visitor, std::string url, std::string job) {
  const std::string me(self.runtime().node().text());
  const cache::Cache c(o.cache);
  Status st;
  st.url = url;
  st.job = job;
  auto prev = co_await c.get(self, job_key(visitor));
  std::optional<Status> before;
  if (prev && *prev) before = Status::from_term(**prev);
  if (before && before->job == job && before->state != State::Pending) {
    if (before->state == State::Ready || before->state == State::Error) co_return Term(Atom("normal"));  // ended already
    st.bytes = before->bytes;
    st.total = before->total;
    st.validator = before->validator;
  }
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  const fs::path part = file_path(o, st, true);
  if (st.bytes > 0) {
    const auto size = fs::file_size(part, ec);
    if (ec || size < st.bytes) {
      log::event(log::Level::Warn, me, "download_checkpoint_missing",
                 {{"visitor", visitor}, {"file", part.string()}, {"bytes", std::to_string(st.bytes)}});
      st.bytes = 0;
      st.validator.clear();
    } else {
      log::event(log::Level::Info, me, "download_resumed", {{"visitor", visitor}, {"from", std::to_string(st.bytes)}});
    }
  }
  st.state = State::Processing;
  st.node = me;
  co_await save(self, o, visitor, st);

  FetchThread ft;
  ft.f = std::make_shared<Fetch>();
  Fetch& f = *ft.f;
  f.rt = &self.runtime();
  f.to = self.pid();
  f.ref = Term(self.make_ref());
  f.url = url;
  f.validator = st.validator;
  f.node = me;
  f.part = part;
  f.from = st.bytes;
  f.total = st.total;
  f.o = o;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  ft.t = std::thread([fp = ft.f] { fp->run(); });
  const Term ref = f.ref;
  for (;;) {
    Term msg = co_await self.receive([&ref](const Term& m) {
      return m.is_tuple() && m.tuple_size() == 3 && m[0].is_atom(a_tag()) && m[1] == ref && m[2].is_tuple();
    });
    const Term& what = msg[2];
    if (what[0].is_atom(Atom("progress")) && what.tuple_size() == 4) {
      st.bytes = static_cast<std::uint64_t>(what[1].small_integer());
      st.total = what[2].is_integer() ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(what[2].small_integer()))
                                      : std::nullopt;
      st.validator = text_of(what[3]);
      co_await save(self, o, visitor, st);
      continue;
    }
    if (what[0].is_atom(Atom("done")) && what.tuple_size() == 3) {
      if (what[1].is_atom(Atom("ok"))) {
        fs::rename(part, file_path(o, st), ec);
        if (ec) {
          st.state = State::Error;
          st.error = "cannot rename the finished file: " + ec.message();
        } else {
          st.state = State::Ready;
          st.sha256 = text_of(what[2]);
          st.total = st.bytes;
        }
      } else {
        st.state = State::Error;
        st.error = text_of(what[1][1]);
        fs::remove(part, ec);
      }
      log::event(st.state == State::Ready ? log::Level::Info : log::Level::Warn, me,
                 st.state == State::Ready ? "download_ready" : "download_failed",
                 {{"visitor", visitor}, {"bytes", std::to_string(st.bytes)}, {"reason", st.error}});
      co_await save(self, o, visitor, st);
      co_return Term(Atom(state_name(st.state)));
    }
  }
}

}  // namespace

Result<AddressPolicy, std::string> AddressPolicy::parse(const std::vector<std::string>& allow) {
  AddressPolicy p;
  for (const auto& entry : allow) {
    std::string why;
    auto n = parse_network(entry, why);
    if (!n) return unexpected("expected " + why + ", got \"" + entry + "\"");
    p.allow_.push_back(*n);
  }
  return p;
}

std::string AddressPolicy::check(const std::string& entry) {
  std::string why;
  return parse_network(entry, why) ? std::string() : "expected " + why;
}

bool AddressPolicy::permits16(const unsigned char* a) const {
  for (const auto& n : allow_)
    if (in_network(a, n)) return true;
  for (const auto& n : not_public())
    if (in_network(a, n)) return false;
  if (auto v4 = embedded_v4(a)) return permits16(v4->data());
  return true;
}

bool AddressPolicy::permits(const void* sockaddr) const {
  const auto a = sockaddr_bytes(sockaddr);
  return a && permits16(a->data());
}

std::optional<bool> AddressPolicy::permits_literal(const std::string& text) const {
  unsigned char v4[4];
  Addr16 a;
  if (::inet_pton(AF_INET, text.c_str(), v4) == 1) a = mapped(v4);
  else if (::inet_pton(AF_INET6, text.c_str(), a.data()) != 1) return std::nullopt;
  return permits16(a.data());
}

std::string_view state_name(State s) {
  switch (s) {
    case State::Pending: return "pending";
    case State::Processing: return "processing";
    case State::Ready: return "ready";
    case State::Error: return "error";
  }
  return "error";
}

int Status::progress() const {
  if (state == State::Ready) return 100;
  if (!total || *total == 0) return 0;
  return static_cast<int>(std::min<std::uint64_t>(100, bytes * 100 / *total));
}

Term Status::to_term() const {
  return events::map({{"state", Term(Atom(state_name(state)))},
                      {"url", Term::binary(url)},
                      {"job", Term::binary(job)},
                      {"bytes", Term(static_cast<std::int64_t>(bytes))},
                      {"total", total ? Term(static_cast<std::int64_t>(*total)) : Term(Atom("undefined"))},
                      {"node", Term::binary(node)},
                      {"sha256", Term::binary(sha256)},
                      {"error", Term::binary(error)},
                      {"validator", Term::binary(validator)},
                      {"updated", Term(updated_ms)}});
}

std::optional<Status> Status::from_term(const Term& t) {
  if (!t.is_map()) return std::nullopt;
  auto get = [&t](const char* k) -> const Term* { return t.map_find(Term(Atom(k))); };
  auto text = [&get](const char* k) -> std::optional<std::string> {
    const Term* v = get(k);
    if (!v || !v->is_binary()) return std::nullopt;
    return std::string(v->binary_view());
  };
  auto count = [&get](const char* k) -> std::optional<std::uint64_t> {
    const Term* v = get(k);
    if (!v || !v->is_small_integer() || v->small_integer() < 0) return std::nullopt;
    return static_cast<std::uint64_t>(v->small_integer());
  };
  Status s;
  const Term* state = get("state");
  if (!state || !state->is_atom()) return std::nullopt;
  const std::string_view name = state->atom_value().text();
  if (name == "pending") s.state = State::Pending;
  else if (name == "processing") s.state = State::Processing;
  else if (name == "ready") s.state = State::Ready;
  else if (name == "error") s.state = State::Error;
  else return std::nullopt;
  auto url = text("url"), job = text("job"), node = text("node"), sha = text("sha256"), err = text("error"),
       val = text("validator");
  auto bytes = count("bytes");
  if (!url || !job || !node || !sha || !err || !val || !bytes) return std::nullopt;
  s.url = *url;
  s.job = *job;
  s.node = *node;
  s.sha256 = *sha;
  s.error = *err;
  s.validator = *val;
  s.bytes = *bytes;
  s.total = count("total");
  if (const Term* u = get("updated"); u && u->is_small_integer()) s.updated_ms = u->small_integer();
  return s;
}

std::string visitor_id(std::string_view session) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(session.data(), session.size(), out, &n, EVP_sha256(), nullptr);
  return hex(out, 16);
}

Term job_key(const std::string& visitor) { return Term::tuple({Term(a_download()), Term::binary(visitor)}); }

fs::path file_path(const Options& o, const Status& s, bool part) {
  // The job id is ours (hex); the visitor's too (visitor_id): neither can climb out of dir.
  return o.dir / (s.job + (part ? ".part" : ""));
}

std::size_t sweep(const Options& o, fs::file_time_type now) {
  std::size_t removed = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(o.dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".part") == 0) name.resize(name.size() - 5);
    if (name.size() != 32 || !std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isxdigit(c); }))
      continue;
    std::error_code e;
    const auto written = fs::last_write_time(it->path(), e);
    if (e || now - written < o.ttl || !it->is_regular_file(e)) continue;
    if (fs::remove(it->path(), e)) ++removed;
  }
  return removed;
}

Pid start_sweeper(Runtime& rt, const Options& o, std::chrono::milliseconds every) {
  return rt.spawn([o, every](Process& self) -> Task<> {
    for (;;) {
      if (const std::size_t n = sweep(o); n > 0)
        log::event(log::Level::Info, self.runtime().node().text(), "downloads_swept",
                   {{"dir", o.dir.string()}, {"removed", std::to_string(n)}});
      co_await self.sleep(every);
    }
  });
}

std::string check_url(const std::string& url, const AddressPolicy* policy) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "not a URL (http://host/path)";
  const std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return "the scheme must be http or https, not " + scheme;
  const std::string rest = url.substr(scheme_end + 3);
  const auto host_end = rest.find_first_of("/?#");
  if (rest.substr(0, host_end).empty()) return "no host";
  if (url.size() > 4096) return "longer than 4096 characters";
  for (unsigned char ch : url)
    if (ch <= 0x20 || ch == 0x7f) return "spaces and control characters must be percent-encoded";
  if (policy) {
    std::string host = rest.substr(0, host_end);
    if (const auto at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.find(']') - 1);
    else host = host.substr(0, host.find(':'));
    if (policy->permits_literal(host) == false)
      return host + " is not an address downloads may reach (download_manager.allow)";
  }
  return {};
}

void add_exports(Exports& exports, const Options& o) {
  exports.add("hypha_downloads", "run", [o](Process& self, Term visitor, Term url, Term job) -> Task<Term> {
    if (!visitor.is_binary() || !url.is_binary() || !job.is_binary())
      throw Error(Term(Atom("badarg")), "run(Visitor, Url, Job): three binaries");
    Term out = co_await run_job(self, o, std::string(visitor.binary_view()), std::string(url.binary_view()),
                                std::string(job.binary_view()));
    co_return out;
  });
  exports.add("hypha_downloads", "read", [o](Term job, std::int64_t offset, std::int64_t len) -> Term {
    if (!job.is_binary() || offset < 0 || len < 0)
      throw Error(Term(Atom("badarg")), "read(Job, Offset, Length)");
    const std::string j(job.binary_view());
    if (j.empty() || !std::all_of(j.begin(), j.end(), [](unsigned char c) { return std::isxdigit(c); }))
      return Term::tuple({Term(Atom("error")), Term(Atom("enoent"))});
    Status s;
    s.job = j;
    std::ifstream in(file_path(o, s), std::ios::binary);
    if (!in) return Term::tuple({Term(Atom("error")), Term(Atom("enoent"))});
    in.seekg(offset);
    std::string buf(std::min<std::size_t>(static_cast<std::size_t>(len), kMaxRead), '\0');
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    buf.resize(static_cast<std::size_t>(in.gcount()));
    if (buf.empty()) return Term(Atom("eof"));
    return Term::tuple({Term(Atom("ok")), Term::binary(buf)});
  });
}

Result<Pid, Term> start(Runtime& rt, const Options& o, const std::string& visitor, const std::string& url) {
  if (auto why = check_url(url, &o.addresses); !why.empty()) return unexpected(Term::tuple({Term(Atom("bad_url")), Term::binary(why)}));
  const Term key = job_key(visitor);
  const cache::Cache c(o.cache);
  // Refused before anything changes when the visitor's job runs already. A job that has said
  // ready or error is in its last moment (its child and its name go just after): not running.
  auto finished = [&] {
    auto now = c.get(rt, key);
    std::optional<Status> s = now && *now ? Status::from_term(**now) : std::nullopt;
    return s && (s->state == State::Ready || s->state == State::Error);
  };
  for (const auto& child : dsup::which_children(rt, o.supervisor))
    if (child.id == key && !finished()) return unexpected(Term::tuple({Term(Atom("already_started")), Term(child.pid)}));
  const bool after_one = finished();
  Status st;
  st.state = State::Pending;
  st.url = url;
  st.job = random_hex(16);
  st.updated_ms = now_ms();
  if (auto put = c.put(rt, key, st.to_term(), o.ttl); !put) return unexpected(put.error());
  dsup::ChildSpec spec;
  spec.id = key;
  spec.module = a_module();
  spec.function = Atom("run");
  spec.args = Term::list({Term::binary(visitor), Term::binary(url), Term::binary(st.job)});
  spec.restart = Restart::Transient;
  auto started = dsup::start_child(rt, spec, o.supervisor);
  // The ended job's child may be there a moment longer: it is stopped (its work is done).
  for (int i = 0; after_one && !started && i < 40; ++i) {
    const Term& e = started.error();
    if (!(e.is_tuple() && e.tuple_size() == 2 && e[0].is_atom(Atom("already_started")))) break;
    (void)dsup::terminate_child(rt, key, o.supervisor);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    started = dsup::start_child(rt, spec, o.supervisor);
  }
  return started;
}

Result<std::optional<Status>, Term> status(Runtime& rt, const Options& o, const std::string& visitor) {
  const cache::Cache c(o.cache);
  auto v = c.get(rt, job_key(visitor));
  if (!v) return unexpected(v.error());
  if (!*v) return std::optional<Status>();
  return Status::from_term(**v);
}

Result<std::string, Term> read(Runtime& rt, const Options& o, const Status& s, std::uint64_t offset, std::size_t len) {
  std::error_code ec;
  const fs::path here = file_path(o, s);
  if (const auto size = fs::file_size(here, ec); !ec && size == s.bytes) {
    std::ifstream in(here, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    std::string buf(std::min(len, kMaxRead), '\0');
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    buf.resize(static_cast<std::size_t>(in.gcount()));
    return buf;
  }
  const Term r = rpc::call(rt, Atom(s.node), a_module(), Atom("read"),
                           Term::list({Term::binary(s.job), Term(static_cast<std::int64_t>(offset)),
                                       Term(static_cast<std::int64_t>(std::min(len, kMaxRead)))}),
                           std::chrono::seconds(10));
  if (r.is_atom(Atom("eof"))) return std::string();
  if (r.is_tuple() && r.tuple_size() == 2 && r[0].is_atom(Atom("ok")) && r[1].is_binary())
    return std::string(r[1].binary_view());
  return unexpected(r);
}

}  // namespace hypha::downloads
