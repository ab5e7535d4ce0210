// `hypha top NODE`: a hypha node's largest processes and its peers' traffic, for a terminal.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

void add_top_command(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
