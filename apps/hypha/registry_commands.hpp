// `hypha registry whereis` and `hypha registry list`: the cluster registry from the shell.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {
void add_registry_commands(CLI::App& app, int& exit_code);
}  // namespace hypha::cli
