#pragma once
// Restores minicnn's thread count at scope exit, for tests that run on several thread counts.
#include "minicnn/config.hpp"

namespace minicnn::testing {

class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(minicnn::num_threads()) {}
  ~ThreadCountGuard() { minicnn::set_num_threads(saved_); }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int saved_;
};

}  // namespace minicnn::testing
