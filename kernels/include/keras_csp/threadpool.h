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
  void WorkerLoop();
  void RunTasks();

  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one ParallelFor at a time (a LiteRT model runs its nodes one by one)
  std::mutex mu_;
  std::condition_variable wake_, done_;
  // Written by the caller before the generation bump (release), read by workers after (acquire).
  const std::function<void(int)>* fn_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> pending_{0};  // workers that have not finished the current call
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

// Runs fn(0..n-1) on `pool`, or inline when pool is null, single-threaded or n <= 1.
void ParallelFor(ThreadPool* pool, int n, const std::function<void(int)>& fn);

}  // namespace keras_csp
