// DNS replies from the network (the dns formation strategy, src/cluster/formation/dns.hpp): every
// input is either a list of addresses or an error, never a crash or a read past the end; the
// addresses it gives are IP addresses in text.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "dns.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const auto id = static_cast<std::uint16_t>((data[0] << 8) | data[1]);  // the reply's own id, mostly
  const auto r = hypha::formation::dns::answers(std::span<const std::uint8_t>(data, size), id);
  if (r) {
    for (const auto& a : *r) {
      unsigned char buf[16];
      if (inet_pton(AF_INET, a.c_str(), buf) != 1 && inet_pton(AF_INET6, a.c_str(), buf) != 1) __builtin_trap();
    }
  }
  return 0;
}
