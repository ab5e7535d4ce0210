#include "term_command.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <vector>

#include "hypha/term.hpp"

namespace hypha::cli {

namespace {

struct TermOptions {
  std::string text;
  std::string file;
  bool etf = false;
  int compress = 0;
};

int fail(const std::string& what) {
  std::cerr << "hypha: " << what << "\n";
  return 1;
}

bool read_input(const std::string& file, std::vector<std::uint8_t>& out, std::string& error) {
  if (file.empty() || file == "-") {
    out.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return true;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = "cannot open " + file;
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

int usage(const std::string& what) {
  std::cerr << "hypha: " << what << "\n";
  return 2;
}

void write_bytes(const std::vector<std::uint8_t>& bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  std::fflush(stdout);
}

int encode(const TermOptions& o) {
  std::string text = o.text;
  if (text.empty() && o.file.empty()) return usage("term encode: give the term as an argument, '-' for stdin, or --file FILE");
  if (!o.file.empty() || text == "-") {  // long terms come from a file or stdin, not argv
    std::vector<std::uint8_t> bytes;
    std::string error;
    if (!read_input(o.file, bytes, error)) return fail("term encode: " + error);
    text.assign(bytes.begin(), bytes.end());
  }
  auto t = parse_term(text);
  if (!t) return fail("term encode: " + t.error().message());
  write_bytes(etf::encode(*t, {.compression = o.compress}));
  return 0;
}

int decode(const TermOptions& o) {
  std::vector<std::uint8_t> bytes;
  std::string error;
  if (!read_input(o.file, bytes, error)) return fail("term decode: " + error);
  auto t = etf::decode(bytes);
  if (!t) return fail("term decode: " + t.error().message());
  if (o.etf) {
    write_bytes(etf::encode(*t, {.compression = o.compress}));
  } else {
    std::string s = t->to_string();
    s.push_back('\n');
    std::fwrite(s.data(), 1, s.size(), stdout);
  }
  return 0;
}

}  // namespace

void add_term_command(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<TermOptions>();
  auto* term = app.add_subcommand("term", "Erlang terms: External Term Format <-> Erlang syntax");
  term->require_subcommand(1);

  auto* enc = term->add_subcommand("encode", "Parse TERM (Erlang syntax) and write its ETF bytes to stdout");
  auto* term_arg = enc->add_option("TERM", opts->text, "the term, e.g. '{ok,[1,2,3]}'; '-' reads stdin");
  enc->add_option("--file", opts->file, "read the term's text from FILE instead")->excludes(term_arg);
  enc->add_option("--compress", opts->compress, "zlib level 1-9, as term_to_binary(T, [{compressed, N}])")
      ->check(CLI::Range(0, 9));
  enc->callback([opts, &exit_code] { exit_code = encode(*opts); });

  auto* dec = term->add_subcommand("decode", "Read ETF from FILE (or stdin) and print the term in Erlang syntax");
  dec->add_option("FILE", opts->file, "ETF input; stdin when absent or '-'");
  dec->add_flag("--etf", opts->etf, "write ETF again instead of text (checks a round trip)");
  dec->add_option("--compress", opts->compress, "with --etf: zlib level 1-9")->check(CLI::Range(0, 9));
  dec->callback([opts, &exit_code] { exit_code = decode(*opts); });
}

}  // namespace hypha::cli
