// Storage for large binaries, kept for reuse when freed. A node receiving a stream of large
// messages allocates one binary per message and frees it soon after; glibc gives such blocks back
// to the kernel, so each message paid page faults to zero-fill fresh memory (a third of a
// receiving node's CPU at 64 KiB messages, `perf record -e page-faults`). Blocks from kMinBytes
// to kMaxBytes are rounded up to whole pages and cached by size, up to kCachedBytes in all.
#pragma once

#include <cstddef>

namespace hypha::detail {

inline constexpr std::size_t kBlockCacheMinBytes = 16 * 1024;
inline constexpr std::size_t kBlockCacheMaxBytes = 4 * 1024 * 1024;

// A block of at least `bytes` (any size: small ones come from operator new directly).
void* block_alloc(std::size_t bytes);
// Gives back a block from block_alloc(bytes), with the same `bytes`.
void block_free(void* p, std::size_t bytes) noexcept;

}  // namespace hypha::detail
