#include "task_grid.h"

#include <algorithm>
#include <functional>
#include <mutex>

namespace keras_csp {
namespace internal {
namespace {

// Cost model constants, in int8 MACs (~200 per ns at AVX-512 VNNI speed). Measured on Zen 4 at 2
// threads (1x1 256->128 on 28x28): 17 tasks instead of 5 cost ~2 us (so ~0.2 us a task), and two
// channel groups per pixel chunk (each reading the chunk's input and computing its corrections)
// ~6 us more than one (~6 MACs per input byte).
constexpr int64_t kTaskCost = int64_t{1} << 16;
constexpr int64_t kInputByteCost = 8;
// More tasks than this per thread are not tried (the hand-out and tables would dominate).
constexpr int kMaxTasksPerThread = 32;

struct Key {
  int pixels, batch, blocks, mr, max_chunk, threads;
  int64_t chunk_pixels, unit, bytes;
  bool operator==(const Key& o) const {
    return pixels == o.pixels && batch == o.batch && blocks == o.blocks && mr == o.mr &&
           max_chunk == o.max_chunk && threads == o.threads && chunk_pixels == o.chunk_pixels &&
           unit == o.unit && bytes == o.bytes;
  }
};

// The search below takes a few microseconds, more than a 7x7 conv; every conv shape keeps its
// answer here (a fused dense block has dozens of shapes, so a small per-thread cache thrashed).
// Direct-mapped by a hash of the key; a collision only costs a new search.
constexpr int kSlots = 1024;
struct Slot {
  bool used = false;
  Key key{};
  int chunk = 0, groups = 0;
};
std::mutex g_cache_mu;
Slot g_cache[kSlots];

size_t Hash(const Key& k) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t v : {int64_t{k.pixels}, int64_t{k.batch}, int64_t{k.blocks}, int64_t{k.mr},
                    int64_t{k.max_chunk}, int64_t{k.threads}, k.chunk_pixels, k.unit, k.bytes})
    h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull;
  return static_cast<size_t>(h % kSlots);
}

}  // namespace

void TaskGrid::Set(int c, int groups, int pixels, int batch, int blocks) {
  chunk = c;
  chunks = (pixels + chunk - 1) / chunk;
  blocks_per_group = (blocks + groups - 1) / groups;
  block_groups = (blocks + blocks_per_group - 1) / blocks_per_group;
  tasks = batch * chunks * block_groups;
}

int64_t TaskGrid::Score(int pixels, int blocks, int threads, int64_t unit, int64_t bytes) const {
  // Loads as a min-heap (std::greater): the next task goes to the least-loaded thread.
  constexpr int kMaxThreads = 256;
  int64_t load[kMaxThreads] = {};
  const int n = std::min(std::max(threads, 1), kMaxThreads);
  int64_t largest = 0;
  for (int t = 0; t < tasks; ++t) {
    const Task k = At(t, pixels, blocks);
    const int64_t cost = int64_t{k.pixels} * ((k.block_end - k.block_begin) * unit + bytes * kInputByteCost) + kTaskCost;
    largest = std::max(largest, cost);
    std::pop_heap(load, load + n, std::greater<int64_t>());
    load[n - 1] += cost;
    std::push_heap(load, load + n, std::greater<int64_t>());
  }
  return *std::max_element(load, load + n) + largest / 4;
}

TaskGrid::TaskGrid(int pixels, int batch, int blocks, int mr, int max_chunk, int64_t chunk_pixels, int threads,
                   int64_t unit, int64_t bytes) {
  // One thread: the L2-sized chunk (at most the image, rounded up to whole register tiles).
  const int rounded = (pixels + mr - 1) / mr * mr;
  const int l2_chunk =
      std::min(max_chunk, std::max(mr, static_cast<int>(std::min<int64_t>(rounded, chunk_pixels / mr * mr))));
  Set(l2_chunk, 1, pixels, batch, blocks);
  if (threads <= 1) return;
  const Key key{pixels, batch, blocks, mr, max_chunk, threads, chunk_pixels, unit, bytes};
  Slot& slot = g_cache[Hash(key)];
  {
    std::lock_guard<std::mutex> l(g_cache_mu);
    if (slot.used && slot.key == key) {
      Set(slot.chunk, slot.groups, pixels, batch, blocks);
      return;
    }
  }
  int64_t best = -1;
  int best_chunk = l2_chunk, best_groups = 1;
  for (int groups = 1; groups <= std::min(blocks, 8); groups *= 2) {
    for (int c = mr; c <= l2_chunk; c += mr) {
      Set(c, groups, pixels, batch, blocks);
      if (tasks > kMaxTasksPerThread * threads) continue;
      const int64_t score = Score(pixels, blocks, threads, unit, bytes);
      if (best < 0 || score < best) {
        best = score;
        best_chunk = c;
        best_groups = groups;
      }
    }
  }
  Set(best_chunk, best_groups, pixels, batch, blocks);
  std::lock_guard<std::mutex> l(g_cache_mu);
  slot.used = true;
  slot.key = key;
  slot.chunk = best_chunk;
  slot.groups = best_groups;
}

}  // namespace internal
}  // namespace keras_csp
