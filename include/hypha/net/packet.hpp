// Distribution packets: what follows the 4-byte length of a frame once nodes are connected
// (erl_dist_protocol.html, "Protocol between connected nodes"; erl_ext_dist.html, "Distribution
// Header"). A packet is either pass-through (112, then each term after 131) or a normal
// distribution header (131 68 with atom cache references, then the terms without version bytes),
// followed by a control message and, for some, a payload. Input is untrusted: any fault is an error
// saying why, never a crash.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "hypha/net/connection.hpp"
#include "hypha/term/etf.hpp"

namespace hypha::net {

// A connection's atom cache: 8 segments of 256 entries, filled by the headers the peer sends.
using AtomCache = std::array<std::optional<Atom>, 2048>;

struct Packet {
  Term control;
  std::optional<Term> payload;
};

// Parses one packet, updating `cache` from its distribution header. New atoms that the header
// introduces count against opts.max_new_atoms and the connection's opts.atom_budget.
Result<Packet, std::string> parse_packet(std::span<const std::uint8_t> packet, AtomCache& cache,
                                         const etf::DecodeOptions& opts);

// A whole frame (length included) for a control message and optional payload: with an empty
// distribution header when the peer negotiated DIST_HDR_ATOM_CACHE (BEAM then refuses
// pass-through), pass-through otherwise. Sized once and written once.
Frame make_frame(const Term& control, const Term* payload, bool dist_header);
// The same with a payload already encoded (etf::encode_into's bytes, without the version byte),
// for one message framed for several nodes.
Frame make_frame(const Term& control, std::span<const std::uint8_t> encoded_payload, bool dist_header);

}  // namespace hypha::net
