// The IDX reader and writer: round trips of every element type and rank, raw and gzip, and one
// test per malformed input, each checking its own error message (which names the file).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "data_test_util.hpp"
#include "fuzz/fuzz_idx_input.hpp"
#include "minicnn/data/idx.hpp"
#include "same_bits.hpp"

using Catch::Matchers::Contains;
using minicnn::Shape;
using minicnn::Tensor;
using namespace minicnn::data;
using minicnn::data_testing::Bytes;
using minicnn::data_testing::concat;
using minicnn::data_testing::gzip_bytes;
using minicnn::data_testing::idx_header;
using minicnn::data_testing::write_bytes;
using minicnn::testing::TempDir;

using minicnn::data_testing::error_of;

namespace {

// Values that exercise sign, extremes and (for floats) the special values, bit patterns intact.
template <typename T>
Tensor<T> sample_values(const Shape& shape) {
  Tensor<T> t(shape);
  for (std::int64_t i = 0; i < t.size(); ++i) {
    switch (i % 6) {
      case 0:
        t[i] = std::numeric_limits<T>::lowest();
        break;
      case 1:
        t[i] = std::numeric_limits<T>::max();
        break;
      case 2:
        t[i] = static_cast<T>(i % 100);
        break;
      case 3:
        t[i] = std::is_signed<T>::value ? static_cast<T>(-static_cast<int>(i % 100) - 1) : static_cast<T>(200 - i % 50);
        break;
      case 4:
        t[i] =
            std::is_floating_point<T>::value ? static_cast<T>(0.1 * static_cast<double>(i) - 3.3) : static_cast<T>(1);
        break;
      default:
        t[i] = std::is_floating_point<T>::value ? std::numeric_limits<T>::denorm_min() : static_cast<T>(i * 7 % 128);
    }
  }
  return t;
}

using minicnn::testing::same_bits;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A valid raw IDX file: u8 [2, 3] = 0..5.
Bytes small_u8_file() { return concat(idx_header(0x08, {2, 3}), {0, 1, 2, 3, 4, 5}); }

}  // namespace

TEMPLATE_TEST_CASE("IDX round trip of every element type, ranks 1 to 4, raw and gzip", "[idx]", std::uint8_t,
                   std::int8_t, std::int16_t, std::int32_t, float, double) {
  TempDir dir;
  const std::vector<Shape> shapes = {Shape{7}, Shape{3, 5}, Shape{2, 3, 4}, Shape{2, 1, 3, 5}, Shape{0, 3}};
  for (const Shape& shape : shapes) {
    for (Compression compression : {Compression::none, Compression::gzip}) {
      const bool gz = compression == Compression::gzip;
      CAPTURE(shape.str(), gz);
      const Tensor<TestType> values = sample_values<TestType>(shape);
      // Deliberately not named .gz: gzip is detected from the content.
      const std::string path = dir.file("values.idx");
      write_idx(path, values, compression);
      const Bytes bytes = read_bytes(path);
      REQUIRE(bytes.size() >= 2);
      CHECK((bytes[0] == 0x1F && bytes[1] == 0x8B) == gz);

      const IdxArray from_file = read_idx(path);
      CHECK(from_file.type() == idx_type_of<TestType>::value);
      CHECK(from_file.shape() == shape);
      CHECK(same_bits(from_file.get<TestType>(), values));

      const IdxArray from_memory = parse_idx(bytes.data(), bytes.size());
      CHECK(same_bits(from_memory.get<TestType>(), values));
      if (!gz) {
        const std::size_t header = 4 + 4 * static_cast<std::size_t>(shape.rank());
        CHECK(bytes.size() == header + sizeof(TestType) * static_cast<std::size_t>(shape.numel()));
      }
    }
  }
}

