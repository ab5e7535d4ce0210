#include "hypha/net/packet.hpp"

namespace hypha::net {

namespace {

// Reads a normal distribution header after 131 68, returning the atoms its references name.
Result<std::vector<Atom>, std::string> read_dist_header(std::span<const std::uint8_t> p, std::size_t& pos,
                                                       AtomCache& cache, std::size_t max_new_atoms,
                                                       std::size_t* budget) {
  auto need = [&](std::size_t n) { return p.size() - pos >= n; };
  if (!need(1)) return unexpected(std::string("truncated distribution header"));
  const std::size_t n = p[pos++];
  std::vector<Atom> refs;
  if (n == 0) return refs;
  const std::size_t flag_bytes = n / 2 + 1;
  if (!need(flag_bytes)) return unexpected(std::string("truncated distribution header flags"));
  const std::uint8_t* flags = &p[pos];
  pos += flag_bytes;
  // Flags for reference i are in byte i/2, low half for even i; the LongAtoms flag follows them.
  auto nibble = [&](std::size_t i) { return (i % 2 == 0) ? (flags[i / 2] & 0x0F) : (flags[i / 2] >> 4); };
  const bool long_atoms = nibble(n) & 1;
  std::size_t new_atoms = 0;
  refs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned f = nibble(i);
    if (!need(1)) return unexpected(std::string("truncated atom cache reference"));
    const std::size_t slot = (f & 7) * 256 + p[pos++];
    if (f & 8) {  // a new cache entry: the atom's text follows
      std::size_t len;
      if (long_atoms) {
        if (!need(2)) return unexpected(std::string("truncated atom cache entry"));
        len = (std::size_t{p[pos]} << 8) | p[pos + 1];
        pos += 2;
      } else {
        if (!need(1)) return unexpected(std::string("truncated atom cache entry"));
        len = p[pos++];
      }
      if (!need(len)) return unexpected(std::string("truncated atom cache entry text"));
      const std::string_view text(reinterpret_cast<const char*>(&p[pos]), len);
      pos += len;
      auto known = Atom::existing(text);
      if (!known) {
        if (++new_atoms > max_new_atoms) return unexpected(std::string("too many new atoms in one header"));
        if (budget && *budget == 0) return unexpected(std::string("new-atom budget of this connection spent"));
        known = Atom::make(text);
        if (!known) return unexpected("atom cache entry: " + known.error());
        if (budget) --*budget;
      }
      cache[slot] = *known;
    } else if (!cache[slot]) {
      return unexpected("reference to an empty atom cache entry " + std::to_string(slot));
    }
    refs.push_back(*cache[slot]);
  }
  return refs;
}

}  // namespace

Result<Packet, std::string> parse_packet(std::span<const std::uint8_t> packet, AtomCache& cache,
                                         const etf::DecodeOptions& opts) {
  etf::DecodeOptions dopts = opts;
  std::size_t pos = 0;
  std::vector<Atom> refs;
  bool versioned = true;  // terms after pass-through carry 131; after a distribution header they do not
  if (packet.size() >= 2 && packet[0] == etf::kVersion && packet[1] == 68) {
    pos = 2;
    auto r = read_dist_header(packet, pos, cache, opts.max_new_atoms, opts.atom_budget);
    if (!r) return unexpected(r.error());
    refs = std::move(*r);
    dopts.atom_cache = refs;
    versioned = false;
  } else if (!packet.empty() && packet[0] == 112) {
    pos = 1;
  } else {
    return unexpected(packet.empty() ? std::string("empty packet")
                                     : "unsupported packet type " + std::to_string(packet[0]));
  }
  auto next_term = [&]() -> Result<Term, std::string> {
    if (versioned) {
      if (pos >= packet.size() || packet[pos] != etf::kVersion) return unexpected(std::string("missing version byte"));
      ++pos;
    }
    auto r = etf::decode_prefix(packet.subspan(pos), dopts);
    if (!r) return unexpected(r.error().message());
    pos += r->consumed;
    return std::move(r->term);
  };
  auto ctrl = next_term();
  if (!ctrl) return unexpected("control message: " + ctrl.error());
  Packet out{std::move(*ctrl), std::nullopt};
  if (pos < packet.size()) {
    auto p = next_term();
    if (!p) return unexpected("payload: " + p.error());
    out.payload = std::move(*p);
  }
  if (pos != packet.size()) return unexpected(std::string("trailing bytes after the payload"));
  return out;
}

namespace {

// The frame's length, its header (pass-through byte or an empty distribution header) and the
// control message; returns where the payload goes.
std::uint8_t* frame_head(Frame& b, const Term& ctrl, std::size_t payload_size, bool has_payload, bool dist_header) {
  const std::size_t head = dist_header ? 3 : 2;
  const std::size_t n = head + etf::encoded_size(ctrl) + (has_payload ? (dist_header ? 0 : 1) + payload_size : 0);
  b.resize(4 + n);
  std::uint8_t* p = b.data();
  *p++ = static_cast<std::uint8_t>(n >> 24);
  *p++ = static_cast<std::uint8_t>(n >> 16);
  *p++ = static_cast<std::uint8_t>(n >> 8);
  *p++ = static_cast<std::uint8_t>(n);
  if (dist_header) {
    *p++ = etf::kVersion;
    *p++ = 68;
    *p++ = 0;
  } else {
    *p++ = 112;
    *p++ = etf::kVersion;
  }
  p = etf::encode_into(p, ctrl);
  if (has_payload && !dist_header) *p++ = etf::kVersion;
  return p;
}

}  // namespace

Frame make_frame(const Term& ctrl, const Term* payload, bool dist_header) {
  Frame b;
  std::uint8_t* p = frame_head(b, ctrl, payload ? etf::encoded_size(*payload) : 0, payload != nullptr, dist_header);
  if (payload) etf::encode_into(p, *payload);
  return b;
}

Frame make_frame(const Term& ctrl, std::span<const std::uint8_t> encoded_payload, bool dist_header) {
  Frame b;
  std::uint8_t* p = frame_head(b, ctrl, encoded_payload.size(), true, dist_header);
  std::copy(encoded_payload.begin(), encoded_payload.end(), p);
  return b;
}

}  // namespace hypha::net
