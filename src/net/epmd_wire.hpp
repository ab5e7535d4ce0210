// The fields an ALIVE2_REQ and a PORT2_RESP share (private to the net library): PortNo,
// NodeType, Protocol, HighestVersion, LowestVersion, NLen, NodeName, ELen, Extra.
#pragma once

#include <span>
#include <string>

#include "bytes.hpp"
#include "hypha/net/epmd.hpp"
#include "hypha/term/result.hpp"

namespace hypha::net {

inline void put_node_entry(Bytes& b, const NodeEntry& e) {
  put16(b, e.port);
  b.push_back(e.type);
  b.push_back(e.protocol);
  put16(b, e.highest);
  put16(b, e.lowest);
  put16(b, static_cast<std::uint16_t>(e.name.size()));
  b.insert(b.end(), e.name.begin(), e.name.end());
  put16(b, static_cast<std::uint16_t>(e.extra.size()));
  b.insert(b.end(), e.extra.begin(), e.extra.end());
}

// Reads the fields from `p` (which starts at PortNo). The error names the part that is cut
// short: "fields", "name" (with the ELen after it when `need_extra`) or "extra". Without
// `need_extra`, what ends after the name is an entry without extra.
inline Result<NodeEntry, std::string> parse_node_entry(std::span<const std::uint8_t> p, bool need_extra) {
  if (p.size() < 10) return unexpected(std::string("fields"));
  NodeEntry e;
  e.port = get16(&p[0]);
  e.type = p[2];
  e.protocol = p[3];
  e.highest = get16(&p[4]);
  e.lowest = get16(&p[6]);
  const std::size_t nlen = get16(&p[8]);
  if (p.size() < 10 + nlen + (need_extra ? 2 : 0)) return unexpected(std::string("name"));
  e.name.assign(reinterpret_cast<const char*>(&p[10]), nlen);
  if (p.size() < 12 + nlen) return e;
  const std::size_t elen = get16(&p[10 + nlen]);
  if (p.size() < 12 + nlen + elen) {
    if (need_extra) return unexpected(std::string("extra"));
    return e;
  }
  e.extra.assign(reinterpret_cast<const char*>(&p[12 + nlen]), elen);
  return e;
}

}  // namespace hypha::net