TEST_CASE("IDX layout: big-endian header and elements, byte for byte", "[idx]") {
  // i16 [2, 2] = {1, -2, 258, -32768}: written by hand, independently of the writer.
  const Bytes file = concat(idx_header(0x0B, {2, 2}), {0x00, 0x01, 0xFF, 0xFE, 0x01, 0x02, 0x80, 0x00});
  const IdxArray array = parse_idx(file.data(), file.size());
  REQUIRE(array.type() == IdxType::i16);
  REQUIRE(array.shape() == (Shape{2, 2}));
  const Tensor<std::int16_t>& v = array.get<std::int16_t>();
  CHECK(v[0] == 1);
  CHECK(v[1] == -2);
  CHECK(v[2] == 258);
  CHECK(v[3] == -32768);
  // And the writer produces exactly those bytes.
  CHECK(encode_idx(v) == file);

  // f32 1.5 is 0x3FC00000; f64 -2.0 is 0xC000000000000000.
  const Bytes f32 = concat(idx_header(0x0D, {1}), {0x3F, 0xC0, 0x00, 0x00});
  CHECK(parse_idx(f32.data(), f32.size()).get<float>()[0] == 1.5f);
  const Bytes f64 = concat(idx_header(0x0E, {1}), {0xC0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(parse_idx(f64.data(), f64.size()).get<double>()[0] == -2.0);
}

TEST_CASE("IDX: concatenated gzip members are one stream, as gzip(1) reads them", "[idx]") {
  const Bytes raw = small_u8_file();
  const Bytes first = gzip_bytes(Bytes(raw.begin(), raw.begin() + 7));
  const Bytes second = gzip_bytes(Bytes(raw.begin() + 7, raw.end()));
  const Bytes both = concat(first, second);
  const IdxArray array = parse_idx(both.data(), both.size());
  CHECK(array.shape() == (Shape{2, 3}));
  CHECK(array.get<std::uint8_t>()[5] == 5);
}

TEST_CASE("IDX conversions: to<T> converts, range-checks, and get<T> insists on the stored type", "[idx]") {
  Tensor<float> values({4});
  values[0] = 0.0f;
  values[1] = 255.0f;
  values[2] = 17.75f;
  values[3] = 3.0f;
  const IdxArray array(values);
  const Tensor<std::uint8_t> bytes = array.to<std::uint8_t>();
  CHECK(bytes[1] == 255);
  CHECK(bytes[2] == 17);  // truncated toward zero, as static_cast
  CHECK(array.to<double>()[2] == 17.75);
  CHECK_THAT(error_of([&] { (void)array.get<std::uint8_t>(); }), Contains("holds f32 elements, not u8"));

  values[3] = 256.0f;
  CHECK_THAT(error_of([&] { (void)IdxArray(values).to<std::uint8_t>(); }),
             Contains("element 3") && Contains("does not fit in u8"));
  values[3] = std::nanf("");
  CHECK_THAT(error_of([&] { (void)IdxArray(values).to<std::int32_t>(); }), Contains("does not fit in i32"));
  Tensor<std::int16_t> negative({1});
  negative[0] = -1;
  CHECK_THAT(error_of([&] { (void)IdxArray(negative).to<std::uint8_t>(); }), Contains("does not fit in u8"));
}

TEST_CASE("IDX writer: refuses tensors the format cannot hold", "[idx]") {
  TempDir dir;
  const Tensor<float> rank0;
  CHECK_THAT(error_of([&] { write_idx(dir.file("x.idx"), rank0); }), Contains("rank 0") && Contains("x.idx"));
  const Tensor<float> fine({2});
  CHECK_THAT(error_of([&] { write_idx(dir.file("no/such/dir/x.idx"), fine); }),
             Contains("cannot create the temporary file") && Contains("no/such/dir/x.idx"));
}

TEST_CASE("IDX writer: replaces a file atomically and leaves no temporary file behind", "[idx]") {
  TempDir dir;
  const std::string path = dir.file("labels.idx");
  Tensor<std::uint8_t> first({3}), second({5});
  first.fill(1);
  second.fill(2);
  write_idx(path, first);
  write_idx(path, second, Compression::gzip);
  CHECK(read_idx(path).shape() == Shape{5});
  CHECK(read_idx(path).to<std::uint8_t>()[4] == 2);
  CHECK(dir.entries() == std::vector<std::string>{"labels.idx"});
}

// ---- malformed inputs: one test each -------------------------------------------------------

TEST_CASE("IDX error: missing file", "[idx]") {
  TempDir dir;
  const std::string path = dir.file("does-not-exist.idx");
  CHECK_THAT(error_of([&] { read_idx(path); }), Contains("cannot open") && Contains(path));
}

TEST_CASE("IDX error: a directory instead of a file", "[idx]") {
  TempDir dir;
  CHECK_THAT(error_of([&] { read_idx(dir.path()); }), Contains("is a directory") && Contains(dir.path()));
}

TEST_CASE("IDX error: empty file", "[idx]") {
  TempDir dir;
  const std::string path = dir.file("empty.idx");
  write_bytes(path, {});
  CHECK_THAT(error_of([&] { read_idx(path); }), Contains("empty file") && Contains(path));
}

TEST_CASE("IDX error: gzip stream that decompresses to nothing", "[idx]") {
  const Bytes file = gzip_bytes({});
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "nothing.gz"); }),
             Contains("empty file (after gzip decompression)") && Contains("nothing.gz"));
}

