// libFuzzer target: the Erlang-syntax parser on arbitrary text. Whatever parses must print to
// text that parses back to the same term, and must survive an ETF round trip.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "hypha/term.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto t = hypha::parse_term(text);
  if (!t) return 0;
  const std::string printed = t->to_string();
  auto again = hypha::parse_term(printed);
  if (!again || !(*again == *t)) {
    std::fprintf(stderr, "print/parse round trip failed: %s\n", printed.c_str());
    std::abort();
  }
  auto decoded = hypha::etf::decode(hypha::etf::encode(*t));
  if (!decoded || !(*decoded == *t)) {
    std::fprintf(stderr, "etf round trip failed: %s\n", printed.c_str());
    std::abort();
  }
  return 0;
}
