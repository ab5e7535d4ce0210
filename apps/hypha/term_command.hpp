// `hypha term ...`: encode Erlang text to ETF, decode ETF to text or back to ETF.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

// Adds the `term` subcommand to `app`; `exit_code` receives the command's result.
void add_term_command(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
