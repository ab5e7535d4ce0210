// ETF tag bytes (erts: erl_ext_dist.html). Private to the term library.
#pragma once

#include <cstdint>

namespace hypha::etf::tag {
inline constexpr std::uint8_t kCompressed = 80;
inline constexpr std::uint8_t kNewFloat = 70;
inline constexpr std::uint8_t kBitBinary = 77;
inline constexpr std::uint8_t kAtomCacheRef = 82;
inline constexpr std::uint8_t kNewPid = 88;
inline constexpr std::uint8_t kNewPort = 89;
inline constexpr std::uint8_t kNewerReference = 90;
inline constexpr std::uint8_t kSmallInteger = 97;
inline constexpr std::uint8_t kInteger = 98;
inline constexpr std::uint8_t kFloat = 99;
inline constexpr std::uint8_t kAtom = 100;
inline constexpr std::uint8_t kReference = 101;
inline constexpr std::uint8_t kPort = 102;
inline constexpr std::uint8_t kPid = 103;
inline constexpr std::uint8_t kSmallTuple = 104;
inline constexpr std::uint8_t kLargeTuple = 105;
inline constexpr std::uint8_t kNil = 106;
inline constexpr std::uint8_t kString = 107;
inline constexpr std::uint8_t kList = 108;
inline constexpr std::uint8_t kBinary = 109;
inline constexpr std::uint8_t kSmallBig = 110;
inline constexpr std::uint8_t kLargeBig = 111;
inline constexpr std::uint8_t kNewFun = 112;
inline constexpr std::uint8_t kExport = 113;
inline constexpr std::uint8_t kNewReference = 114;
inline constexpr std::uint8_t kSmallAtom = 115;
inline constexpr std::uint8_t kMap = 116;
inline constexpr std::uint8_t kFun = 117;
inline constexpr std::uint8_t kAtomUtf8 = 118;
inline constexpr std::uint8_t kSmallAtomUtf8 = 119;
inline constexpr std::uint8_t kV4Port = 120;
inline constexpr std::uint8_t kLocal = 121;
}  // namespace hypha::etf::tag
