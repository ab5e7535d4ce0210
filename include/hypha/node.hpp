// The node layer: a C++ program as a member of an Erlang cluster (node/node.hpp). The network
// pieces it is built from (EPMD, handshake, connections) are in hypha/net/.
#pragma once

#include "hypha/node/node.hpp"
#include "hypha/node/sim.hpp"
