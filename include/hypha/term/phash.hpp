// erlang:phash2/1,2, bit for bit: the portable term hash BEAM nodes use to spread keys (ets
// partitions, Phoenix.PubSub's and pg's shards, libring and most Elixir sharding code hash with
// it). A C++ node that routes by phash2 agrees with a BEAM node that routes the same keys.
//
// The value depends only on the term, not on the machine or the node: atoms are hashed by their
// text, pids by their number only (not their node), ports by their number, references by their
// first word, -0.0 as 0.0. Funs hash as OTP 25 hashes them (export funs by module, function and
// arity; local funs by module, index, old uniq and their free variables).
#pragma once

#include <cstdint>

#include "hypha/term/term.hpp"

namespace hypha {

// The whole 32-bit hash: erlang:phash2(T, 1 bsl 32).
std::uint32_t phash2_full(const Term& t);

// erlang:phash2(T): 0 .. 2^27-1.
inline std::uint32_t phash2(const Term& t) { return phash2_full(t) & ((1u << 27) - 1); }

// erlang:phash2(T, Range): 0 .. Range-1, for 1 <= Range <= 2^32 (std::invalid_argument otherwise,
// where erlang raises badarg).
std::uint32_t phash2(const Term& t, std::uint64_t range);

}  // namespace hypha