TEST_CASE("IDX error: wrong magic", "[idx]") {
  TempDir dir;
  const std::string path = dir.file("magic.idx");
  write_bytes(path, {0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 1});  // a zip file's start
  CHECK_THAT(error_of([&] { read_idx(path); }),
             Contains("wrong magic") && Contains("0x50 0x4B") && Contains("expected 0x00 0x00") && Contains(path));
}

TEST_CASE("IDX error: header shorter than the magic", "[idx]") {
  const Bytes file = {0x00, 0x00, 0x08};
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "short.idx"); }),
             Contains("truncated header") && Contains("holds 3 bytes") && Contains("short.idx"));
}

TEST_CASE("IDX error: unknown element type code", "[idx]") {
  const Bytes file = concat(idx_header(0x0A, {1}), {0});
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "type.idx"); }),
             Contains("unknown element type code 0x0A") && Contains("byte 2") && Contains("type.idx"));
}

TEST_CASE("IDX error: zero dimensions", "[idx]") {
  const Bytes file = idx_header(0x08, {});
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "rank0.idx"); }),
             Contains("dimension count (byte 3) is 0") && Contains("expected 1 to 4") && Contains("rank0.idx"));
}

TEST_CASE("IDX error: more than four dimensions", "[idx]") {
  const Bytes file = concat(idx_header(0x08, {1, 1, 1, 1, 1}), {0});
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "rank5.idx"); }),
             Contains("dimension count (byte 3) is 5") && Contains("rank5.idx"));
}

TEST_CASE("IDX error: dimension sizes cut short", "[idx]") {
  Bytes file = idx_header(0x08, {3, 4});
  file.resize(9);
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "dims.idx"); }),
             Contains("truncated header") && Contains("2 dimension sizes need 8 bytes") && Contains("holds 5"));
}

TEST_CASE("IDX error: overflowing dimension product", "[idx]") {
  const Bytes file = idx_header(0x0E, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu});
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "overflow.idx"); }),
             Contains("overflowing dimension product") && Contains("[4294967295, 4294967295, 4294967295]") &&
                 Contains("overflow.idx"));
  // A zero dimension does not excuse the others.
  const Bytes with_zero = idx_header(0x08, {0, 0xFFFFFFFFu, 0xFFFFFFFFu});
  CHECK_THAT(error_of([&] { parse_idx(with_zero.data(), with_zero.size()); }),
             Contains("overflowing dimension product"));
}

TEST_CASE("IDX error: dimensions exceeding the file size allocate nothing", "[idx]") {
  // 20 bytes claiming 2^38 doubles (2 TiB): allocating it would throw std::bad_alloc (or abort
  // under AddressSanitizer), so a minicnn::error here proves the size was checked first.
  TempDir dir;
  const std::string path = dir.file("huge.idx");
  write_bytes(path, concat(idx_header(0x0E, {1u << 17, 1u << 10, 1u << 11}), {0, 0, 0, 0}));
  REQUIRE(std::filesystem::file_size(path) == 20);
  CHECK_THAT(error_of([&] { read_idx(path); }),
             Contains("need 2199023255552 bytes") && Contains("holds only 4") && Contains(path));

  // The same claim inside a gzip file: rejected before inflating, by deflate's 1032:1 bound.
  const std::string gz_path = dir.file("huge.idx.gz");
  write_bytes(gz_path, gzip_bytes(idx_header(0x0E, {1u << 17, 1u << 10, 1u << 11})));
  CHECK_THAT(error_of([&] { read_idx(gz_path); }), Contains("dimension sizes exceed the file") &&
                                                       Contains("gzip file can decompress to") && Contains(gz_path));
}

