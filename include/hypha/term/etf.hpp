// The External Term Format (ETF): Erlang's binary encoding of terms, as term_to_binary/1 writes
// it and as the distribution protocol carries it.
//
// decode() reads every form OTP 25-27 produces, including legacy ones (ATOM_EXT, PID_EXT, FLOAT_EXT,
// NEW_REFERENCE_EXT, ...) and compressed terms. It treats its input as hostile: nesting depth, total
// size, big integer size and atoms created per message are limited (DecodeOptions), every length
// is checked against the bytes that remain, and any fault returns a DecodeError naming the byte
// offset and the reason. It never reads out of bounds, never recurses without limit, never throws.
//
// encode() writes the forms OTP 25+ expects: UTF-8 atoms, NEW_FLOAT_EXT, NEW_PID_EXT,
// NEWER_REFERENCE_EXT, NEW_PORT_EXT/V4_PORT_EXT, MAP_EXT, STRING_EXT for short byte lists.
//
// All functions are thread-safe (they share only the atom table, which is).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hypha/term/result.hpp"
#include "hypha/term/term.hpp"

namespace hypha::etf {

inline constexpr std::uint8_t kVersion = 131;

struct DecodeOptions {
  std::size_t max_depth = 1000;              // nested tuples/lists/maps/funs
  std::size_t max_bytes = 64u << 20;         // input size, and size after decompression
  std::size_t max_bignum_bytes = 64u << 10;  // magnitude of one big integer
  std::size_t max_new_atoms = 10000;         // atoms a single message may add to the table
  bool allow_new_atoms = true;               // false: like binary_to_term(B, [safe])
  // Memory the decoded term may take: at most memory_per_byte times the input's size (plus
  // 64 KiB), and never more than max_memory. Estimated as it decodes (16 bytes per element of a
  // tuple, list or map, a header per boxed value, the bytes of binaries and big integers), so a
  // message that would blow up in memory is refused before it is built. A list of 32 M [] takes
  // 32 MiB on the wire and ~512 MiB decoded: refused with these defaults.
  std::size_t memory_per_byte = 16;
  std::size_t max_memory = 256u << 20;
  // New atoms left to the sender over its whole connection (a distribution peer's budget), or
  // null for none: each new atom takes one, and decoding fails once none are left.
  std::size_t* atom_budget = nullptr;
  // Atoms for ATOM_CACHE_REF, from a distribution header; empty outside the distribution.
  std::span<const Atom> atom_cache{};
};

struct DecodeError {
  std::size_t offset = 0;  // of the byte where decoding failed
  std::string reason;
  std::string message() const;  // "at byte N: reason"
};

// Decodes exactly one complete term that starts with the version byte 131; trailing bytes are
// an error.
Result<Term, DecodeError> decode(std::span<const std::uint8_t> bytes, const DecodeOptions& opts = {});

// Decodes one term (without a version byte) at the start of `bytes`, for framed protocols where
// terms follow each other. `consumed` is the number of bytes it took.
struct Decoded {
  Term term;
  std::size_t consumed = 0;
};
Result<Decoded, DecodeError> decode_prefix(std::span<const std::uint8_t> bytes,
                                           const DecodeOptions& opts = {});

struct EncodeOptions {
  // 0: plain. 1-9: zlib level, as term_to_binary(T, [{compressed, L}]); kept only when smaller.
  int compression = 0;
};

// 131 followed by the term.
std::vector<std::uint8_t> encode(const Term& t, const EncodeOptions& opts = {});
// Appends the term without a version byte (distribution messages put it after a header).
void encode_append(std::vector<std::uint8_t>& out, const Term& t);
// Bytes encode_append() writes.
std::size_t encoded_size(const Term& t);
// Writes the term (no version byte) at `dst`, which must hold encoded_size(t) bytes; returns the
// end. For callers that size a buffer once for several terms (distribution frames).
std::uint8_t* encode_into(std::uint8_t* dst, const Term& t);

}  // namespace hypha::etf
