// Term layer benchmark: ETF encode and decode of the terms the BEAM side wrote (bench/term_bench.escript),
// so both sides measure exactly the same terms. Usage: term_bench DIR (with DIR/map.etf, DIR/list.etf).
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "bench_util.hpp"
#include "hypha/term.hpp"

using namespace hypha;

namespace {

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "term_bench: cannot read " << path << "\n";
    std::exit(2);
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run(const std::string& name, const std::vector<std::uint8_t>& bytes, double elements) {
  auto decoded = etf::decode(bytes);
  if (!decoded) {
    std::cerr << "term_bench: " << name << ": " << decoded.error().message() << "\n";
    std::exit(2);
  }
  const Term term = *decoded;
  const double mb = static_cast<double>(bytes.size()) / 1e6;
  volatile std::size_t sink = 0;

  const auto enc = bench::measure([&] { sink = sink + etf::encode(term).size(); });
  bench::print_metric("hypha", name + "_encode_ops", enc.ops_per_s, "ops/s");
  bench::print_metric("hypha", name + "_encode_terms", enc.ops_per_s * elements, "terms/s");
  bench::print_metric("hypha", name + "_encode_mb", enc.ops_per_s * mb, "MB/s");

  const auto dec = bench::measure([&] {
    auto t = etf::decode(bytes);
    sink = sink + t->is_map();
  });
  bench::print_metric("hypha", name + "_decode_ops", dec.ops_per_s, "ops/s");
  bench::print_metric("hypha", name + "_decode_terms", dec.ops_per_s * elements, "terms/s");
  bench::print_metric("hypha", name + "_decode_mb", dec.ops_per_s * mb, "MB/s");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: term_bench DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  run("map20", read_file(dir + "/map.etf"), 1);
  run("tuples100k", read_file(dir + "/list.etf"), 100000);
  return 0;
}
