// How an int8 conv sweep is split into tasks for the thread pool: chunks of output pixels times
// groups of output-channel blocks. Plain data, shared by every variant's sweep (sweep.h).
#pragma once

#include <cstdint>

namespace keras_csp {
namespace internal {

// First of `parts` near-equal runs of `units` units: the first units % parts runs hold one unit
// more. Bands split an image's MR-pixel tiles this way (handed out first come), so a task count
// that is a multiple of the thread count ends together on every thread, and the last (partial)
// tile falls in the smallest, last run, which a thread that finished early picks up. (Equal runs
// plus a short remainder had left a thread idle for most of a run at the end: 3x3/s2 32->64 at
// 80x80, 2 threads, Zen 4, 14 bands, the last of 40 pixels.)
inline int EvenSplitFirst(int units, int parts, int i) {
  const int q = units / parts, r = units % parts;
  return i * q + (i < r ? i : r);
}

// The same with the larger runs spread evenly, so that the contiguous range of runs the pool
// gives each thread (TaskOrder::kContiguous) holds its share: TaskGrid's chunks. (Larger first put
// them all in the first thread's range: 784 pixels in 12 runs of 24-pixel tiles, 432 against 352.)
inline int SpreadSplitFirst(int units, int parts, int i) {
  return static_cast<int>(int64_t{units} * i / parts);
}

// When the last of n tasks of the given costs ends on `threads` threads handed out as ThreadPool
// does: thread t runs its range (ThreadPool::RangeStart) from the front, then, while any
// are left, the last task of the next range that has one; the thread that is free first goes next.
int64_t PoolMakespan(const int64_t* cost, int n, int threads);

// A last partial tile of fewer than mr / 4 pixels is no tile of its own: its pixels join the last
// chunk or band, whose own last tile precedes them on every weight block (its weights in cache).
// As a chunk or band of its own, its one or few pixels swept every weight block again, from L3
// where the weights outgrow L2: 3x3 512->512 at 7x7 (2.4 MB) in bands 24 | 24 | 1 on 2 threads,
// 40 us of a 200 us call (Xeon, AVX-512 VNNI). Returns those pixels (0: none).
inline int TailPixels(int pixels, int mr) {
  const int rest = pixels % mr;
  return pixels > mr && rest < mr / 4 ? rest : 0;
}

// Chunks of output pixels (whole MR-pixel tiles; on one thread sized so that a chunk's input
// stays in L2), times groups of output-channel blocks. On several threads, the chunk and group
// count (and order) whose tasks, handed out in contiguous ranges, finish soonest (TaskGrid::Score).
struct TaskGrid {
  int chunks = 0, block_groups = 0, blocks_per_group = 0, tasks = 0;
  // pixels per tile; tiles per image (the last may be partial); pixels past the last tile that
  // join the last chunk (TailPixels)
  int mr = 1, tiles = 0, tail = 0;
  // Task order within an image: chunk by chunk, each chunk's block groups in turn (false), or
  // group by group. The pool gives each thread a contiguous run of tasks, so group-major splits
  // the channels between threads, each streaming only its groups' weights: balanced on images of
  // too few tiles to split evenly by pixels (7x7, 24-pixel tiles: 24 | 25 pixels).
  bool group_major = false;

  // pixels, batch: output pixels per image and images; blocks: output-channel blocks; mr: pixels
  // per sweep tile; max_chunk: most pixels per task (a multiple of mr); chunk_pixels: pixels whose
  // input fills the L2 budget; macs_per_pixel_block: MACs of one output pixel x one block;
  // input_bytes_per_pixel: what a task reads per output pixel (its cost when two tasks of one
  // chunk read the same input).
  TaskGrid(int pixels, int batch, int blocks, int mr, int max_chunk, int64_t chunk_pixels, int threads,
           int64_t macs_per_pixel_block, int64_t input_bytes_per_pixel);

  // One task: image `batch`, output pixels [first_pixel, first_pixel + pixels), channel blocks
  // [block_begin, block_end).
  struct Task {
    int batch, first_pixel, pixels, block_begin, block_end;
  };
  Task At(int task, int total_pixels, int blocks) const {
    const int in_image = task % (block_groups * chunks);
    const int gi = group_major ? in_image / chunks : in_image % block_groups;
    const int ci = group_major ? in_image % chunks : in_image / block_groups;
    const int first = SpreadSplitFirst(tiles, chunks, ci) * mr, end = SpreadSplitFirst(tiles, chunks, ci + 1) * mr;
    const int block_end = (gi + 1) * blocks_per_group < blocks ? (gi + 1) * blocks_per_group : blocks;
    const int pixel_end = ci + 1 == chunks ? total_pixels : end;  // the last chunk: its partial tile, its tail
    return {task / (block_groups * chunks), first, pixel_end - first, gi * blocks_per_group, block_end};
  }

 private:
  // The cost model: MACs of the busiest of `threads` threads when the pool hands the tasks out
  // (PoolMakespan), with a fixed cost per task and the input reads, plus a quarter of the largest
  // task (a worker that starts late).
  int64_t Score(int pixels, int blocks, int threads, int64_t macs_per_pixel_block,
                int64_t input_bytes_per_pixel) const;
  void Set(int chunk_count, int groups, int batch, int blocks, bool by_group = false);
};

// Bands of a KxK conv on several threads (SweepInt8Bands): runs of output pixels (not whole rows:
// 7 bands of 2 rows on a 14-row image leave one thread 4 and the other 3) that split the image's
// MR-pixel tiles evenly (whole tiles: a 25-pixel band ran a 1-pixel kernel), a tail (TailPixels)
// joining the last band. T to 8T bands per image (several per thread: first-come hand-out evens
// out a worker that starts late), the count with the shortest round-robin makespan plus half a
// band (about what a worker that starts late costs: else 2 bands would win on a 56x56 image,
// leaving no slack). Finer units (a register tile, 6 or 8 pixels on AVX-512) and a cost model with
// the bands' staging and hand-out were tried: 1-3 % faster on 20x20 to 160x160 images, 3-6 %
// slower on 7x7 and 14x14 ones (Zen 4, 2 threads).
struct BandPlan {
  int bands = 1, mr = 1, tiles = 1, tail = 0;

  BandPlan(int pixels, int threads, int mr);
  int First(int i) const { return EvenSplitFirst(tiles, bands, i) * mr + (i >= bands ? tail : 0); }
  int MaxPixels() const { return (tiles + bands - 1) / bands * mr + tail; }
};

}  // namespace internal
}  // namespace keras_csp
