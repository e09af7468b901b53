// How an int8 conv sweep is split into tasks for the thread pool: chunks of output pixels times
// groups of output-channel blocks. Plain data, shared by every variant's sweep (sweep.h).
#pragma once

#include <cstdint>

namespace keras_csp {
namespace internal {

// Chunks of `chunk` output pixels (a multiple of MR; on one thread sized so that a chunk's input
// stays in L2), times groups of output-channel blocks. On several threads, the chunk and group
// count whose tasks, handed out dynamically, finish soonest (TaskGrid::Score).
struct TaskGrid {
  int chunk = 0, chunks = 0, block_groups = 0, blocks_per_group = 0, tasks = 0;

  // pixels, batch: output pixels per image and images; blocks: output-channel blocks; mr: pixels
  // per register tile; max_chunk: most pixels per task (a multiple of mr); chunk_pixels: pixels
  // whose input fills the L2 budget; macs_per_pixel_block: MACs of one output pixel x one block;
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
    const int gi = task % block_groups;
    const int first = (task / block_groups) % chunks * chunk;
    const int block_end = (gi + 1) * blocks_per_group < blocks ? (gi + 1) * blocks_per_group : blocks;
    const int pixel_end = first + chunk < total_pixels ? first + chunk : total_pixels;
    return {task / (block_groups * chunks), first, pixel_end - first, gi * blocks_per_group, block_end};
  }

 private:
  // The cost model: MACs of the busiest of `threads` threads when the tasks go, in order, each to the
  // least-loaded thread (what the pool's dynamic hand-out does), with a fixed cost per task and the
  // input reads, plus a quarter of the largest task (a worker that starts late).
  int64_t Score(int pixels, int blocks, int threads, int64_t macs_per_pixel_block,
                int64_t input_bytes_per_pixel) const;
  void Set(int chunk_pixels, int groups, int pixels, int batch, int blocks);
};

}  // namespace internal
}  // namespace keras_csp
