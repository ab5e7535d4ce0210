// The term layer: Erlang values in C++ (term.hpp), the External Term Format (etf.hpp), Erlang
// syntax (text.hpp), erlang:phash2 (phash.hpp) and conversions to and from C++ types (convert.hpp).
#pragma once

#include "hypha/term/atom.hpp"
#include "hypha/term/bigint.hpp"
#include "hypha/term/convert.hpp"
#include "hypha/term/etf.hpp"
#include "hypha/term/phash.hpp"
#include "hypha/term/result.hpp"
#include "hypha/term/term.hpp"
#include "hypha/term/text.hpp"
