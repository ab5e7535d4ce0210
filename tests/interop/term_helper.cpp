// Test helper for the term interop checks: reads an ETF list of terms from the file argv[2] and
// writes an ETF list to stdout:
//   sort FILE     the list sorted in hypha's term order (term_order.escript)
//   phash2 FILE   {phash2(T), phash2(T, 1 bsl 32), phash2(T, 1000)} of each term (phash2.escript)
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string_view>
#include <vector>

#include "hypha/term.hpp"

using hypha::Term;

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string_view mode = argv[1];
  std::ifstream in(argv[2], std::ios::binary);
  std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
  auto t = hypha::etf::decode(bytes);
  if (!t || !t->is_proper_list()) {
    std::fprintf(stderr, "term_helper: expected an ETF list\n");
    return 1;
  }
  auto elems = t->list_elements();
  std::vector<Term> out;
  if (mode == "sort") {
    out.assign(elems.begin(), elems.end());
    std::stable_sort(out.begin(), out.end());
  } else if (mode == "phash2") {
    for (const Term& e : elems)
      out.push_back(Term::tuple({Term(hypha::phash2(e)), Term(hypha::phash2_full(e)), Term(hypha::phash2(e, 1000))}));
  } else {
    return 2;
  }
  const auto enc = hypha::etf::encode(Term::list(std::move(out)));
  std::fwrite(enc.data(), 1, enc.size(), stdout);
  return 0;
}
