// A FashionCNN or ResNet training step allocates no heap memory once its buffers are sized: a counting
// replacement of the global operator new (all forms) counts allocations while a scope flag is
// set. The replacement forwards to malloc / aligned_alloc and free, so it works in the single
// test binary and under AddressSanitizer (which then checks the malloc level). It sees every
// C++ allocation (Tensor buffers, std::vector, std::string); malloc calls made inside the
// OpenMP runtime or Eigen are not C++ allocations and are not counted; the thread pool starts its
// workers in the first steps, which are not counted either.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "minicnn/minicnn.hpp"

namespace {

std::atomic<bool> counting{false};
std::atomic<long> allocations{0};

void* counted_allocate(std::size_t size, std::size_t alignment) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  void* p = alignment <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// Counts the allocations made by `body` on any thread.
template <typename Body>
long allocations_during(Body&& body) {
  allocations = 0;
  counting = true;
  body();
  counting = false;
  return allocations.load();
}

}  // namespace

void* operator new(std::size_t size) { return counted_allocate(size, 0); }
void* operator new[](std::size_t size) { return counted_allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t alignment) {
  return counted_allocate(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return counted_allocate(size, static_cast<std::size_t>(alignment));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try { return counted_allocate(size, 0); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try { return counted_allocate(size, 0); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

TEST_CASE("the counting allocator hook sees allocations", "[alloc]") {
  const long counted = allocations_during([] {
    std::vector<int> v(100);
    minicnn::Tensor<float> t({4, 4});
    REQUIRE(v.size() + static_cast<std::size_t>(t.size()) == 116);
  });
  CHECK(counted >= 2);
}

// Two training steps of `model` at batch 16 size every buffer; three more steps and an inference
// must then allocate nothing, on 1 and on 2 threads; so must inference under NoGradGuard after
// its first pass.
template <typename MakeModel>
void check_no_allocations_after_warm_up(MakeModel make_model) {
  using namespace minicnn;
  for (int threads : {1, 2}) {
    INFO("threads " << threads);
    set_num_threads(threads);
    auto model = make_model();
    Adam<float> optimizer(model->parameters(), 1e-3);
    CrossEntropyLoss<float> criterion;
    Tensor<float> images({16, 1, 28, 28});
    images.normal(0.0f, 1.0f, 3);
    std::vector<int> targets(16);
    for (std::size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<int>(i % 10);
    float loss = 0;
    auto step = [&] {
      optimizer.zero_grad();
      loss = criterion.forward(model->forward(images), targets);
      model->backward(criterion.backward());
      optimizer.step();
    };
    step();
    step();
    CHECK(allocations_during([&] {
            for (int i = 0; i < 3; ++i) step();
          }) == 0);
    CHECK(std::isfinite(loss));

    model->eval();
    model->forward(images);
    CHECK(allocations_during([&] { model->forward(images); }) == 0);
    const NoGradGuard no_grad;  // inference as the demo runs it: no argmax, the convs pool as they store
    model->forward(images);
    CHECK(allocations_during([&] { model->forward(images); }) == 0);
  }
  set_num_threads(2);
}

TEST_CASE("a FashionCNN training step and inference allocate nothing after the first", "[alloc][model]") {
  check_no_allocations_after_warm_up([] { return std::make_unique<minicnn::models::FashionCNN<float>>(0); });
}

TEST_CASE("a small ResNet training step (strided convs, image groups on 7x7, 4x4 and 2x2 maps) allocates nothing "
          "after the first",
          "[alloc][model]") {
  check_no_allocations_after_warm_up([] {
    minicnn::models::ResNetOptions options;
    options.widths = {8, 16, 32, 64};
    options.blocks_per_layer = {1, 1, 1, 1};
    return std::make_unique<minicnn::models::ResNet<float>>(options, 0);
  });
}
