// `hypha node`, `hypha ping`, `hypha send`, `hypha names`: a node in the foreground, and the
// client commands that talk to nodes (C++ or BEAM) from the shell.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

void add_node_commands(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