TEST_CASE("IDX error: truncated data", "[idx]") {
  TempDir dir;
  const std::string path = dir.file("truncated.idx");
  Bytes file = concat(idx_header(0x0C, {4}), Bytes(16, 7));
  file.resize(file.size() - 3);
  write_bytes(path, file);
  CHECK_THAT(error_of([&] { read_idx(path); }),
             Contains("truncated data") && Contains("need 16 bytes") && Contains("holds only 13") && Contains(path));
}

TEST_CASE("IDX error: truncated data inside a valid gzip stream", "[idx]") {
  // The header claims one byte more than the stream holds; the payload grows as it inflates.
  const Bytes content = concat(idx_header(0x08, {1000001}), Bytes(1000000, 0));
  const Bytes file = gzip_bytes(content);
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "short.gz"); }),
             Contains("truncated data") && Contains("need 1000001 bytes") &&
                 Contains("decompressed stream ends after 1000000") && Contains("short.gz"));
}

TEST_CASE("IDX error: trailing bytes", "[idx]") {
  TempDir dir;
  const std::string path = dir.file("trailing.idx");
  write_bytes(path, concat(small_u8_file(), {9, 9, 9}));
  CHECK_THAT(error_of([&] { read_idx(path); }),
             Contains("3 trailing bytes after the data") && Contains("need 6 bytes") && Contains(path));
}

TEST_CASE("IDX error: trailing bytes inside a gzip stream", "[idx]") {
  const Bytes file = gzip_bytes(concat(small_u8_file(), {9, 9}));
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "trailing.gz"); }),
             Contains("2 trailing bytes after the data in the decompressed stream") && Contains("trailing.gz"));
}

TEST_CASE("IDX error: corrupt gzip stream", "[idx]") {
  Bytes file = gzip_bytes(small_u8_file());
  // Byte 10 starts the deflate data: 0xFF there sets block type 3, which does not exist.
  file[10] = 0xFF;
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "corrupt.gz"); }),
             Contains("corrupt gzip stream") && Contains("zlib: invalid block type") && Contains("corrupt.gz"));
}

TEST_CASE("IDX error: gzip checksum mismatch", "[idx]") {
  Bytes file = gzip_bytes(small_u8_file());
  file[file.size() - 8] ^= 0x01;  // the CRC-32 in the gzip trailer
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "crc.gz"); }),
             Contains("corrupt gzip stream") && Contains("incorrect data check") && Contains("crc.gz"));
}

TEST_CASE("IDX error: garbage after the gzip stream", "[idx]") {
  const Bytes file = concat(gzip_bytes(small_u8_file()), {'j', 'u', 'n', 'k'});
  CHECK_THAT(error_of([&] { parse_idx(file.data(), file.size(), "junk.gz"); }),
             Contains("corrupt gzip stream in member 2") && Contains("junk.gz"));
}

TEST_CASE("IDX error: truncated gzip stream", "[idx]") {
  TempDir dir;
  const std::string path = dir.file("cut.idx.gz");
  Bytes file = gzip_bytes(concat(idx_header(0x08, {4096}), Bytes(4096, 3)));
  file.resize(file.size() - 6);
  write_bytes(path, file);
  CHECK_THAT(error_of([&] { read_idx(path); }),
             Contains("truncated gzip stream") && Contains("ends inside gzip member 1") && Contains(path));
}

// ---- the fuzz corpus and every crash ever found ---------------------------------------------

TEST_CASE("IDX fuzz regressions and seed corpus replay without crashing", "[idx][fuzz]") {
  namespace fs = std::filesystem;
  const fs::path fuzz_dir = fs::path(MINICNN_SOURCE_DIR) / "tests" / "fuzz";
  std::size_t replayed = 0;
  for (const char* sub : {"regressions/fuzz_idx", "corpus/fuzz_idx"}) {
    const fs::path dir = fuzz_dir / sub;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      const Bytes bytes = read_bytes(entry.path().string());
      CAPTURE(entry.path().string());
      // minicnn::error is swallowed inside; anything else (or a sanitizer report) fails here.
      CHECK_NOTHROW(minicnn::fuzz::run_idx_input(bytes.data(), bytes.size()));
      ++replayed;
    }
  }
  CHECK(replayed >= 20);  // the seed corpus alone has more than 20 files
}
