#pragma once
// Reader for the PyTorch reference fixtures written by tools/make_fixtures.py (used by the
// parity tests only; not part of the library).
//
// File format, version 1; every integer little-endian:
//
//   magic      8 bytes   "MCNNFIX\0"
//   version    u32       1
//   count      u32       number of entries
//   count times:
//     name_length  u32
//     name         name_length bytes, no terminator (e.g. "case0.grad_input")
//     dtype        u32   0 = float64, 1 = float32
//     rank         u32   0 to 4 (rank 0: a scalar, one element)
//     dims         u64 x rank
//     data         prod(dims) values of dtype, little-endian, row-major
//
// Every entry is returned as double: float32 values widen exactly, so a float32 fixture can
// be compared bit for bit after a cast. Integer data (targets, configurations) is stored as
// float64 and is exact too.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::testing {

class Fixture {
 public:
  static constexpr char magic[8] = {'M', 'C', 'N', 'N', 'F', 'I', 'X', '\0'};
  static constexpr std::uint32_t version = 1;

  struct Entry {
    std::vector<std::int64_t> dims;
    std::vector<double> values;
  };

  // Reads a whole file; throws minicnn::error naming the file and what is wrong with it.
  explicit Fixture(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_, std::ios::binary);
    if (!in)
      throw error("fixture " + path_ +
                  ": cannot open the file (regenerate with /usr/bin/python3 tools/make_fixtures.py)");
    bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    parse();
  }

  // A file in the fixture directory (MINICNN_FIXTURE_DIR, set by tests/CMakeLists.txt).
  static Fixture load(const std::string& file_name) {
#ifdef MINICNN_FIXTURE_DIR
    return Fixture(std::string(MINICNN_FIXTURE_DIR) + "/" + file_name);
#else
    return Fixture(file_name);
#endif
  }

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  // Entry names in file order (for the model: PyTorch's state_dict order).
  const std::vector<std::string>& names() const { return order_; }

  const Entry& entry(const std::string& name) const {
    const auto found = entries_.find(name);
    if (found == entries_.end()) throw error("fixture " + path_ + ": no entry named \"" + name + "\"");
    return found->second;
  }
  const std::vector<double>& values(const std::string& name) const { return entry(name).values; }
  // A single number (an entry with exactly one element).
  double scalar(const std::string& name) const {
    const Entry& e = entry(name);
    if (e.values.size() != 1)
      throw error("fixture " + path_ + ": entry \"" + name + "\" has " + std::to_string(e.values.size()) +
                  " elements, expected 1");
    return e.values[0];
  }
  // Integer data stored as float64 (class targets, layer configurations).
  std::vector<int> integers(const std::string& name) const {
    std::vector<int> out;
    for (double v : values(name)) {
      if (v != static_cast<double>(static_cast<int>(v)))
        throw error("fixture " + path_ + ": entry \"" + name + "\" holds " + std::to_string(v) +
                    ", expected an integer");
      out.push_back(static_cast<int>(v));
    }
    return out;
  }
  Shape shape(const std::string& name) const { return Shape(entry(name).dims); }

  // The entry as a tensor of T (double: exact; float: rounded, exact for float32 entries).
  template <typename T = double>
  Tensor<T> tensor(const std::string& name) const {
    const Entry& e = entry(name);
    if (e.dims.empty()) throw error("fixture " + path_ + ": entry \"" + name + "\" is a scalar, not a tensor");
    Tensor<T> out(Shape(e.dims));
    for (std::size_t i = 0; i < e.values.size(); ++i) out[static_cast<std::int64_t>(i)] = static_cast<T>(e.values[i]);
    return out;
  }

 private:
  [[noreturn]] void corrupt(const std::string& what) const { throw error("fixture " + path_ + ": " + what); }

  // Reads `count` bytes at the cursor, failing with the field's name when the file ends early.
  const unsigned char* take(std::size_t count, const char* field) {
    if (bytes_.size() - cursor_ < count)
      corrupt(std::string("truncated at byte ") + std::to_string(cursor_) + " while reading " + field + " (needs " +
              std::to_string(count) + " bytes, " + std::to_string(bytes_.size() - cursor_) + " left)");
    const auto* p = reinterpret_cast<const unsigned char*>(bytes_.data()) + cursor_;
    cursor_ += count;
    return p;
  }
  template <typename U>
  U read_unsigned(const char* field) {
    const unsigned char* p = take(sizeof(U), field);
    U value = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) value |= static_cast<U>(p[i]) << (8 * i);
    return value;
  }
  template <typename Float, typename Bits>
  static Float decode_float(const unsigned char* p) {
    Bits bits = 0;
    for (std::size_t i = 0; i < sizeof(Bits); ++i) bits |= static_cast<Bits>(p[i]) << (8 * i);
    Float value;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
  }

  void parse() {
    const unsigned char* head = take(sizeof(magic), "the magic");
    if (std::memcmp(head, magic, sizeof(magic)) != 0)
      corrupt("bad magic (expected \"MCNNFIX\\0\"): not a minicnn fixture");
    const auto file_version = read_unsigned<std::uint32_t>("the version");
    if (file_version != version)
      corrupt("version " + std::to_string(file_version) + ", expected " + std::to_string(version));
    const auto count = read_unsigned<std::uint32_t>("the entry count");
    for (std::uint32_t index = 0; index < count; ++index) {
      const auto name_length = read_unsigned<std::uint32_t>("a name length");
      const auto* name_bytes = take(name_length, "a name");
      std::string name(reinterpret_cast<const char*>(name_bytes), name_length);
      const auto dtype = read_unsigned<std::uint32_t>("a dtype");
      if (dtype > 1)
        corrupt("entry \"" + name + "\": dtype " + std::to_string(dtype) + ", expected 0 (float64) or 1 (float32)");
      const auto rank = read_unsigned<std::uint32_t>("a rank");
      if (rank > 4) corrupt("entry \"" + name + "\": rank " + std::to_string(rank) + ", expected 0 to 4");
      Entry entry;
      std::uint64_t count_values = 1;
      for (std::uint32_t axis = 0; axis < rank; ++axis) {
        const auto dim = read_unsigned<std::uint64_t>("a dimension");
        if (dim > (std::uint64_t{1} << 32))
          corrupt("entry \"" + name + "\": dimension " + std::to_string(dim) + " is too large");
        count_values *= dim;
        if (count_values > (std::uint64_t{1} << 32)) corrupt("entry \"" + name + "\": too many elements");
        entry.dims.push_back(static_cast<std::int64_t>(dim));
      }
      const std::size_t width = dtype == 0 ? 8 : 4;
      const unsigned char* data = take(static_cast<std::size_t>(count_values) * width, "entry data");
      entry.values.resize(static_cast<std::size_t>(count_values));
      for (std::size_t i = 0; i < entry.values.size(); ++i)
        entry.values[i] = dtype == 0 ? decode_float<double, std::uint64_t>(data + 8 * i)
                                     : static_cast<double>(decode_float<float, std::uint32_t>(data + 4 * i));
      if (!entries_.emplace(name, std::move(entry)).second) corrupt("duplicate entry \"" + name + "\"");
      order_.push_back(name);
    }
    if (cursor_ != bytes_.size())
      corrupt(std::to_string(bytes_.size() - cursor_) + " unexpected bytes after the last entry");
    bytes_.clear();
    bytes_.shrink_to_fit();
  }

  std::string path_;
  std::string bytes_;
  std::size_t cursor_ = 0;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> order_;
};

