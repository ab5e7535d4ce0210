// libFuzzer target: the ETF decoder on arbitrary bytes. Besides "never crash", it checks two
// properties on every input that decodes: encoding the term and decoding it again gives the same
// term, and printing a term without pids/refs/ports/funs and parsing the text gives it back.
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <cstdio>

#include "hypha/term.hpp"

namespace {

bool printable_exactly(const hypha::Term& t) {
  using hypha::Kind;
  switch (t.kind()) {
    case Kind::Pid: case Kind::Reference: case Kind::Port: case Kind::Fun: return false;
    case Kind::Tuple:
      for (const auto& e : t.tuple_elements()) if (!printable_exactly(e)) return false;
      return true;
    case Kind::List:
      for (const auto& e : t.list_elements()) if (!printable_exactly(e)) return false;
      return printable_exactly(t.list_tail());
    case Kind::Map:
      for (const auto& [k, v] : t.map_entries()) if (!printable_exactly(k) || !printable_exactly(v)) return false;
      return true;
    default: return true;
  }
}

[[noreturn]] void die(const char* what, const hypha::Term& t) {
  std::fprintf(stderr, "property failed: %s for %s\n", what, t.to_string().c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hypha::etf::DecodeOptions opts;
  opts.max_bytes = 1u << 20;
  opts.max_new_atoms = 64;
  (void)hypha::etf::decode_prefix({data, size}, opts);
  auto r = hypha::etf::decode({data, size}, opts);
  if (!r) return 0;
  const hypha::Term& t = *r;
  hypha::etf::DecodeOptions roomy;
  roomy.max_new_atoms = 1u << 20;
  const auto encoded = hypha::etf::encode(t);
  auto again = hypha::etf::decode(encoded, roomy);
  if (!again || !(*again == t)) die("encode/decode round trip", t);
  std::vector<std::uint8_t> into(hypha::etf::encoded_size(t));
  if (hypha::etf::encode_into(into.data(), t) != into.data() + into.size() ||
      !std::equal(into.begin(), into.end(), encoded.begin() + 1, encoded.end()))
    die("encode_into differs from encode", t);
  const std::string text = t.to_string();
  if (printable_exactly(t)) {
    auto parsed = hypha::parse_term(text);
    if (!parsed || !(*parsed == t)) die("print/parse round trip", t);
  }
  return 0;
}
