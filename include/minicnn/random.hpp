#pragma once
// Counter-based random numbers: value i of a stream depends only on (seed, i), never on how
// the work is split among threads or on the backend, so a parallel kernel (or a CUDA one) can
// draw element i directly. The whole state is two integers, which makes checkpoints trivial.
#include <cmath>
#include <cstdint>

#include "minicnn/host_device.hpp"

namespace minicnn {

// SplitMix64's finaliser applied to a seed/counter pair: a stateless 64-bit hash with good
// avalanche, fast enough to call once per dropout element. Integer arithmetic only, so the CPU
// and a CUDA kernel draw bit-identical values.
MINICNN_HOST_DEVICE inline constexpr std::uint64_t random_bits(std::uint64_t seed, std::uint64_t counter) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + (counter + 1) * 0xD1B54A32D192ED03ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A uniform double in [0, 1) with 53 random bits.
MINICNN_HOST_DEVICE inline constexpr double random_unit(std::uint64_t seed, std::uint64_t counter) {
  return static_cast<double>(random_bits(seed, counter) >> 11) * 0x1.0p-53;
}

// A seeded stream of random numbers. state() / set_state() make it checkpointable.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}

  std::uint64_t seed() const { return seed_; }
  std::uint64_t counter() const { return counter_; }
  void set_state(std::uint64_t seed, std::uint64_t counter) {
    seed_ = seed;
    counter_ = counter;
  }

  std::uint64_t next_u64() { return random_bits(seed_, counter_++); }
  // Uniform in [0, 1).
  double uniform() { return random_unit(seed_, counter_++); }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // Standard normal by Box-Muller; one draw consumes two counters.
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }
  // Uniform integer in [0, n), n > 0 (modulo bias below n / 2^64: negligible for data-set sizes).
  std::uint64_t below(std::uint64_t n) { return next_u64() % n; }
  // Reserves `count` consecutive counters and returns the first: a kernel then draws element i
  // as random_unit(seed(), first + i), in any order, on any thread.
  std::uint64_t reserve(std::uint64_t count) {
    const std::uint64_t first = counter_;
    counter_ += count;
    return first;
  }

 private:
  std::uint64_t seed_;
  std::uint64_t counter_ = 0;
};

}  // namespace minicnn

namespace minicnn {

// The generator layers draw their initial weights from when none is passed, like PyTorch's
// global generator. Seed it with manual_seed(); models take an explicit seed instead.
inline Generator& default_generator() {
  static Generator generator(0);
  return generator;
}
inline void manual_seed(std::uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace minicnn
