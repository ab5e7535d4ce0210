#include "block_cache.hpp"

#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace hypha::detail {

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kCachedBytes = 64u << 20;  // at most this much kept, over all sizes

bool cached_size(std::size_t bytes) { return bytes >= kBlockCacheMinBytes && bytes <= kBlockCacheMaxBytes; }
std::size_t rounded(std::size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }

struct Cache {
  std::mutex mu;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;  // by rounded size
  std::size_t bytes = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: blocks may be freed during static destruction
  return *c;
}

}  // namespace

void* block_alloc(std::size_t bytes) {
  if (!cached_size(bytes)) return ::operator new(bytes);
  const std::size_t size = rounded(bytes);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.bytes -= size;
      return p;
    }
  }
  return ::operator new(size);
}

void block_free(void* p, std::size_t bytes) noexcept {
  if (!cached_size(bytes)) {
    ::operator delete(p);
    return;
  }
  const std::size_t size = rounded(bytes);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mu);
    if (c.bytes + size <= kCachedBytes) {
      try {
        c.free_blocks[size].push_back(p);
        c.bytes += size;
        return;
      } catch (const std::bad_alloc&) {
        // no room to remember it: give it back
      }
    }
  }
  ::operator delete(p);
}

}  // namespace hypha::detail
