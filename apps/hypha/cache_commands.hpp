// hypha cache put|get|delete|size|stats: the cluster caches of a node (cluster/cache.hpp).
#pragma once

namespace CLI {
class App;
}

namespace hypha::cli {

void add_cache_commands(CLI::App& app, int& exit_code);

}  // namespace hypha::cli
