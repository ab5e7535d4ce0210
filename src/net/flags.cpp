#include "hypha/net/flags.hpp"

namespace hypha::net::dflag {

std::string missing_mandatory(std::uint64_t peer) {
  // OTP 25+ may send the digest bit instead of the flags it stands for.
  const std::uint64_t effective = (peer & kMandatory25Digest) ? (peer | kMandatory25) : peer;
  std::string missing;
  auto need = [&](std::uint64_t bit, const char* name) {
    if (!(effective & bit)) missing += missing.empty() ? name : std::string(", ") + name;
  };
  need(kExtendedReferences, "EXTENDED_REFERENCES");
  need(kFunTags, "FUN_TAGS");
  need(kExtendedPidsPorts, "EXTENDED_PIDS_PORTS");
  need(kNewFunTags, "NEW_FUN_TAGS");
  need(kExportPtrTag, "EXPORT_PTR_TAG");
  need(kBitBinaries, "BIT_BINARIES");
  need(kNewFloats, "NEW_FLOATS");
  need(kUtf8Atoms, "UTF8_ATOMS");
  need(kMapTag, "MAP_TAG");
  need(kBigCreation, "BIG_CREATION");
  need(kHandshake23, "HANDSHAKE_23");
  return missing;
}

}  // namespace hypha::net::dflag
