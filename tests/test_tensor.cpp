#include <catch2/catch.hpp>
#include <minicnn/minicnn.hpp>

#include <cstdint>

using namespace minicnn;

TEMPLATE_TEST_CASE("Tensor owns one aligned, contiguous, zeroed buffer", "[tensor]", float, double) {
  Tensor<TestType> x({2, 3, 4, 5});
  CHECK(x.rank() == 4);
  CHECK(x.size() == 120);
  CHECK(x.shape() == Shape{2, 3, 4, 5});
  CHECK(reinterpret_cast<std::uintptr_t>(x.data()) % 64 == 0);
  for (TestType v : x) CHECK(v == TestType(0));
  x(1, 2, 3, 4) = TestType(7);
  CHECK(x[119] == TestType(7));
  x(0, 1, 2, 3) = TestType(5);
  CHECK(x[((0 * 3 + 1) * 4 + 2) * 5 + 3] == TestType(5));
}

TEMPLATE_TEST_CASE("Tensor copies deeply and moves cheaply", "[tensor]", float, double) {
  Tensor<TestType> a({4});
  a.fill(TestType(2));
  Tensor<TestType> b = a;
  b[0] = TestType(9);
  CHECK(a[0] == TestType(2));
  const TestType* storage = b.data();
  Tensor<TestType> c = std::move(b);
  CHECK(c.data() == storage);
  CHECK(c[0] == TestType(9));
}

TEMPLATE_TEST_CASE("reshape keeps the storage; a mismatched reshape throws naming both shapes", "[tensor]", float, double) {
  Tensor<TestType> x({2, 6});
  const TestType* storage = x.data();
  x.reshape({3, 4});
  CHECK(x.data() == storage);
  CHECK(x.shape() == Shape{3, 4});
  CHECK_THROWS_WITH(x.reshape({5, 2}), Catch::Contains("[3, 4]") && Catch::Contains("[5, 2]"));
}

TEMPLATE_TEST_CASE("resize reuses the allocation when the new size fits", "[tensor]", float, double) {
  Tensor<TestType> x({64, 32});
  const TestType* storage = x.data();
  x.resize({16, 8});
  CHECK(x.data() == storage);
  x.resize({64, 32});
  CHECK(x.data() == storage);
  x.resize({65, 32});
  CHECK(x.size() == 65 * 32);
}

TEMPLATE_TEST_CASE("Seeded fills are reproducible and in range", "[tensor]", float, double) {
  Tensor<TestType> a({1000}), b({1000}), c({1000});
  a.uniform(TestType(-1), TestType(1), 5);
  b.uniform(TestType(-1), TestType(1), 5);
  c.uniform(TestType(-1), TestType(1), 6);
  bool differs = false;
  for (std::int64_t i = 0; i < a.size(); ++i) {
    CHECK(a[i] == b[i]);
    CHECK(a[i] >= TestType(-1));
    CHECK(a[i] < TestType(1));
    differs = differs || a[i] != c[i];
  }
  CHECK(differs);
  Tensor<TestType> n({20000});
  n.normal(TestType(1), TestType(2), 3);
  double mean = 0, var = 0;
  for (TestType v : n) mean += v;
  mean /= n.size();
  for (TestType v : n) var += (v - mean) * (v - mean);
  var /= n.size();
  CHECK(mean == Approx(1.0).margin(0.05));
  CHECK(var == Approx(4.0).epsilon(0.05));
}

TEST_CASE("Eigen views address the same memory", "[tensor]") {
  Tensor<float> x({2, 3});
  x.matrix()(1, 2) = 4.f;
  CHECK(x(1, 2) == 4.f);
  CHECK(x.matrix().rows() == 2);
  CHECK(x.matrix().cols() == 3);
  CHECK(x.vector().size() == 6);
}

TEST_CASE("Bad shapes and indices throw minicnn::error", "[tensor]") {
  CHECK_THROWS_AS(Shape({1, 2, 3, 4, 5}), error);
  CHECK_THROWS_WITH(Shape({2, -1}), Catch::Contains("negative"));
  CHECK_THROWS_AS(Shape({1 << 20, 1 << 20, 1 << 20}), error);
  Tensor<float> x({2, 3});
  CHECK_THROWS_WITH(x.at(2, 0), Catch::Contains("out of range") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_AS(x.at(0), error);
  CHECK(x.at(1, 2) == 0.f);
  CHECK_THROWS_WITH(check_same_shape(Shape{2, 3}, Shape{3, 2}, "op"), Catch::Contains("expected shape [2, 3], found [3, 2]"));
}

TEST_CASE("The counter-based generator is reproducible and independent of draw order", "[random]") {
  Generator a(9), b(9);
  const std::uint64_t first = a.reserve(100);
  for (int i = 0; i < 100; ++i) CHECK(random_unit(9, first + i) == b.uniform());
  CHECK(a.counter() == b.counter());
  double sum = 0;
  for (int i = 0; i < 100000; ++i) sum += random_unit(1, static_cast<std::uint64_t>(i));
  CHECK(sum / 100000 == Approx(0.5).margin(0.01));
  CHECK(random_bits(1, 0) != random_bits(2, 0));
}

TEST_CASE("set_num_threads rejects a count below 1", "[config]") {
  CHECK_THROWS_AS(set_num_threads(0), error);
  CHECK(num_threads() >= 1);
  CHECK(build_info().find("SIMD") != std::string::npos);
}
