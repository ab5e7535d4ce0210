// `hypha pubsub listen` and `hypha pubsub broadcast`: Phoenix.PubSub topics from the shell,
// against hypha and Elixir nodes alike.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

void add_pubsub_commands(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
