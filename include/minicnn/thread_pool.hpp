#pragma once
// The threads every parallel minicnn loop runs on: the calling thread and num_threads() - 1
// workers that it keeps for the life of the process.
//
// Why not an OpenMP parallel region: a region ends at a barrier that every thread of the team
// must reach, so on a machine shared with another busy process a loop waits, region after region,
// for a worker that the operating system has not scheduled yet, even when the caller could have
// done all the work itself (a training step fell to a quarter of its quiet throughput that way).
// Here a loop is cut into fixed chunks that threads claim from one counter; the caller claims
// chunks too and waits only for chunks that another thread has claimed and not finished. A worker
// that wakes late finds nothing left and goes back to sleep. Which thread runs which chunk varies
// from run to run, so a loop's body must give the same result whatever the split (every kernel
// writes each chunk's output alone and reduces in a fixed order), and results stay bit-identical
// whatever the thread count and whatever else the machine is doing.
//
// One loop runs at a time: a second thread that calls run() waits for the first one's loop, and a
// loop started from inside a chunk (a nested loop) runs on the calling thread alone. The first
// exception a chunk throws is rethrown by run() once every claimed chunk is done; chunks not yet
// started are skipped.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#endif

#include "minicnn/config.hpp"

namespace minicnn::detail {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

class ThreadPool {
 public:
  // The pool of the process. Its workers are started by the first parallel loop.
  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() { resize(0); }

