// A caching allocator for large CPU tensors: reuse freed blocks instead of returning them to the OS.
//
// Why: a training step frees and re-allocates the same activation sizes every step. With glibc, a large
// tensor either comes from the heap (fast, but the heap fragments and holds peak RSS well above the live
// memory) or from a fresh mmap (lean, but every step faults every page in again, and the tail of each
// tensor that does not fill a 2 MiB huge page faults in 4 KiB pages, ~6x the cost per byte). Here large
// blocks are mapped 2 MiB-aligned on transparent huge pages and, once freed, kept for reuse by a request of
// the same size or up to half as large. The cache never holds the process above its own high-water mark:
// when mapping a new block would take the mapped total (blocks in use + cached) past the most ever in use,
// the longest-unused cached blocks are unmapped first. Small tensors stay with PyTorch's default allocator.
//
// Built and loaded by videomae.training.memory (g++ against the installed torch's headers; no Python API).

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

struct FreeBlock {
  void* ptr;
  size_t size;
};

class HugePageCache final : public c10::Allocator {
 public:
  void configure(size_t min_bytes) {
    std::lock_guard<std::mutex> guard(mutex_);
    min_bytes_ = min_bytes;
  }

  c10::DataPtr allocate(size_t nbytes) override {
    if (nbytes < min_bytes_) return fallback_->allocate(nbytes);
    void* ptr = take(nbytes);
    if (c10::memoryProfilingEnabled()) {
      c10::reportMemoryUsageToProfiler(ptr, static_cast<int64_t>(nbytes), 0, 0, c10::Device(c10::DeviceType::CPU));
    }
    return {ptr, ptr, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // cached (free) bytes, bytes in use, most bytes ever in use, blocks mapped so far
  void stats(uint64_t* out) {
    std::lock_guard<std::mutex> guard(mutex_);
    out[0] = cached_bytes_;
    out[1] = used_bytes_;
    out[2] = high_water_;
    out[3] = maps_;
  }

  void lock() { mutex_.lock(); }
  void unlock() { mutex_.unlock(); }

  static HugePageCache& instance() {
    static HugePageCache* cache = new HugePageCache();  // never destroyed: tensors may outlive static teardown
    return *cache;
  }

 private:
  using Idle = std::list<FreeBlock>;  // oldest first

  static void release(void* ptr) { instance().give_back(ptr); }

  void* take(size_t nbytes) {
    const size_t size = round_up(nbytes, kPage);
    std::lock_guard<std::mutex> guard(mutex_);
    void* ptr = nullptr;
    size_t block = size;
    auto fit = by_size_.lower_bound(size);  // the smallest cached block that is large enough
    if (fit != by_size_.end() && fit->first <= 2 * size) {
      auto last = by_size_.upper_bound(fit->first);
      --last;  // of equal sizes, the most recently freed (warmest)
      ptr = last->second->ptr;
      block = last->second->size;
      cached_bytes_ -= block;
      idle_.erase(last->second);
      by_size_.erase(last);
    } else {
      ptr = map(size);
    }
    used_.emplace(ptr, block);
    used_bytes_ += block;
    high_water_ = std::max(high_water_, used_bytes_);
    while (!idle_.empty() && used_bytes_ + cached_bytes_ > high_water_) unmap_oldest();
    return ptr;
  }

  void give_back(void* ptr) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto it = used_.find(ptr);
    if (it == used_.end()) return;  // not ours: cannot happen, DataPtr pairs the deleter with this allocator
    if (c10::memoryProfilingEnabled()) {
      c10::reportMemoryUsageToProfiler(ptr, -static_cast<int64_t>(it->second), 0, 0,
                                       c10::Device(c10::DeviceType::CPU));
    }
    idle_.push_back({ptr, it->second});
    by_size_.emplace(it->second, std::prev(idle_.end()));
    cached_bytes_ += it->second;  // the mapped total is unchanged: nothing to unmap
    used_bytes_ -= it->second;
    used_.erase(it);
  }

  void unmap_oldest() {
    const FreeBlock& oldest = idle_.front();
    auto range = by_size_.equal_range(oldest.size);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == idle_.begin()) {
        by_size_.erase(it);
        break;
      }
    }
    munmap(oldest.ptr, oldest.size);
    cached_bytes_ -= oldest.size;
    idle_.pop_front();
  }

  // size bytes (a multiple of 4 KiB) at a 2 MiB boundary, on transparent huge pages
  void* map(size_t size) {
    const size_t span = size + kHugePage;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {  // out of address space or memory: give back every cached block, then retry once
      while (!idle_.empty()) unmap_oldest();
      raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    TORCH_CHECK(raw != MAP_FAILED, "CPU tensor cache: out of memory mapping ", size, " bytes");
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = round_up(start, kHugePage);
    if (aligned > start) munmap(raw, aligned - start);
    const uintptr_t end = start + span;
    if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
    void* ptr = reinterpret_cast<void*>(aligned);
    madvise(ptr, size, MADV_HUGEPAGE);  // advisory: without THP the block is simply on 4 KiB pages
    ++maps_;
    return ptr;
  }

  std::mutex mutex_;
  c10::Allocator* fallback_ = c10::GetDefaultCPUAllocator();
  size_t min_bytes_ = size_t{1} << 20;
  uint64_t cached_bytes_ = 0, used_bytes_ = 0, high_water_ = 0, maps_ = 0;
  Idle idle_;
  std::multimap<size_t, Idle::iterator> by_size_;
  std::unordered_map<void*, size_t> used_;
};

}  // namespace

extern "C" {

// Route CPU allocations of at least min_bytes through the cache (idempotent; the last call's settings win).
void videomae_cpu_cache_install(uint64_t min_bytes) {
  static std::once_flag once;
  HugePageCache& cache = HugePageCache::instance();
  cache.configure(min_bytes);
  std::call_once(once, [&cache] {
    // a forked child (DataLoader worker) must not inherit the lock held by another thread
    pthread_atfork([] { HugePageCache::instance().lock(); }, [] { HugePageCache::instance().unlock(); },
                   [] { HugePageCache::instance().unlock(); });
    c10::SetCPUAllocator(&cache, /*priority=*/1);
  });
}

void videomae_cpu_cache_stats(uint64_t* out) { HugePageCache::instance().stats(out); }

}  // extern "C"
