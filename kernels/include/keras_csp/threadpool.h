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
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace keras_csp {

// How a ParallelFor hands its tasks to the threads. kContiguous: each thread (the caller is thread
// 0) runs a contiguous range of the tasks first, then steals from the back of the others
// (pthreadpool's scheme): the same output rows stay on the same core from call to call. kFirstCome:
// every thread takes the next task in order, so neighbouring tasks run side by side; the KxK conv
// bands are planned for it (BandPlan).
enum class TaskOrder { kContiguous, kFirstCome };

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1; threads - 1 workers plus the caller
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  void ParallelFor(int n, const std::function<void(int)>& fn, TaskOrder order = TaskOrder::kContiguous);
  // First task of thread t's range of n tasks (thread 0 is the caller): ceil(n t / threads), so
  // the larger ranges go to the first threads: the caller starts before any worker.
  static int RangeStart(int n, int threads, int t) {
    return static_cast<int>((int64_t{n} * t + threads - 1) / threads);
  }
  // A model's invoke is starting: wakes sleeping workers to spin for the next ParallelFor, without
  // waiting, so that their wake-up (~20 us on a VM) overlaps LiteRT's work before the first fused op
  // instead of delaying the op. Only while that op's first ParallelFor came within the workers' spin
  // after the previous Wake(): a model that starts with builtin ops would have a worker spin
  // against LiteRT's threads for nothing.
  void Wake();

 private:
  // TaskOrder::kContiguous gives thread t the range [RangeStart(t), RangeStart(t + 1)); kFirstCome
  // puts every task in range 0, which all threads take from the front. Contiguous ranges keep the
  // same output rows and pixels on the same core from call to call: a shared counter handed them out
  // in whatever order the threads came, so output lines moved between the cores' caches every call
  // (Zen 4, 2 threads, avx2 depthwise 3x3 28x28x384: 86 -> 76 us).
  //
  // The call state is one word, so a worker sees a new call with one load: generation (16 bits) |
  // task count n (24 bits) | 1 for TaskOrder::kFirstCome. Each range is one word too, so a thread
  // claims a task with one compare-exchange that also checks the call is still the one it woke
  // for: generation (16 bits) | front (24 bits) | back (24 bits). A worker that wakes after the
  // call has ended finds nothing to claim, so the caller never waits for it (on a VM a sleeping
  // worker takes ~20-30 us to wake; before, the caller waited for every worker to check in, making
  // a short conv slower at 2 threads than at 1).
  static constexpr int kCountBits = 24;
  static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;
  static uint32_t Generation(uint64_t s) { return static_cast<uint32_t>(s >> (2 * kCountBits)); }
  static int Count(uint64_t s) { return static_cast<int>((s >> kCountBits) & kCountMask); }
  static bool FirstCome(uint64_t s) { return (s & 1) != 0; }
  static int Front(uint64_t r) { return static_cast<int>((r >> kCountBits) & kCountMask); }
  static int Back(uint64_t r) { return static_cast<int>(r & kCountMask); }
  static uint64_t Range(uint32_t generation, int front, int back) {
    return uint64_t{generation} << (2 * kCountBits) | uint64_t(front) << kCountBits | uint64_t(back);
  }
  // One range per thread, each on its own cache line (the threads claim from them concurrently).
  struct alignas(64) TaskRange {
    std::atomic<uint64_t> word{0};
  };

  void WorkerLoop(int thread);
  // Runs tasks of call `generation` as thread `thread`: its own range, then the others' backs.
  void RunTasks(uint32_t generation, int thread);
  // Claims a task of range r: from the front (its owner) or the back (a thief); -1 when r is empty
  // or belongs to another call.
  int Claim(TaskRange& r, uint32_t generation, bool front);
  void Run(int n, const std::function<void(int)>& fn, TaskOrder order);

  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one ParallelFor at a time (a LiteRT model runs its nodes one by one)
  std::mutex mu_;
  std::condition_variable wake_, done_;
  // Written by the caller before it publishes the call in state_ (release); read by a worker only
  // after it has claimed a task of that call (acquire), so the call cannot have ended.
  const std::function<void(int)>* fn_ = nullptr;
  std::atomic<uint64_t> state_{0};
  std::unique_ptr<TaskRange[]> ranges_;  // threads() of them
  std::atomic<int> completed_{0};  // tasks of the current call that have finished
  std::atomic<uint32_t> wake_calls_{0};  // Wake() calls: a sleeping worker wakes when it changes
  // Wake()'s bookkeeping (under call_mu_): when it was called, whether a ParallelFor has come since,
  // and whether the last one to come did so within the spin.
  std::chrono::steady_clock::time_point wake_time_;
  bool wake_pending_ = false, wake_in_time_ = true;
  std::atomic<bool> stop_{false};
};

// Runs fn(0..n-1) on `pool`, or inline when pool is null, single-threaded or n <= 1.
void ParallelFor(ThreadPool* pool, int n, const std::function<void(int)>& fn,
                 TaskOrder order = TaskOrder::kContiguous);

}  // namespace keras_csp
