// The MD5 challenge of the distribution handshake (erl_dist_protocol: "the digest is
// MD5(Cookie ++ integer_to_list(Challenge))").
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace hypha::net {

using Digest = std::array<std::uint8_t, 16>;

Digest challenge_digest(std::string_view cookie, std::uint32_t challenge);
// A random 32-bit challenge from the OS's CSPRNG.
std::uint32_t new_challenge();
// Constant-time comparison.
bool digest_equal(const Digest& a, const Digest& b);

}  // namespace hypha::net