// The norm-wise relative tolerance of a PyTorch parity check: float64 kernels agree with
// PyTorch's to a few ulps; float32 ones to float32's epsilon times the length of the longest sum.
template <typename T>
constexpr double parity_tolerance() {
  return std::is_same<T, double>::value ? 1e-10 : 1e-5;
}

template <typename T>
const char* scalar_name() {
  return std::is_same<T, double>::value ? "double" : "float";
}

// Largest absolute difference and largest difference relative to the reference's largest
// magnitude (a norm-wise relative error: meaningful even where single elements are near 0).
struct Difference {
  double max_abs = 0;
  double reference_max = 0;
  double relative() const { return reference_max > 0 ? max_abs / reference_max : max_abs; }
};

template <typename T>
Difference compare(const Tensor<T>& found, const Tensor<double>& reference, const std::string& what) {
  check_same_shape(reference.shape(), found.shape(), what);
  Difference d;
  for (std::int64_t i = 0; i < reference.size(); ++i) {
    const double diff = std::abs(static_cast<double>(found[i]) - reference[i]);
    // NaN never compares greater: make it the worst possible difference instead.
    d.max_abs = (diff != diff) ? HUGE_VAL : std::max(d.max_abs, diff);
    d.reference_max = std::max(d.reference_max, std::abs(reference[i]));
  }
  return d;
}

}  // namespace minicnn::testing
