// Test helper for the interop phash2 check: reads an ETF list of terms from the file argv[1] and
// writes to stdout, as ETF, the list of {phash2(T), phash2(T, 1 bsl 32), phash2(T, 1000)} hypha
// computes for them.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "hypha/term.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
  auto t = hypha::etf::decode(bytes);
  if (!t || !t->is_proper_list()) {
    std::fprintf(stderr, "term_phash: expected an ETF list\n");
    return 1;
  }
  std::vector<hypha::Term> out;
  for (const hypha::Term& e : t->list_elements())
    out.push_back(hypha::Term::tuple({hypha::Term(hypha::phash2(e)), hypha::Term(hypha::phash2_full(e)),
                                      hypha::Term(hypha::phash2(e, 1000))}));
  const auto enc = hypha::etf::encode(hypha::Term::list(std::move(out)));
  std::fwrite(enc.data(), 1, enc.size(), stdout);
  return 0;
}
