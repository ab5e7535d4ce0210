// hypha's public API: every layer's public headers.
#pragma once

#include "hypha/cluster.hpp"
#include "hypha/node.hpp"
#include "hypha/otp.hpp"
#include "hypha/process.hpp"
#include "hypha/term.hpp"
