// `hypha kv --config FILE`: the KV store, router and text server of Elixir's guide, as a node.
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

void add_kv_command(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
