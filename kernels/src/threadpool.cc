// Persistent worker pool. Workers spin briefly on the generation counter before sleeping, so
// back-to-back convs (a fused dense block runs dozens) do not pay a futex wake each.
#include "keras_csp/threadpool.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#define KCSP_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define KCSP_PAUSE() asm volatile("yield")
#else
#define KCSP_PAUSE() ((void)0)
#endif

namespace keras_csp {
namespace {
constexpr std::chrono::microseconds kSpin{20};
// After the PAUSE spin a worker may keep polling with sched_yield before it sleeps (as
// pthreadpool's workers do). Off by default: on 2 vCPUs a polling worker takes the core from
// LiteRT's threads running the next (builtin) ops. Measured on AMD Zen 4, 2 threads: with a 2 ms
// poll, CSPDenseNet-121 with every pattern fused ran 0.82-0.87x the builtin model (and the
// builtin model itself, run between fused runs in the same process, slowed from ~9 to ~10.4 ms);
// with none, 0.87-0.92x. It also made interleaved benchmarks flatter us: bench-kernels --quick at
// 2 threads gave 1.18-1.21x with the poll, 1.00-1.02x without (XNNPACK's runs lost the core).
// Waking a sleeping worker costs about 20 us on such a VM; that is the price.
constexpr std::chrono::microseconds kYieldSpin{0};

// KCSP_POOL_YIELD_US overrides kYieldSpin (experiments on the hand-over between our pool and
// LiteRT's threads); read once.
std::chrono::microseconds YieldSpin() {
  static const std::chrono::microseconds v = [] {
    const char* e = std::getenv("KCSP_POOL_YIELD_US");
    if (e == nullptr || *e == '\0') return kYieldSpin;
    const long us = std::strtol(e, nullptr, 10);
    return std::chrono::microseconds(us < 0 ? 0 : us > 100000 ? 100000 : us);
  }();
  return v;
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int workers = threads > 1 ? threads - 1 : 0;
  workers_.reserve(workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunTasks() {
  for (;;) {
    const int i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n_) break;
    (*fn_)(i);
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly for the next call (the convs of a fused block come back to back), then sleep.
    // The spin is bounded in time, not iterations (a PAUSE takes ~10-150 cycles depending on the
    // core): a spinning worker steals a core from LiteRT's own threads running the next ops.
    uint64_t g = generation_.load(std::memory_order_acquire);
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (g == seen) {
      for (int i = 0; i < 32 && g == seen; ++i) {
        KCSP_PAUSE();
        g = generation_.load(std::memory_order_acquire);
      }
      if (std::chrono::steady_clock::now() >= spin_until) break;
    }
    const auto yield_until = spin_until + YieldSpin();
    while (g == seen && std::chrono::steady_clock::now() < yield_until) {
      std::this_thread::yield();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> l(mu_);
      wake_.wait(l, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    RunTasks();
    // Every worker checks in once per call, so the caller knows no one still reads fn_ / n_.
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> l(mu_);
      done_.notify_all();
    }
  }
}

void ThreadPool::ParallelFor(int n, const std::function<void(int)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> call(call_mu_);
  fn_ = &fn;
  n_ = n;
  next_.store(0, std::memory_order_relaxed);
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> l(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  RunTasks();
  for (int spin = 0; spin < 200000 && pending_.load(std::memory_order_acquire) != 0; ++spin) KCSP_PAUSE();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> l(mu_);
    done_.wait(l, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  fn_ = nullptr;
}

void ParallelFor(ThreadPool* pool, int n, const std::function<void(int)>& fn) {
  if (pool != nullptr) return pool->ParallelFor(n, fn);  // runs inline itself when it can't split
  for (int i = 0; i < n; ++i) fn(i);
}

}  // namespace keras_csp
