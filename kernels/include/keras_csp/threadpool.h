// A persistent pool of worker threads for the fused ops (like XNNPACK's pthreadpool): the workers
// are started once (per LiteRT model, per Python thread count) and reused by every call.
// ParallelFor(n, fn) runs fn(0) .. fn(n - 1), each index exactly once, on the workers and the
// calling thread, and returns when all are done. The kernels split work so that every output
// element is computed by exactly one task with the same arithmetic: results are bit-identical at
// every thread count.
#pragma once

#include <atomic>
#include <chrono>
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
  // A model's invoke is starting: wakes sleeping workers to spin for the next ParallelFor, without
  // waiting, so that their wake-up (~20 us on a VM) overlaps LiteRT's work before the first fused op
  // instead of delaying the op. Only while that op's first ParallelFor came within the workers' spin
  // after the previous Wake(): a model that starts with builtin ops would have a worker spin
  // against LiteRT's threads for nothing.
  void Wake();

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
  std::atomic<uint32_t> wake_calls_{0};  // Wake() calls: a sleeping worker wakes when it changes
  // Wake()'s bookkeeping (under call_mu_): when it was called, whether a ParallelFor has come since,
  // and whether the last one to come did so within the spin.
  std::chrono::steady_clock::time_point wake_time_;
  bool wake_pending_ = false, wake_in_time_ = true;
  std::atomic<bool> stop_{false};
};

// Runs fn(0..n-1) on `pool`, or inline when pool is null, single-threaded or n <= 1.
void ParallelFor(ThreadPool* pool, int n, const std::function<void(int)>& fn);

}  // namespace keras_csp
