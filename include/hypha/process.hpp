// The process layer: the Runtime (workers, processes, names, timers), Process (a process's view of
// itself), Task (the coroutine type of process bodies) and Mailbox (a pid for plain threads).
#pragma once

#include "hypha/process/mailbox.hpp"
#include "hypha/process/process.hpp"
#include "hypha/process/remote.hpp"
#include "hypha/process/runtime.hpp"
#include "hypha/process/task.hpp"
