// Terms as Erlang source text.
//
// Printing follows io_lib:format("~tp") on one line, as OTP 25 prints it: {ok,[1,2,3]},
// <<"bin">>, <<"é"/utf8>>, #{a => 1}, 'quoted atom', printable lists as strings (Latin-1 range,
// OTP's default printable_range), floats in the shortest form that reads back to the same double.
// Output is UTF-8. Pids, references and ports have no node-independent form in Erlang (it prints a
// per-node index); hypha writes the node name instead: <'a@host'.85.0>, #Ref<'a@host'.1.2.3>,
// #Port<'a@host'.5>. Creation is not printed; use ETF where it matters.
//
// Parsing reads the same syntax: integers (-12, 16#ff, 2#1010, $c, 1_000), floats (1.5e-3),
// atoms (plain and quoted), strings with every Erlang escape (\n, \x{3c0}, \101, \^a ...),
// adjacent strings ("a" "b"), binaries (<<1,2>>, <<"abc">>, <<"é"/utf8>>, <<5:3>>), lists,
// improper lists, tuples, maps, pids/references/ports in the printed form above, export funs
// (fun m:f/1). A trailing '.' is allowed. Local funs cannot be written as text.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "hypha/term/result.hpp"
#include "hypha/term/term.hpp"

namespace hypha {

// Appends `t` in Erlang syntax to `out`.
void format_term(std::string& out, const Term& t);

// The same with io_lib's options: `depth` (io_lib:write's, ~W/~P: deeper parts print as ...;
// negative: all) and `strings` (false: lists and binaries print as their elements and bytes,
// as io_lib:write and ~w do; a list printed as a string prints whole at any depth).
struct PrintOptions {
  long long depth = -1;
  bool strings = true;
};
void format_term(std::string& out, const Term& t, const PrintOptions& opts);

// unicode:characters_to_binary/1: chardata (a binary, a code point, or a deep list of them, as
// io requests carry) as UTF-8; false (out partly written) when `t` is not chardata.
bool append_chardata(std::string& out, const Term& t);

// io_lib:format(Format, Args) as OTP 25 formats, as UTF-8: every control sequence ~F.P.PadModC
// (c f e g s w p W P b B x X + # i n ~, field width, precision, pad character, * arguments,
// the t and l modifiers), with io_lib's rounding of floats (~.2f of 0.125 is 0.13). Differences:
// ~p and ~P print on one line (no breaking at 80 columns), maps print in term order, and
// pids/references print as `format_term` does. An error (where io_lib:format raises badarg)
// names the control sequence and why.
Result<std::string, std::string> io_lib_format(std::string_view format, std::span<const Term> args);

struct ParseError {
  std::size_t offset = 0;  // byte offset in the text
  std::string reason;
  std::string message() const;  // "at byte N: reason"
};

struct ParseOptions {
  std::size_t max_depth = 1000;
};

Result<Term, ParseError> parse_term(std::string_view text, const ParseOptions& opts = {});

}  // namespace hypha
