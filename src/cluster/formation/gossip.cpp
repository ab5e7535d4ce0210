// Gossip packets (cluster/gossip.hpp): AES-256-GCM heartbeats, and libcluster's own packet.
#include "hypha/cluster/gossip.hpp"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>
#include <stdexcept>
#include <string_view>

#include "hypha/net/handshake.hpp"

namespace hypha::gossip {

namespace {

constexpr std::uint8_t kMagic[4] = {'H', 'Y', 'G', 1};
constexpr std::size_t kNonce = 12, kTag = 16;
constexpr std::string_view kHeartbeat = "heartbeat::";

using Cipher = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
Cipher cipher() { return Cipher(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free); }

std::array<std::uint8_t, 32> hkdf(const std::string& secret, const std::string& info) {
  std::array<std::uint8_t, 32> key{};
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr),
                                                                   &EVP_PKEY_CTX_free);
  static constexpr std::string_view salt = "hypha gossip v1";
  std::size_t len = key.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), reinterpret_cast<const unsigned char*>(salt.data()), int(salt.size())) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()), int(secret.size())) != 1 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), reinterpret_cast<const unsigned char*>(info.data()), int(info.size())) != 1 ||
      EVP_PKEY_derive(ctx.get(), key.data(), &len) != 1)
    throw std::runtime_error("HKDF-SHA256 is not available from OpenSSL");
  return key;
}

void put_be64(std::vector<std::uint8_t>& out, std::int64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i)));
}

bool random_bytes(std::uint8_t* p, std::size_t n) { return RAND_bytes(p, static_cast<int>(n)) == 1; }

// The libcluster plaintext: "heartbeat::" ++ term_to_binary(#{node => Node}).
std::vector<std::uint8_t> libcluster_plain(const std::string& node) {
  std::vector<std::uint8_t> out(kHeartbeat.begin(), kHeartbeat.end());
  out.insert(out.end(), {131, 116, 0, 0, 0, 1, 119, 4, 'n', 'o', 'd', 'e', 119, static_cast<std::uint8_t>(node.size())});
  out.insert(out.end(), node.begin(), node.end());
  return out;
}

// An atom's text at `p` (ATOM_EXT, SMALL_ATOM_EXT and their UTF-8 forms), advancing `p`;
// nullopt when it is not one. No atom is made.
std::optional<std::string_view> atom_text(std::span<const std::uint8_t>& p) {
  if (p.empty()) return std::nullopt;
  const std::uint8_t tag = p[0];
  std::size_t len = 0, head = 0;
  if ((tag == 100 || tag == 118) && p.size() >= 3) {
    len = (std::size_t{p[1]} << 8) | p[2];
    head = 3;
  } else if ((tag == 115 || tag == 119) && p.size() >= 2) {
    len = p[1];
    head = 2;
  } else {
    return std::nullopt;
  }
  if (p.size() < head + len) return std::nullopt;
  std::string_view text(reinterpret_cast<const char*>(p.data() + head), len);
  p = p.subspan(head + len);
  return text;
}

}  // namespace

const char* drop_name(Drop d) {
  switch (d) {
    case Drop::None: return "accepted";
    case Drop::Oversized: return "oversized";
    case Drop::Malformed: return "malformed";
    case Drop::BadAuth: return "bad_auth";
    case Drop::ForeignCluster: return "foreign_cluster";
    case Drop::Replayed: return "replayed";
  }
  return "unknown";
}

Codec::Codec(Config c) : c_(std::move(c)) {
  if (c_.format == Format::Hypha) {
    if (c_.secret.empty()) throw std::invalid_argument("the hypha gossip format needs a secret");
    key_ = hkdf(c_.secret, c_.cluster);
  } else if (!c_.secret.empty()) {
    SHA256(reinterpret_cast<const unsigned char*>(c_.secret.data()), c_.secret.size(), key_.data());
  }
}

std::vector<std::uint8_t> Codec::encode(const std::string& node, std::int64_t now_ms) const {
  if (node.size() > 255 || c_.cluster.size() > 255) throw std::invalid_argument("name too long for a heartbeat");
  if (c_.format == Format::Libcluster) {
    std::vector<std::uint8_t> plain = libcluster_plain(node);
    if (c_.secret.empty()) return plain;
    std::vector<std::uint8_t> out(16);
    if (!random_bytes(out.data(), 16)) throw std::runtime_error("no random bytes for an IV");
    out.resize(16 + plain.size() + 16);
    auto ctx = cipher();
    int n = 0, m = 0;
    if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, key_.data(), out.data()) != 1 ||  // PKCS#7 by default
        EVP_EncryptUpdate(ctx.get(), out.data() + 16, &n, plain.data(), int(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + 16 + n, &m) != 1)
      throw std::runtime_error("AES-256-CBC failed");
    out.resize(16 + n + m);
    return out;
  }
  std::vector<std::uint8_t> plain;
  plain.push_back(static_cast<std::uint8_t>(c_.cluster.size()));
  plain.insert(plain.end(), c_.cluster.begin(), c_.cluster.end());
  plain.push_back(static_cast<std::uint8_t>(node.size()));
  plain.insert(plain.end(), node.begin(), node.end());
  put_be64(plain, now_ms);
  std::vector<std::uint8_t> out(std::begin(kMagic), std::end(kMagic));
  out.resize(4 + kNonce);
  if (!random_bytes(out.data() + 4, kNonce)) throw std::runtime_error("no random bytes for a nonce");
  out.resize(4 + kNonce + plain.size() + kTag);
  auto ctx = cipher();
  int n = 0, m = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(kNonce), nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), out.data() + 4) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, kMagic, 4) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + 4 + kNonce, &n, plain.data(), int(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + 4 + kNonce + n, &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, int(kTag), out.data() + 4 + kNonce + plain.size()) != 1)
    throw std::runtime_error("AES-256-GCM failed");
  return out;
}

