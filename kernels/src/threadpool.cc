// Persistent worker pool. Workers spin briefly on the generation counter before sleeping, so
// back-to-back convs (a fused dense block runs dozens) do not pay a futex wake each.
#include "keras_csp/threadpool.h"

#include <algorithm>
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
  ranges_.reset(new TaskRange[workers + 1]);
  workers_.reserve(workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { WorkerLoop(i + 1); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_.store(true, std::memory_order_release);
    const uint64_t s = state_.load(std::memory_order_relaxed);
    state_.store(uint64_t{(Generation(s) + 1u) & 0xffff} << (2 * kCountBits), std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::Claim(TaskRange& r, uint32_t generation, bool front) {
  uint64_t w = r.word.load(std::memory_order_acquire);
  for (;;) {
    if (Generation(w) != generation || Front(w) >= Back(w)) return -1;
    // The whole word (generation, front, back) must match: the task is this very call's.
    const uint64_t claimed = front ? w + (uint64_t{1} << kCountBits) : w - 1;
    if (r.word.compare_exchange_weak(w, claimed, std::memory_order_acq_rel, std::memory_order_acquire))
      return front ? Front(w) : Back(w) - 1;
  }
}

void ThreadPool::RunTasks(uint32_t generation, int thread) {
  const int threads = this->threads();
  const uint64_t s = state_.load(std::memory_order_acquire);
  if (Generation(s) != generation) return;  // that call has ended
  const int n = Count(s);
  const bool first_come = FirstCome(s);
  for (int i = 0; i < threads; ++i) {
    const int victim = (thread + i) % threads;  // i == 0: this thread's own range, from the front
    for (int task; (task = Claim(ranges_[victim], generation, first_come || i == 0)) >= 0;) {
      (*fn_)(task);
      if (completed_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::lock_guard<std::mutex> l(mu_);  // the caller may be about to sleep on done_
        done_.notify_all();
      }
    }
  }
}

void ThreadPool::WorkerLoop(int thread) {
  uint32_t seen = 0, woken = 0;
  for (;;) {
    woken = wake_calls_.load(std::memory_order_acquire);  // awake now: earlier Wake() calls are served
    // Spin briefly for the next call (the convs of a fused block come back to back), then sleep.
    // The spin is bounded in time, not iterations (a PAUSE takes ~10-150 cycles depending on the
    // core): a spinning worker steals a core from LiteRT's own threads running the next ops.
    uint32_t g = Generation(state_.load(std::memory_order_acquire));
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (g == seen) {
      for (int i = 0; i < 32 && g == seen; ++i) {
        KCSP_PAUSE();
        g = Generation(state_.load(std::memory_order_acquire));
      }
      if (std::chrono::steady_clock::now() >= spin_until) break;
    }
    const auto yield_until = spin_until + YieldSpin();
    while (g == seen && std::chrono::steady_clock::now() < yield_until) {
      std::this_thread::yield();
      g = Generation(state_.load(std::memory_order_acquire));
    }
    if (g == seen) {
      std::unique_lock<std::mutex> l(mu_);
      wake_.wait(l, [&] {
        return Generation(state_.load(std::memory_order_acquire)) != seen ||
               wake_calls_.load(std::memory_order_acquire) != woken;
      });
      g = Generation(state_.load(std::memory_order_acquire));
      if (g == seen) continue;  // Wake(): spin for the call that is coming
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    RunTasks(g, thread);
  }
}

void ThreadPool::Run(int n, const std::function<void(int)>& fn, TaskOrder order) {
  std::lock_guard<std::mutex> call(call_mu_);
  if (wake_pending_) {
    wake_pending_ = false;
    wake_in_time_ = std::chrono::steady_clock::now() - wake_time_ < kSpin;
  }
  fn_ = &fn;
  completed_.store(0, std::memory_order_relaxed);
  uint32_t generation;
  {
    std::lock_guard<std::mutex> l(mu_);  // a worker between its wait predicate and sleeping sees it
    generation = (Generation(state_.load(std::memory_order_relaxed)) + 1) & 0xffff;
    const int threads = this->threads();
    const bool first_come = order == TaskOrder::kFirstCome;  // every task in range 0
    for (int t = 0; t < threads; ++t) {
      const uint64_t range = first_come ? Range(generation, 0, t == 0 ? n : 0)
                                        : Range(generation, RangeStart(n, threads, t), RangeStart(n, threads, t + 1));
      ranges_[t].word.store(range, std::memory_order_relaxed);
    }
    state_.store(uint64_t{generation} << (2 * kCountBits) | uint64_t(n) << kCountBits | (first_come ? 1u : 0u),
                 std::memory_order_release);
  }
  wake_.notify_all();
  RunTasks(generation, 0);
  // Tasks a worker claimed may still be running; tasks nobody claimed the caller ran itself.
  for (int spin = 0; spin < 200000 && completed_.load(std::memory_order_acquire) != n; ++spin) KCSP_PAUSE();
  if (completed_.load(std::memory_order_acquire) != n) {
    std::unique_lock<std::mutex> l(mu_);
    done_.wait(l, [&] { return completed_.load(std::memory_order_acquire) == n; });
  }
  fn_ = nullptr;
}

void ThreadPool::Wake() {
  if (workers_.empty()) return;
  {
    std::lock_guard<std::mutex> call(call_mu_);
    wake_time_ = std::chrono::steady_clock::now();
    wake_pending_ = true;
    if (!wake_in_time_) return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);  // as Run: a worker between its predicate and sleeping sees it
    wake_calls_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
}

void ThreadPool::ParallelFor(int n, const std::function<void(int)>& fn, TaskOrder order) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  constexpr int kMaxTasks = static_cast<int>(kCountMask);
  if (n <= kMaxTasks) return Run(n, fn, order);
  // More indices than the state word counts: each task runs a contiguous run of them.
  const int per = (n + kMaxTasks - 1) / kMaxTasks, tasks = (n + per - 1) / per;
  Run(
      tasks, [&](int t) {
        for (int i = t * per, end = std::min(n, i + per); i < end; ++i) fn(i);
      },
      order);
}

void ParallelFor(ThreadPool* pool, int n, const std::function<void(int)>& fn, TaskOrder order) {
  if (pool != nullptr) return pool->ParallelFor(n, fn, order);  // runs inline itself when it can't split
  for (int i = 0; i < n; ++i) fn(i);
}

}  // namespace keras_csp
