// hypha's public API: every layer's public headers.
#pragma once

#include "hypha/node.hpp"
#include "hypha/process.hpp"
#include "hypha/term.hpp"
