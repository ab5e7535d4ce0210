// `hypha sup start|which|terminate`: the distributed supervisor (hypha_sup) from the shell.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

void add_sup_commands(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
