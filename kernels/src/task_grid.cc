#include "task_grid.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "keras_csp/threadpool.h"

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
// answer here. A map, not a direct-mapped table: in 1024 slots CSPDenseNet-121's conv shapes had
// collisions, and 8 shapes searched again on every run of the model (2 threads: 940 searches in
// 110 runs, 140 in 10; Score and PoolMakespan were 0.6 % of perf's samples, now ~0).
struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 1469598103934665603ull;
    for (int64_t v : {int64_t{k.pixels}, int64_t{k.batch}, int64_t{k.blocks}, int64_t{k.mr},
                      int64_t{k.max_chunk}, int64_t{k.threads}, k.chunk_pixels, k.unit, k.bytes})
      h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};
struct Plan {
  int chunks = 0, groups = 0;
  bool group_major = false;
};
// Bounded: a process that sees endless new shapes starts over rather than grow without end.
constexpr size_t kMaxPlans = 4096;
std::mutex g_cache_mu;
std::unordered_map<Key, Plan, KeyHash>& Cache() {
  static auto* cache = new std::unordered_map<Key, Plan, KeyHash>();  // never destroyed: used by pool threads
  return *cache;
}

}  // namespace

int64_t PoolMakespan(const int64_t* cost, int n, int threads) {
  const int t_count = std::max(threads, 1);
  std::vector<int> front(t_count), back(t_count);
  std::vector<int64_t> clock(t_count, 0);
  for (int t = 0; t < t_count; ++t) {
    front[t] = ThreadPool::RangeStart(n, t_count, t);
    back[t] = ThreadPool::RangeStart(n, t_count, t + 1);
  }
  for (;;) {
    const int t = static_cast<int>(std::min_element(clock.begin(), clock.end()) - clock.begin());
    int task = -1;
    for (int i = 0; i < t_count && task < 0; ++i) {
      const int v = (t + i) % t_count;  // i == 0: its own range, from the front; then the others' backs
      if (front[v] < back[v]) task = i == 0 ? front[v]++ : --back[v];
    }
    if (task < 0) break;  // every range is empty: the other threads find nothing either
    clock[t] += cost[task];
  }
  int64_t makespan = 0;
  for (int t = 0; t < t_count; ++t) makespan = std::max(makespan, clock[t]);
  return makespan;
}

void TaskGrid::Set(int chunk_count, int groups, int batch, int blocks, bool by_group) {
  chunks = chunk_count;
  group_major = by_group;
  blocks_per_group = (blocks + groups - 1) / groups;
  block_groups = (blocks + blocks_per_group - 1) / blocks_per_group;
  tasks = batch * chunks * block_groups;
}

int64_t TaskGrid::Score(int pixels, int blocks, int threads, int64_t macs_unit, int64_t bytes) const {
  std::vector<int64_t> cost(tasks);
  for (int t = 0; t < tasks; ++t) {
    const Task k = At(t, pixels, blocks);
    cost[t] = int64_t{k.pixels} * ((k.block_end - k.block_begin) * macs_unit + bytes * kInputByteCost) + kTaskCost;
  }
  return PoolMakespan(cost.data(), tasks, threads) + *std::max_element(cost.begin(), cost.end()) / 4;
}

TaskGrid::TaskGrid(int pixels, int batch, int blocks, int mr, int max_chunk, int64_t chunk_pixels, int threads,
                   int64_t macs_unit, int64_t bytes)
    : mr(mr), tiles((pixels - TailPixels(pixels, mr) + mr - 1) / mr), tail(TailPixels(pixels, mr)) {
  // One thread: L2-sized chunks (at most the image).
  const int l2_tiles = std::max(1, static_cast<int>(std::min<int64_t>(max_chunk, chunk_pixels) / mr));
  const int min_chunks = (tiles + l2_tiles - 1) / l2_tiles;
  Set(min_chunks, 1, batch, blocks);
  if (threads <= 1) return;
  const Key key{pixels, batch, blocks, mr, max_chunk, threads, chunk_pixels, macs_unit, bytes};
  {
    std::lock_guard<std::mutex> l(g_cache_mu);
    const auto it = Cache().find(key);
    if (it != Cache().end()) {
      Set(it->second.chunks, it->second.groups, batch, blocks, it->second.group_major);
      return;
    }
  }
  int64_t best = -1;
  int best_chunks = min_chunks, best_groups = 1;
  bool best_group_major = false;
  for (int groups = 1; groups <= std::min(blocks, 8); groups *= 2) {
    for (int n = min_chunks; n <= tiles; ++n) {  // down to one tile per chunk
      Set(n, groups, batch, blocks);
      if (tasks > kMaxTasksPerThread * threads) break;
      for (const bool by_group : {false, true}) {
        if (by_group && (block_groups == 1 || chunks == 1)) continue;  // the same order
        Set(n, groups, batch, blocks, by_group);
        const int64_t score = Score(pixels, blocks, threads, macs_unit, bytes);
        if (best < 0 || score < best) {
          best = score;
          best_chunks = n;
          best_groups = groups;
          best_group_major = by_group;
        }
      }
    }
  }
  Set(best_chunks, best_groups, batch, blocks, best_group_major);
  std::lock_guard<std::mutex> l(g_cache_mu);
  if (Cache().size() >= kMaxPlans) Cache().clear();
  Cache()[key] = Plan{best_chunks, best_groups, best_group_major};
}

BandPlan::BandPlan(int pixels, int threads, int mr)
    : mr(mr), tiles((pixels - TailPixels(pixels, mr) + mr - 1) / mr), tail(TailPixels(pixels, mr)) {
  int best = -1, best_bands = 1;
  // T to 8T bands, at most one per tile (more would repeat the last count).
  for (int want = std::min(threads, tiles); want <= std::min(8 * threads, tiles); ++want) {
    bands = want;  // First() below splits in this many
    int makespan = 0;  // pixels of the busiest thread when bands go round-robin
    for (int t = 0; t < threads; ++t) {
      int load = 0;
      for (int i = t; i < bands; i += threads) load += std::min(pixels, First(i + 1)) - First(i);
      makespan = std::max(makespan, load);
    }
    const int score = makespan + MaxPixels() / 2;
    if (best < 0 || score < best) {
      best = score;
      best_bands = bands;
    }
  }
  bands = best_bands;
}

}  // namespace internal
}  // namespace keras_csp
