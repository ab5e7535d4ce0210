// Test helper for the interop order check: reads an ETF list from the file argv[1], sorts it with
// hypha's term order, and writes the sorted list as ETF to stdout.
#include <algorithm>
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
    std::fprintf(stderr, "term_sort: expected an ETF list\n");
    return 1;
  }
  auto elems = t->list_elements();
  std::vector<hypha::Term> sorted(elems.begin(), elems.end());
  std::stable_sort(sorted.begin(), sorted.end());
  const auto out = hypha::etf::encode(hypha::Term::list(std::move(sorted)));
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}
