// Distribution capability flags (erts dist.h / kernel dist.hrl) and the set hypha advertises.
#pragma once

#include <cstdint>
#include <string>

namespace hypha::net::dflag {

inline constexpr std::uint64_t kPublished = 0x01;
inline constexpr std::uint64_t kAtomCache = 0x02;
inline constexpr std::uint64_t kExtendedReferences = 0x04;
inline constexpr std::uint64_t kDistMonitor = 0x08;
inline constexpr std::uint64_t kFunTags = 0x10;
inline constexpr std::uint64_t kDistMonitorName = 0x20;
inline constexpr std::uint64_t kHiddenAtomCache = 0x40;
inline constexpr std::uint64_t kNewFunTags = 0x80;
inline constexpr std::uint64_t kExtendedPidsPorts = 0x100;
inline constexpr std::uint64_t kExportPtrTag = 0x200;
inline constexpr std::uint64_t kBitBinaries = 0x400;
inline constexpr std::uint64_t kNewFloats = 0x800;
inline constexpr std::uint64_t kUnicodeIo = 0x1000;
inline constexpr std::uint64_t kDistHdrAtomCache = 0x2000;
inline constexpr std::uint64_t kSmallAtomTags = 0x4000;
inline constexpr std::uint64_t kUtf8Atoms = 0x10000;
inline constexpr std::uint64_t kMapTag = 0x20000;
inline constexpr std::uint64_t kBigCreation = 0x40000;
inline constexpr std::uint64_t kSendSender = 0x80000;
inline constexpr std::uint64_t kBigSeqtraceLabels = 0x100000;
inline constexpr std::uint64_t kExitPayload = 0x400000;
inline constexpr std::uint64_t kFragments = 0x800000;
inline constexpr std::uint64_t kHandshake23 = 0x1000000;
inline constexpr std::uint64_t kUnlinkId = 0x2000000;
inline constexpr std::uint64_t kMandatory25Digest = 0x4000000;
inline constexpr std::uint64_t kSpawn = 1ull << 32;
inline constexpr std::uint64_t kNameMe = 1ull << 33;
inline constexpr std::uint64_t kV4Nc = 1ull << 34;
inline constexpr std::uint64_t kAlias = 1ull << 35;

// What OTP 25 requires (MANDATORY_DFLAGS_25); the digest bit stands for all of them.
inline constexpr std::uint64_t kMandatory25 = kExtendedReferences | kFunTags | kExtendedPidsPorts |
                                              kNewFunTags | kExportPtrTag | kBitBinaries | kNewFloats |
                                              kUtf8Atoms | kMapTag | kBigCreation | kHandshake23;
// OTP 26 adds these to the mandatory set.
inline constexpr std::uint64_t kMandatory26 = kMandatory25 | kV4Nc | kUnlinkId;

// What hypha advertises: every flag OTP 25-28 requires, spelled out and as the digest bit (OTP 27
// requires the bit itself), plus what hypha implements. DIST_HDR_ATOM_CACHE lets BEAM peers send
// atoms as cache references (hypha reads them; it sends pass-through itself). Not advertised:
// fragments, so peers send every message whole.
inline constexpr std::uint64_t kOurs = kMandatory26 | kMandatory25Digest | kPublished | kDistMonitor | kDistHdrAtomCache |
                                       kDistMonitorName | kSmallAtomTags | kSendSender | kBigSeqtraceLabels |
                                       kExitPayload | kUnicodeIo | kSpawn | kAlias;

// Why a peer's flags are not enough, or empty when they are.
std::string missing_mandatory(std::uint64_t peer_flags);

}  // namespace hypha::net::dflag
