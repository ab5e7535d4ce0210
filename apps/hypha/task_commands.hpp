// `hypha task start|status|result|list`: unique cluster tasks (hypha_tasks) from the shell.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

void add_task_commands(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
