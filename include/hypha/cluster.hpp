// The cluster layer: formation, pg, pub/sub, the registry, the distributed supervisor, unique
// cluster tasks, the cache, :global through BEAM peers, cluster events (start_cluster_node).
#pragma once

#include "hypha/cluster/cache.hpp"
#include "hypha/cluster/cluster.hpp"
#include "hypha/cluster/events.hpp"
#include "hypha/cluster/formation.hpp"
#include "hypha/cluster/global.hpp"
#include "hypha/cluster/gossip.hpp"
#include "hypha/cluster/pg.hpp"
#include "hypha/cluster/pubsub.hpp"
#include "hypha/cluster/registry.hpp"
#include "hypha/cluster/routing.hpp"
#include "hypha/cluster/supervisor.hpp"
#include "hypha/cluster/tasks.hpp"