  // Calls body(i) for every i in [0, count) on `threads` threads, the caller included, in chunks of
  // consecutive indices: at most max_chunks_per_thread * threads of them, and at least
  // `min_chunk` indices each (claiming a chunk costs a cache line travelling between cores, so a
  // loop of small items wants few chunks). Returns when all are done.
  template <typename Body>
  void run(int threads, std::int64_t count, std::int64_t min_chunk, Body& body) {
    if (count <= 0) return;
    const std::int64_t smallest = std::max<std::int64_t>(min_chunk, 1);
    const std::int64_t chunks =
        std::min({count, std::int64_t{max_chunks_per_thread} * threads, (count + smallest - 1) / smallest});
    if (threads <= 1 || chunks <= 1 || inside_loop()) {
      for (std::int64_t i = 0; i < count; ++i) body(i);
      return;
    }
    const std::lock_guard<std::mutex> one_loop(run_mutex_);
    resize(threads - 1);
    const std::int64_t grain = (count + chunks - 1) / chunks;
    const std::int64_t real_chunks = (count + grain - 1) / grain;  // the last chunk may be short
    grain_.store(grain, std::memory_order_relaxed);
    count_.store(count, std::memory_order_relaxed);
    invoke_.store(&invoke_chunk<Body>, std::memory_order_relaxed);
    context_.store(&body, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    // Publishing the ticket hands the fields above to every thread that reads it.
    generation_ = (generation_ + 1) & generation_mask;
    ticket_.store(make_ticket(generation_, real_chunks, 0), std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
      { const std::lock_guard<std::mutex> lock(wake_mutex_); }
      wake_.notify_all();
    }
    inside_loop() = true;
    work_on(generation_);
    inside_loop() = false;
    // Wait for the chunks other threads claimed: each is short, so spin first, then give the
    // core away (on a shared machine the thread we wait for may need it).
    for (int spins = 0; finished_.load(std::memory_order_acquire) < real_chunks; ++spins) {
      if (spins < pause_spins) cpu_relax();
      else std::this_thread::yield();
    }
    if (failed_.load(std::memory_order_relaxed)) std::rethrow_exception(error_);
  }

  // The number of workers now running (threads - 1 of the last loop).
  int workers() const { return static_cast<int>(workers_.size()); }

 private:
  // A ticket packs, in one atomic word, the loop's generation, its number of chunks and the next
  // unclaimed chunk: a claim is one compare-and-swap that fails if the loop it read is over.
  static constexpr int chunk_bits = 22;
  static constexpr std::uint64_t chunk_mask = (std::uint64_t{1} << chunk_bits) - 1;
  static constexpr std::uint64_t generation_mask = (std::uint64_t{1} << (64 - 2 * chunk_bits)) - 1;
  static constexpr int max_chunks_per_thread = 32;  // small enough to claim cheaply, many enough to balance
  // Waiting: pauses first, then sched_yield (a worker between loops: for up to idle_yield, then it
  // sleeps). Chosen by measurement (docs/performance.md, "Sharing the machine").
  static constexpr int pause_spins = 200;
  static constexpr std::chrono::microseconds idle_yield{2000};
  static_assert(std::int64_t{max_chunks_per_thread} * 4096 < (std::int64_t{1} << chunk_bits),
                "a ticket holds the chunks of 4096 threads");

  static std::uint64_t make_ticket(std::uint64_t generation, std::int64_t chunks, std::int64_t next) {
    return (generation << (2 * chunk_bits)) | (static_cast<std::uint64_t>(chunks) << chunk_bits) |
           static_cast<std::uint64_t>(next);
  }
  static std::uint64_t ticket_generation(std::uint64_t ticket) { return ticket >> (2 * chunk_bits); }
  static std::int64_t ticket_chunks(std::uint64_t ticket) {
    return static_cast<std::int64_t>((ticket >> chunk_bits) & chunk_mask);
  }
  static std::int64_t ticket_next(std::uint64_t ticket) { return static_cast<std::int64_t>(ticket & chunk_mask); }

  template <typename Body>
  static void invoke_chunk(void* context, std::int64_t begin, std::int64_t end) {
    Body& body = *static_cast<Body*>(context);
    for (std::int64_t i = begin; i < end; ++i) body(i);
  }

  static bool& inside_loop() {
    thread_local bool inside = false;
    return inside;
  }

  ThreadPool() = default;

  // Claims and runs chunks of loop `generation` until none is left (or another loop has begun).
  void work_on(std::uint64_t generation) {
    std::int64_t done = 0;  // counted once at the end: one shared write per thread, not per chunk
    std::uint64_t ticket = ticket_.load(std::memory_order_acquire);
    while (ticket_generation(ticket) == generation && ticket_next(ticket) < ticket_chunks(ticket)) {
      if (!ticket_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        continue;
      // Claimed: the loop cannot end before this chunk is counted, so its fields stay put.
      const std::int64_t chunk = ticket_next(ticket);
      if (!failed_.load(std::memory_order_relaxed)) {
        const std::int64_t grain = grain_.load(std::memory_order_relaxed);
        const std::int64_t begin = chunk * grain;
        const std::int64_t end = std::min(count_.load(std::memory_order_relaxed), begin + grain);
        try {
          invoke_.load(std::memory_order_relaxed)(context_.load(std::memory_order_relaxed), begin, end);
        } catch (...) {
          const std::lock_guard<std::mutex> lock(error_mutex_);
          if (!failed_.load(std::memory_order_relaxed)) error_ = std::current_exception();
          failed_.store(true, std::memory_order_relaxed);
        }
      }
      ++done;
      ticket = ticket_.load(std::memory_order_acquire);
    }
    if (done > 0) finished_.fetch_add(done, std::memory_order_acq_rel);
  }

  void worker(int index) {
    detail::current_thread_index() = index;
    inside_loop() = true;  // a loop inside a chunk runs on this thread alone
    std::uint64_t seen = ticket_generation(ticket_.load(std::memory_order_acquire));
    for (;;) {
      // Wait for the next loop (they come back to back in a training step): a few pauses, then
      // sched_yield for up to idle_yield, then sleep. Yielding rather than spinning matters on a
      // shared machine: a spinning worker holds a core that the thread which is about to start
      // the next loop may be waiting for.
      std::uint64_t generation = seen;
      const auto idle_since = std::chrono::steady_clock::now();
      for (int spins = 0; generation == seen && !stopping_.load(std::memory_order_relaxed); ++spins) {
        if (spins < pause_spins) {
          cpu_relax();
        } else {
          if (spins % 64 == 0 && std::chrono::steady_clock::now() - idle_since > idle_yield) break;
          std::this_thread::yield();
        }
        generation = ticket_generation(ticket_.load(std::memory_order_acquire));
      }
      if (generation == seen && !stopping_.load(std::memory_order_relaxed)) {
        std::unique_lock<std::mutex> lock(wake_mutex_);
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] {
          generation = ticket_generation(ticket_.load(std::memory_order_seq_cst));
          return generation != seen || stopping_.load(std::memory_order_seq_cst);
        });
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      seen = generation;
      work_on(generation);
    }
  }

  // Starts or stops workers so that `count` run. Called with run_mutex_ held (or at exit).
  void resize(int count) {
    if (count == workers()) return;
    if (count < workers()) {
      {
        const std::lock_guard<std::mutex> lock(wake_mutex_);
        stopping_.store(true, std::memory_order_seq_cst);
      }
      wake_.notify_all();
      for (auto& thread : workers_) thread.join();
      workers_.clear();
      stopping_.store(false, std::memory_order_seq_cst);
    }
    while (workers() < count) {
      const int index = workers() + 1;
      workers_.emplace_back([this, index] { worker(index); });
    }
  }

  std::mutex run_mutex_;  // one loop at a time
  std::vector<std::thread> workers_;
  std::uint64_t generation_ = 0;  // of the last loop; written under run_mutex_

  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<std::int64_t> grain_{1}, count_{0}, finished_{0};
  std::atomic<void (*)(void*, std::int64_t, std::int64_t)> invoke_{nullptr};
  std::atomic<void*> context_{nullptr};

  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;

  std::atomic<bool> stopping_{false};
  std::atomic<int> sleeping_{0};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
};

}  // namespace minicnn::detail
