#include "hypha/net/digest.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <random>
#include <stdexcept>
#include <string>

namespace hypha::net {

Digest challenge_digest(std::string_view cookie, std::uint32_t challenge) {
  const std::string text = std::string(cookie) + std::to_string(challenge);
  Digest d{};
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), d.data(), &len, EVP_md5(), nullptr) != 1 || len != d.size())
    throw std::runtime_error("MD5 is not available from OpenSSL");
  return d;
}

std::uint32_t new_challenge() {
  std::uint32_t c = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&c), sizeof c) != 1) c = std::random_device{}();
  return c;
}

bool digest_equal(const Digest& a, const Digest& b) {
  std::uint8_t diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<std::uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace hypha::net