Codec::Decoded Codec::decode(std::span<const std::uint8_t> p, std::int64_t now_ms) {
  if (p.size() > kMaxPacket) return {Drop::Oversized, {}};
  return c_.format == Format::Hypha ? decode_hypha(p, now_ms) : decode_libcluster(p);
}

Codec::Decoded Codec::decode_hypha(std::span<const std::uint8_t> p, std::int64_t now_ms) {
  if (p.size() < 4 + kNonce + kTag + 1 || !std::equal(std::begin(kMagic), std::end(kMagic), p.begin()))
    return {Drop::Malformed, {}};
  const std::size_t clen = p.size() - 4 - kNonce - kTag;
  std::vector<std::uint8_t> plain(clen);
  auto ctx = cipher();
  int n = 0, m = 0;
  std::array<std::uint8_t, kTag> tag;
  std::copy(p.end() - kTag, p.end(), tag.begin());
  const bool ok = EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(kNonce), nullptr) == 1 &&
                  EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), p.data() + 4) == 1 &&
                  EVP_DecryptUpdate(ctx.get(), nullptr, &n, p.data(), 4) == 1 &&
                  EVP_DecryptUpdate(ctx.get(), plain.data(), &n, p.data() + 4 + kNonce, int(clen)) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, int(kTag), tag.data()) == 1 &&
                  EVP_DecryptFinal_ex(ctx.get(), plain.data() + n, &m) == 1;
  if (!ok) return {Drop::BadAuth, {}};
  // Authenticated: only a node with the secret wrote it; still check its shape.
  std::span<const std::uint8_t> q(plain);
  auto text = [&q]() -> std::optional<std::string> {
    if (q.empty() || q.size() < 1u + q[0]) return std::nullopt;
    std::string s(reinterpret_cast<const char*>(q.data() + 1), q[0]);
    q = q.subspan(1 + q[0]);
    return s;
  };
  auto cluster = text();
  auto node = text();
  if (!cluster || !node || q.size() != 8 || !net::valid_node_name(*node)) return {Drop::Malformed, {}};
  if (*cluster != c_.cluster) return {Drop::ForeignCluster, {}};
  std::int64_t t = 0;
  for (std::uint8_t b : q) t = static_cast<std::int64_t>((static_cast<std::uint64_t>(t) << 8) | b);
  if (t < now_ms - c_.window_ms || t > now_ms + c_.window_ms) return {Drop::Replayed, {}};
  auto [it, fresh] = last_.try_emplace(*node, t);
  if (!fresh) {
    if (t <= it->second) return {Drop::Replayed, {}};
    it->second = t;
  }
  return {Drop::None, std::move(*node)};
}

Codec::Decoded Codec::decode_libcluster(std::span<const std::uint8_t> p) const {
  std::vector<std::uint8_t> plain;
  if (!c_.secret.empty()) {
    if (p.size() < 32 || (p.size() - 16) % 16 != 0) return {Drop::Malformed, {}};
    plain.resize(p.size());
    auto ctx = cipher();
    int n = 0, m = 0;
    if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, key_.data(), p.data()) != 1 ||
        EVP_DecryptUpdate(ctx.get(), plain.data(), &n, p.data() + 16, int(p.size() - 16)) != 1 ||
        EVP_DecryptFinal_ex(ctx.get(), plain.data() + n, &m) != 1)
      return {Drop::BadAuth, {}};  // bad padding: another secret, or not a packet
    plain.resize(n + m);
  } else {
    plain.assign(p.begin(), p.end());
  }
  std::span<const std::uint8_t> q(plain);
  if (q.size() < kHeartbeat.size() || !std::equal(kHeartbeat.begin(), kHeartbeat.end(), q.begin()))
    return {c_.secret.empty() ? Drop::Malformed : Drop::BadAuth, {}};  // a wrong key can pad right by chance
  q = q.subspan(kHeartbeat.size());
  // 131, MAP_EXT with one pair: the atom node, and an atom.
  if (q.size() < 6 || q[0] != 131 || q[1] != 116 || q[2] != 0 || q[3] != 0 || q[4] != 0 || q[5] != 1)
    return {Drop::Malformed, {}};
  q = q.subspan(6);
  auto key = atom_text(q);
  auto node = key ? atom_text(q) : std::nullopt;
  if (!key || *key != "node" || !node || !q.empty() || !net::valid_node_name(*node)) return {Drop::Malformed, {}};
  return {Drop::None, std::string(*node)};
}

}  // namespace hypha::gossip
