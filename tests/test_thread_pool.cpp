// The thread pool behind every parallel kernel loop (thread_pool.hpp): each index runs exactly
// once whatever the thread count and chunking, thread_index() stays inside [0, threads), a nested
// loop runs on its caller, the first exception reaches the caller and the pool stays usable,
// two threads may start loops at the same time, and the worker count follows set_num_threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "minicnn/config.hpp"
#include "minicnn/ops/cpu/parallel.hpp"
#include "minicnn/thread_pool.hpp"

using minicnn::detail::ThreadPool;

namespace {

// Runs a loop of `count` on `threads` threads; returns how often each index ran.
std::vector<int> visits(int threads, std::int64_t count) {
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(count));
  auto body = [&](std::int64_t i) { seen[static_cast<std::size_t>(i)].fetch_add(1); };
  ThreadPool::instance().run(threads, count, 1, body);
  std::vector<int> result;
  for (const auto& s : seen) result.push_back(s.load());
  return result;
}

}  // namespace

TEST_CASE("thread pool: every index exactly once, for any count and thread count", "[thread_pool]") {
  for (const int threads : {1, 2, 3, 5}) {
    for (const std::int64_t count : {1, 2, 3, 7, 64, 65, 1000, 100003}) {
      const std::vector<int> seen = visits(threads, count);
      INFO("threads " << threads << ", count " << count);
      REQUIRE(seen.size() == static_cast<std::size_t>(count));
      for (std::size_t i = 0; i < seen.size(); ++i) {
        INFO("index " << i);
        REQUIRE(seen[i] == 1);
      }
    }
  }
  REQUIRE(visits(2, 0).empty());
}

TEST_CASE("thread pool: thread_index is below the thread count and workers join in", "[thread_pool]") {
  const int threads = 3;
  std::vector<std::atomic<int>> by_thread(threads);
  std::atomic<int> outside{0};
  auto body = [&](std::int64_t) {
    const int index = minicnn::thread_index();
    if (index < 0 || index >= threads) outside.fetch_add(1);
    else by_thread[static_cast<std::size_t>(index)].fetch_add(1);
    // Long enough per index that sleeping workers wake and claim some chunks.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  };
  ThreadPool::instance().run(threads, 600, 1, body);
  REQUIRE(outside.load() == 0);
  REQUIRE(ThreadPool::instance().workers() == threads - 1);
  int total = 0;
  for (const auto& count : by_thread) total += count.load();
  REQUIRE(total == 600);
  REQUIRE(by_thread[0].load() > 0);  // the caller works too
  REQUIRE(minicnn::thread_index() == 0);
}

TEST_CASE("thread pool: chunks hold at least min_chunk indices", "[thread_pool]") {
  // Which thread ran each index; a chunk is a run of consecutive indices on one thread.
  for (const std::int64_t min_chunk : {7, 25, 100}) {
    std::vector<int> owner(100, -1);
    auto body = [&](std::int64_t i) {
      owner[static_cast<std::size_t>(i)] = minicnn::thread_index();
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    };
    ThreadPool::instance().run(3, 100, min_chunk, body);
    // The chunks are [k * grain, (k + 1) * grain) with grain >= min_chunk: one owner each.
    const std::int64_t grain = (100 + (100 + min_chunk - 1) / min_chunk - 1) / ((100 + min_chunk - 1) / min_chunk);
    INFO("min_chunk " << min_chunk << ", grain " << grain);
    REQUIRE(grain >= min_chunk);
    for (std::int64_t i = 0; i < 100; ++i) {
      INFO("index " << i);
      REQUIRE(owner[static_cast<std::size_t>(i)] == owner[static_cast<std::size_t>(i - i % grain)]);
    }
    if (min_chunk == 100) {
      for (const int o : owner) REQUIRE(o == 0);  // one chunk: the caller alone
    }
  }
}

TEST_CASE("thread pool: a loop inside a chunk runs on that chunk's thread", "[thread_pool]") {
  std::atomic<int> inner_total{0}, wrong_thread{0};
  auto outer = [&](std::int64_t) {
    const int mine = minicnn::thread_index();
    auto inner = [&](std::int64_t) {
      inner_total.fetch_add(1);
      if (minicnn::thread_index() != mine) wrong_thread.fetch_add(1);
    };
    ThreadPool::instance().run(2, 10, 1, inner);
  };
  ThreadPool::instance().run(2, 20, 1, outer);
  REQUIRE(inner_total.load() == 200);
  REQUIRE(wrong_thread.load() == 0);
}

TEST_CASE("thread pool: the first exception reaches the caller, and the pool goes on", "[thread_pool]") {
  std::atomic<int> ran{0};
  auto failing = [&](std::int64_t i) {
    ran.fetch_add(1);
    if (i == 5) throw std::runtime_error("index 5 failed");
  };
  REQUIRE_THROWS_WITH(ThreadPool::instance().run(2, 1000, 1, failing), "index 5 failed");
  REQUIRE(ran.load() >= 1);
  REQUIRE(ran.load() <= 1000);
  const std::vector<int> seen = visits(2, 500);
  for (const int s : seen) REQUIRE(s == 1);
}

TEST_CASE("thread pool: loops started from two threads at once both complete", "[thread_pool]") {
  std::atomic<std::int64_t> sums[2] = {{0}, {0}};
  auto caller = [&](int which) {
    for (int repeat = 0; repeat < 200; ++repeat) {
      auto body = [&](std::int64_t i) { sums[which].fetch_add(i); };
      ThreadPool::instance().run(2, 100, 1, body);
    }
  };
  std::thread first(caller, 0), second(caller, 1);
  first.join();
  second.join();
  REQUIRE(sums[0].load() == 200 * 4950);
  REQUIRE(sums[1].load() == 200 * 4950);
}

TEST_CASE("thread pool: parallel_for follows set_num_threads", "[thread_pool]") {
  const int before = minicnn::num_threads();
  for (const int threads : {3, 1, 2}) {
    minicnn::set_num_threads(threads);
    std::atomic<int> highest{0};
    minicnn::ops::cpu::parallel_for(256, 2, [&](std::int64_t) {
      int seen = highest.load();
      const int mine = minicnn::thread_index();
      while (mine > seen && !highest.compare_exchange_weak(seen, mine)) {}
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    });
    INFO("threads " << threads);
    REQUIRE(highest.load() < threads);
    if (threads > 1 && minicnn::openmp_enabled()) REQUIRE(ThreadPool::instance().workers() == threads - 1);
  }
  minicnn::set_num_threads(before);
}
