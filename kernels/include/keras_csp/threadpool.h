// A persistent pool of worker threads for the fused ops (like XNNPACK's pthreadpool): the workers
// are started once (per LiteRT model, per Python thread count) and reused by every call.
// ParallelFor(n, fn) runs fn(0) .. fn(n - 1), each index exactly once, on the workers and the
// calling thread, and returns when all are done. The kernels split work so that every output
// element is computed by exactly one task with the same arithmetic: results are bit-identical at
// every thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace keras_csp {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1; threads - 1 workers plus the caller
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  void ParallelFor(int n, const std::function<void(int)>& fn);

 private:
  // The call state is one word, so a worker claims a task with one compare-exchange that also
  // checks the call is still the one it woke for: generation (16 bits) | task count n (24 bits) |
  // next task (24 bits). A worker that wakes after the call has ended finds nothing to claim, so
  // the caller never waits for it (on a VM a sleeping worker takes ~20-30 us to wake; before, the
  // caller waited for every worker to check in, making a short conv slower at 2 threads than at 1).
  static constexpr int kCountBits = 24;
  static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;
  static uint32_t Generation(uint64_t s) { return static_cast<uint32_t>(s >> (2 * kCountBits)); }
  static int Count(uint64_t s) { return static_cast<int>((s >> kCountBits) & kCountMask); }
  static int Next(uint64_t s) { return static_cast<int>(s & kCountMask); }

  void WorkerLoop();
  void RunTasks(uint32_t generation);
  void Run(int n, const std::function<void(int)>& fn);

  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one ParallelFor at a time (a LiteRT model runs its nodes one by one)
  std::mutex mu_;
  std::condition_variable wake_, done_;
  // Written by the caller before it publishes the call in state_ (release); read by a worker only
  // after it has claimed a task of that call (acquire), so the call cannot have ended.
  const std::function<void(int)>* fn_ = nullptr;
  std::atomic<uint64_t> state_{0};
  std::atomic<int> completed_{0};  // tasks of the current call that have finished
  std::atomic<bool> stop_{false};
};

// Runs fn(0..n-1) on `pool`, or inline when pool is null, single-threaded or n <= 1.
void ParallelFor(ThreadPool* pool, int n, const std::function<void(int)>& fn);

}  // namespace keras_csp
