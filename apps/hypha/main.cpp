// hypha: the command-line tool. Each subcommand lives in its own file.
#include <CLI/CLI.hpp>

#include <iostream>

#include "node_commands.hpp"
#include "kv_command.hpp"
#include "otp_commands.hpp"
#include "pubsub_commands.hpp"
#include "registry_commands.hpp"
#include "sup_commands.hpp"
#include "task_commands.hpp"
#include "top_command.hpp"
#include "cache_commands.hpp"
#include "term_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"hypha: Erlang/OTP distribution for C++"};
  app.require_subcommand(1);
  int exit_code = 0;
  hypha::cli::add_term_command(app, exit_code);
  hypha::cli::add_node_commands(app, exit_code);
  hypha::cli::add_otp_commands(app, exit_code);
  hypha::cli::add_kv_command(app, exit_code);
  hypha::cli::add_pubsub_commands(app, exit_code);
  hypha::cli::add_registry_commands(app, exit_code);
  hypha::cli::add_sup_commands(app, exit_code);
  hypha::cli::add_task_commands(app, exit_code);
  hypha::cli::add_cache_commands(app, exit_code);
  hypha::cli::add_top_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "hypha: " << e.what() << " (see hypha --help)\n";
    return 2;
  }
  return exit_code;
}
