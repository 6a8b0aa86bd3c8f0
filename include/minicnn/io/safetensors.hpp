#pragma once
// safetensors files: the weight format PyTorch users share models in (Hugging Face's
// "safetensors"; tools/pytorch_to_safetensors.py and tools/safetensors_to_pytorch.py convert
// from and to torch.save files). Layout:
//
//   8 bytes   N = the header's length, u64 little-endian
//   N bytes   the header, a JSON object (UTF-8), padded with spaces:
//               {"__metadata__": {"key": "value", ...},                        (optional)
//                "classifier.5.weight": {"dtype": "F32", "shape": [10, 128],
//                                        "data_offsets": [begin, end]}, ...}
//   the rest  the data section: each tensor row-major and little-endian at bytes [begin, end)
//             of the section. The tensors cover the section exactly: no overlaps, no holes.
//
// Reading is strict and bounded, because a model file is input from elsewhere: the header
// length must be at most 100 MB and fit in the file; the header is checked against the
// grammar of JSON and of the format (known dtypes, integer shapes, every field present, no
// duplicate names); every tensor's offsets must lie in the data section and match its dtype
// and shape. Errors are minicnn::error naming the file, the tensor and what was expected and
// found, e.g. "model.safetensors: classifier.5.weight: expected [10, 128], found [10, 64]".
// minicnn tensors are read and written as F32 and F64; other dtypes are parsed (so a file
// holding them is still readable) but cannot be loaded into a Tensor. Writes are atomic
// (io/atomic_file.hpp). Big-endian hosts are refused (io/byte_order.hpp).
//
//   io::save_safetensors(model, "model.safetensors", {{"epoch", "10"}});
//   io::load_safetensors(model, "model.safetensors");      // every name, shape and dtype must match
//   io::save_tensors(tensors, "state.safetensors");         // any name -> Tensor<T> map
//   auto state = io::load_tensors<float>("state.safetensors");
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/io/atomic_file.hpp"
#include "minicnn/io/byte_order.hpp"
#include "minicnn/io/detail/json_text.hpp"
#include "minicnn/layers/module.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::io {

// The element types of the safetensors format. minicnn loads and saves f32 and f64.
enum class Dtype { boolean, u8, i8, f8_e5m2, f8_e4m3, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64 };

using Metadata = std::map<std::string, std::string>;
template <typename T>
using TensorMap = std::map<std::string, Tensor<T>>;

namespace detail {
struct DtypeEntry {
  Dtype dtype;
  const char* name;
  std::size_t size;
};
inline constexpr DtypeEntry dtype_table[] = {
    {Dtype::boolean, "BOOL", 1},    {Dtype::u8, "U8", 1},   {Dtype::i8, "I8", 1},   {Dtype::f8_e5m2, "F8_E5M2", 1},
    {Dtype::f8_e4m3, "F8_E4M3", 1}, {Dtype::i16, "I16", 2}, {Dtype::u16, "U16", 2}, {Dtype::f16, "F16", 2},
    {Dtype::bf16, "BF16", 2},       {Dtype::i32, "I32", 4}, {Dtype::u32, "U32", 4}, {Dtype::f32, "F32", 4},
    {Dtype::f64, "F64", 8},         {Dtype::i64, "I64", 8}, {Dtype::u64, "U64", 8},
};
inline const DtypeEntry& dtype_entry(Dtype dtype) {
  for (const DtypeEntry& entry : dtype_table)
    if (entry.dtype == dtype) return entry;
  throw error("safetensors: invalid Dtype value");
}
}  // namespace detail

// "F32", as the format spells it.
inline const char* dtype_name(Dtype dtype) { return detail::dtype_entry(dtype).name; }
inline std::size_t dtype_size(Dtype dtype) { return detail::dtype_entry(dtype).size; }

template <typename T>
constexpr Dtype dtype_of() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "safetensors: minicnn reads and writes float (F32) and double (F64) tensors");
  return std::is_same<T, float>::value ? Dtype::f32 : Dtype::f64;
}

// One tensor as the header describes it. Offsets are relative to the data section.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::f32;
  std::vector<std::int64_t> shape;  // any rank; rank 0 is a scalar with one element
  std::uint64_t begin = 0, end = 0;

  std::uint64_t byte_size() const { return end - begin; }
};

// A tensor to write: a name, a dtype, a shape and `product(shape) * dtype_size(dtype)`
// little-endian bytes at `data`, which must stay valid until the write returns.
struct TensorRef {
  std::string name;
  Dtype dtype = Dtype::f32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
};

// "[10, 128]", the way Shape::str() and PyTorch print sizes.
inline std::string dims_string(const std::vector<std::int64_t>& dims) {
  std::string text = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

namespace detail {

inline constexpr std::uint64_t max_header_bytes = 100'000'000;
// No real tensor has more dimensions; the bound keeps a hostile header from growing vectors.
inline constexpr std::size_t max_rank = 8;

// A recursive-descent parser for exactly the JSON the header may contain: one object whose
// members are "__metadata__" (an object of strings) or tensors (objects with "dtype", "shape"
// and "data_offsets"). It follows RFC 8259 for strings (escapes, UTF-8), whitespace, commas
// and numbers, and the schema for everything else, so nothing unexpected is accepted and
// memory stays proportional to the header: a shape has at most max_rank entries.
class HeaderParser {
 public:
  HeaderParser(const char* text, std::size_t size, const std::string& source)
      : text_(reinterpret_cast<const unsigned char*>(text)), size_(size), source_(source) {}

  void parse(Metadata& metadata, std::vector<TensorInfo>& tensors) {
    // The format requires the header to start with '{' (no leading whitespace).
    if (size_ == 0 || text_[0] != '{') fail("expected the header to start with '{'");
    parse_object("the header", [&](const std::string& key) {
      if (key == "__metadata__")
        parse_metadata(metadata);
      else
        tensors.push_back(parse_tensor(key));
    });
    // Trailing whitespace is the format's padding; anything else is an error.
    skip_whitespace();
    if (position_ != size_) fail("unexpected content after the header object");
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw error(source_ + ": header: " + message + " (at byte " + std::to_string(position_) + " of the JSON)");
  }

  bool at_end() const { return position_ >= size_; }
  int peek() const { return at_end() ? -1 : text_[position_]; }
  void skip_whitespace() {
    while (!at_end() && (text_[position_] == ' ' || text_[position_] == '\t' || text_[position_] == '\n' ||
                         text_[position_] == '\r'))
      ++position_;
  }
  void expect(char c, const std::string& context) {
    skip_whitespace();
    if (peek() != static_cast<unsigned char>(c)) fail(context + ": expected '" + std::string(1, c) + "'" + found());
    ++position_;
  }
  std::string found() const {
    if (at_end()) return ", found the end of the header";
    const unsigned char c = text_[position_];
    if (c >= 0x20 && c < 0x7F) return ", found '" + std::string(1, static_cast<char>(c)) + "'";
    return ", found byte " + std::to_string(c);
  }

  // Calls on_member(key) with the position at the member's value; rejects duplicate keys.
  template <typename OnMember>
  void parse_object(const std::string& context, OnMember on_member) {
    expect('{', context);
    std::set<std::string> keys;
    skip_whitespace();
    if (peek() == '}') {
      ++position_;
      return;
    }
    for (;;) {
      skip_whitespace();
      if (peek() != '"') fail(context + ": expected a string key" + found());
      const std::size_t key_position = position_;
      std::string key = parse_string(context);
      if (!keys.insert(key).second) {
        position_ = key_position;
        fail(context + ": duplicate key " + json_quote(key));
      }
      expect(':', context + ", after key " + json_quote(key));
      on_member(key);
      skip_whitespace();
      if (peek() == ',') {
        ++position_;
        continue;
      }
      if (peek() == '}') {
        ++position_;
        return;
      }
      fail(context + ": expected ',' or '}'" + found());
    }
  }

  void parse_metadata(Metadata& metadata) {
    parse_object("__metadata__", [&](const std::string& key) {
      skip_whitespace();
      if (peek() != '"') fail("__metadata__: the value of " + json_quote(key) + " must be a string" + found());
      metadata[key] = parse_string("__metadata__");
    });
  }

  TensorInfo parse_tensor(const std::string& name) {
    if (name.empty()) fail("a tensor has an empty name");
    TensorInfo info;
    info.name = name;
    bool has_dtype = false, has_shape = false, has_offsets = false;
    parse_object(name, [&](const std::string& field) {
      if (field == "dtype") {
        skip_whitespace();
        if (peek() != '"') fail(name + ": dtype must be a string" + found());
        const std::string dtype = parse_string(name);
        bool known = false;
        for (const DtypeEntry& entry : dtype_table)
          if (dtype == entry.name) info.dtype = entry.dtype, known = true;
        if (!known) fail(name + ": unknown dtype " + json_quote(dtype) + " (expected F32, F64, F16, BF16, I64, ...)");
        has_dtype = true;
      } else if (field == "shape") {
        parse_array(name + ": shape", [&] {
          if (info.shape.size() == max_rank)
            fail(name + ": shape has more than " + std::to_string(max_rank) + " dimensions");
          const std::uint64_t dim = parse_unsigned(name + ": shape");
          if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            fail(name + ": shape dimension " + std::to_string(dim) + " is too large");
          info.shape.push_back(static_cast<std::int64_t>(dim));
        });
        has_shape = true;
      } else if (field == "data_offsets") {
        std::vector<std::uint64_t> offsets;
        parse_array(name + ": data_offsets", [&] {
          if (offsets.size() == 2) fail(name + ": data_offsets must hold exactly 2 numbers, found more");
          offsets.push_back(parse_unsigned(name + ": data_offsets"));
        });
        if (offsets.size() != 2)
          fail(name + ": data_offsets must hold exactly 2 numbers, found " + std::to_string(offsets.size()));
        info.begin = offsets[0];
        info.end = offsets[1];
        has_offsets = true;
      } else {
        fail(name + ": unknown field " + json_quote(field) + " (expected dtype, shape and data_offsets)");
      }
    });
    if (!has_dtype) fail(name + ": missing field \"dtype\"");
    if (!has_shape) fail(name + ": missing field \"shape\"");
    if (!has_offsets) fail(name + ": missing field \"data_offsets\"");
    return info;
  }

  template <typename OnElement>
  void parse_array(const std::string& context, OnElement on_element) {
    skip_whitespace();
    if (peek() != '[') fail(context + ": expected an array" + found());
    ++position_;
    skip_whitespace();
    if (peek() == ']') {
      ++position_;
      return;
    }
    for (;;) {
      on_element();
      skip_whitespace();
      if (peek() == ',') {
        ++position_;
        continue;
      }
      if (peek() == ']') {
        ++position_;
        return;
      }
      fail(context + ": expected ',' or ']'" + found());
    }
  }

  // A JSON number that must be a non-negative integer below 2^64 (RFC 8259 syntax: no
  // leading zeros, no '+').
  std::uint64_t parse_unsigned(const std::string& context) {
    skip_whitespace();
    if (peek() == '-') fail(context + ": expected a non-negative integer, found a negative number");
    if (peek() < '0' || peek() > '9') fail(context + ": expected a non-negative integer" + found());
    const std::size_t start = position_;
    std::uint64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      const auto digit = static_cast<std::uint64_t>(peek() - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
        fail(context + ": integer does not fit in 64 bits");
      value = value * 10 + digit;
      ++position_;
    }
    if (text_[start] == '0' && position_ - start > 1) {
      position_ = start;
      fail(context + ": numbers must not have leading zeros");
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E')
      fail(context + ": expected an integer, found a fraction or an exponent");
    return value;
  }

  std::string parse_string(const std::string& context) {
    if (peek() != '"') fail(context + ": expected a string" + found());
    ++position_;
    std::string out;
    for (;;) {
      if (at_end()) fail(context + ": unterminated string");
      const unsigned char c = text_[position_];
      if (c == '"') {
        ++position_;
        return out;
      }
      if (c < 0x20) fail(context + ": control character " + std::to_string(c) + " inside a string (must be escaped)");
      if (c == '\\') {
        ++position_;
        const int escape = peek();
        ++position_;
        // The two-character escapes, and what each stands for.
        static const char escapes[] = "\"\\/bfnrt", meanings[] = "\"\\/\b\f\n\r\t";
        if (const char* known = escape > 0 ? std::strchr(escapes, escape) : nullptr) {
          out += meanings[known - escapes];
        } else if (escape == 'u') {
          const UnicodeEscape decoded = decode_unicode_escape(reinterpret_cast<const char*>(text_), size_, position_);
          if (decoded.problem) fail(context + ": " + decoded.problem + found());
          append_utf8(decoded.code_point, out);
        } else {
          --position_;
          fail(context + ": invalid escape sequence in a string");
        }
        continue;
      }
      const std::size_t length = utf8_sequence_length(text_, size_, position_);
      if (length == 0) fail(context + ": invalid UTF-8 inside a string");
      out.append(reinterpret_cast<const char*>(text_ + position_), length);
      position_ += length;
    }
  }

  const unsigned char* text_;
  std::size_t size_;
  std::size_t position_ = 0;
  const std::string& source_;
};

// Byte count of a tensor of this dtype and shape; fails (returns false) on overflow.
inline bool tensor_bytes(Dtype dtype, const std::vector<std::int64_t>& shape, std::uint64_t& bytes) {
  std::uint64_t total = dtype_size(dtype);
  for (const std::int64_t dim : shape) {
    const auto extent = static_cast<std::uint64_t>(dim);
    if (extent != 0 && total > std::numeric_limits<std::uint64_t>::max() / extent) return false;
    total *= extent;
  }
  bytes = total;
  return true;
}

}  // namespace detail

// A safetensors file read into memory and validated: the header is parsed and every tensor's
// place in the data section checked before anything is returned.
class SafetensorsFile {
 public:
  // Reads and validates a whole file; throws minicnn::error naming the file and the problem.
  static SafetensorsFile read(const std::string& path) {
    require_little_endian_host(path);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(path + ": cannot open the file for reading");
    in.seekg(0, std::ios::end);
    const std::streamoff file_size = in.tellg();
    in.seekg(0, std::ios::beg);
    if (file_size < 0) throw error(path + ": cannot determine the file's size");
    const auto size = static_cast<std::uint64_t>(file_size);
    unsigned char prefix[8];
    if (size < 8) throw too_short(path, size);
    if (!in.read(reinterpret_cast<char*>(prefix), 8)) throw error(path + ": cannot read the header length");
    // Checked before the rest of the file is read, so a bogus length never allocates.
    check_header_length(path, load_u64_le(prefix), size - 8);
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    std::memcpy(bytes.data(), prefix, 8);
    if (!in.read(reinterpret_cast<char*>(bytes.data() + 8), static_cast<std::streamsize>(size - 8)))
      throw error(path + ": read failed (the file changed while being read?)");
    return SafetensorsFile(std::move(bytes), path);
  }

  // Validates a file's bytes already in memory; `source` names them in error messages.
  static SafetensorsFile parse(const void* data, std::size_t size, const std::string& source) {
    require_little_endian_host(source);
    const auto* bytes = static_cast<const unsigned char*>(data);
    if (size < 8) throw too_short(source, size);
    check_header_length(source, load_u64_le(bytes), size - 8);
    return SafetensorsFile(std::vector<unsigned char>(bytes, bytes + size), source);
  }

  const std::string& source() const { return source_; }
  const Metadata& metadata() const { return metadata_; }
  // The tensors in the order of their data.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  const TensorInfo& info(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) throw error(source_ + ": no tensor named " + name);
    return tensors_[it->second];
  }

  // The little-endian bytes of a tensor (entry.byte_size() of them), whatever its dtype.
  const void* raw_data(const TensorInfo& entry) const { return bytes_.data() + data_start_ + entry.begin; }

  // The tensor `name` as a new Tensor<T>; its dtype must be T's (F32 for float, F64 for double).
  template <typename T>
  Tensor<T> tensor(const std::string& name) const {
    const TensorInfo& entry = info(name);
    check_dtype<T>(entry);
    Tensor<T> out(to_shape(entry));
    copy_data(entry, out);
    return out;
  }

  // Copies tensor `name` into `destination`, whose shape and dtype it must have.
  template <typename T>
  void copy_to(const std::string& name, Tensor<T>& destination) const {
    const TensorInfo& entry = info(name);
    check_dtype<T>(entry);
    if (entry.shape != destination.shape().dims())
      throw error(source_ + ": " + name + ": expected " + destination.shape().str() + ", found " +
                  dims_string(entry.shape));
    copy_data(entry, destination);
  }

 private:
  SafetensorsFile(std::vector<unsigned char> bytes, std::string source)
      : source_(std::move(source)), bytes_(std::move(bytes)) {
    const std::uint64_t header_length = load_u64_le(bytes_.data());
    data_start_ = 8 + static_cast<std::size_t>(header_length);
    detail::HeaderParser(reinterpret_cast<const char*>(bytes_.data() + 8), static_cast<std::size_t>(header_length),
                         source_)
        .parse(metadata_, tensors_);
    check_layout(bytes_.size() - data_start_);
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
  }

  static error too_short(const std::string& source, std::uint64_t size) {
    return error(source + ": the file is " + std::to_string(size) +
                 " bytes long, too short for the 8-byte header length (truncated file?)");
  }

  static void check_header_length(const std::string& source, std::uint64_t header_length, std::uint64_t available) {
    if (header_length > detail::max_header_bytes)
      throw error(source + ": header length " + std::to_string(header_length) + " exceeds the limit of " +
                  std::to_string(detail::max_header_bytes) + " bytes (corrupt, or not a safetensors file)");
    if (header_length > available)
      throw error(source + ": header length " + std::to_string(header_length) + " exceeds the " +
                  std::to_string(available) + " bytes that follow the length prefix (truncated file?)");
    if (header_length < 2)
      throw error(source + ": header length " + std::to_string(header_length) + " is too small for a JSON object");
  }

  // Every tensor's bytes lie inside the data section, match its dtype and shape, and together
  // the tensors tile the section: sorted by offset, each begins where the previous one ended.
  void check_layout(std::uint64_t data_size) {
    for (const TensorInfo& entry : tensors_) {
      const std::string offsets =
          "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
      if (entry.begin > entry.end) throw error(source_ + ": " + entry.name + ": " + offsets + " end before they begin");
      if (entry.end > data_size)
        throw error(source_ + ": " + entry.name + ": " + offsets + " lie outside the " + std::to_string(data_size) +
                    "-byte data section (truncated file?)");
      std::uint64_t expected = 0;
      const bool representable = detail::tensor_bytes(entry.dtype, entry.shape, expected);
      if (!representable || expected != entry.byte_size())
        throw error(source_ + ": " + entry.name + ": " + offsets + " hold " + std::to_string(entry.byte_size()) +
                    " bytes, but dtype " + dtype_name(entry.dtype) + " with shape " + dims_string(entry.shape) +
                    " needs " + (representable ? std::to_string(expected) : std::string("more than 2^64")));
    }
    std::stable_sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;
    const TensorInfo* previous = nullptr;
    for (const TensorInfo& entry : tensors_) {
      if (entry.begin < covered)
        throw error(source_ + ": tensors " + previous->name + " [" + std::to_string(previous->begin) + ", " +
                    std::to_string(previous->end) + "] and " + entry.name + " [" + std::to_string(entry.begin) + ", " +
                    std::to_string(entry.end) + "] overlap");
      if (entry.begin > covered)
        throw error(source_ + ": bytes [" + std::to_string(covered) + ", " + std::to_string(entry.begin) +
                    ") of the data section belong to no tensor");
      covered = entry.end;
      previous = &entry;
    }
    if (covered != data_size)
      throw error(source_ + ": bytes [" + std::to_string(covered) + ", " + std::to_string(data_size) +
                  ") at the end of the data section belong to no tensor");
  }

  template <typename T>
  void check_dtype(const TensorInfo& entry) const {
    if (entry.dtype != dtype_of<T>())
      throw error(source_ + ": " + entry.name + ": expected dtype " + dtype_name(dtype_of<T>()) + ", found " +
                  dtype_name(entry.dtype));
  }

  Shape to_shape(const TensorInfo& entry) const {
    if (entry.shape.empty())
      throw error(source_ + ": " + entry.name +
                  ": shape [] (a scalar) cannot be held by a minicnn Tensor; save it as [1]");
    if (entry.shape.size() > static_cast<std::size_t>(Shape::max_rank))
      throw error(source_ + ": " + entry.name + ": shape " + dims_string(entry.shape) + " has rank " +
                  std::to_string(entry.shape.size()) + "; a minicnn Tensor holds ranks 1 to 4");
    return Shape(entry.shape);
  }

  template <typename T>
  void copy_data(const TensorInfo& entry, Tensor<T>& destination) const {
    if (entry.byte_size() > 0) std::memcpy(destination.data(), raw_data(entry), entry.byte_size());
  }

  std::string source_;
  std::vector<unsigned char> bytes_;
  std::size_t data_start_ = 0;
  Metadata metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
};

// A TensorRef to `tensor`'s data, which must outlive the write.
template <typename T>
TensorRef tensor_ref(std::string name, const Tensor<T>& tensor) {
  if (tensor.rank() == 0)
    throw error("safetensors: " + name + ": the tensor has no shape (rank 0), so there is nothing to save");
  return {std::move(name), dtype_of<T>(), tensor.shape().dims(), tensor.data()};
}

namespace detail {

// Writes a whole file through `sink(const void* data, std::size_t size)`: the length prefix,
// the header (padded with spaces so the data starts 8-byte aligned, as the reference
// implementation does), then the tensors in the given order.
template <typename Sink>
void write_safetensors(const std::vector<TensorRef>& tensors, const Metadata& metadata, const std::string& target,
                       Sink sink) {
  require_little_endian_host(target);
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!is_valid_utf8(key) || !is_valid_utf8(value))
        throw error(target + ": __metadata__ entry " + json_quote(key) + ": keys and values must be valid UTF-8");
      header += (first ? "" : ",") + json_quote(key) + ":" + json_quote(value);
      first = false;
    }
    header += "}";
  }
  std::set<std::string> names;
  std::vector<std::uint64_t> sizes;
  std::uint64_t offset = 0;
  for (const TensorRef& tensor : tensors) {
    if (tensor.name.empty()) throw error(target + ": a tensor has an empty name");
    if (tensor.name == "__metadata__") throw error(target + ": \"__metadata__\" is reserved and cannot name a tensor");
    if (!is_valid_utf8(tensor.name))
      throw error(target + ": tensor name " + json_quote(tensor.name) + " is not valid UTF-8");
    if (!names.insert(tensor.name).second) throw error(target + ": two tensors are named " + tensor.name);
    if (tensor.shape.size() > max_rank)
      throw error(target + ": " + tensor.name + ": rank " + std::to_string(tensor.shape.size()) + " is above " +
                  std::to_string(max_rank));
    std::uint64_t bytes = 0;
    for (const std::int64_t dim : tensor.shape)
      if (dim < 0)
        throw error(target + ": " + tensor.name + ": negative dimension in shape " + dims_string(tensor.shape));
    if (!tensor_bytes(tensor.dtype, tensor.shape, bytes))
      throw error(target + ": " + tensor.name + ": shape " + dims_string(tensor.shape) + " is too large");
    if (bytes > 0 && tensor.data == nullptr) throw error(target + ": " + tensor.name + ": no data");
    header += (header.size() > 1 ? "," : "") + json_quote(tensor.name) + ":{\"dtype\":\"" + dtype_name(tensor.dtype) +
              "\",\"shape\":[";
    for (std::size_t i = 0; i < tensor.shape.size(); ++i) header += (i ? "," : "") + std::to_string(tensor.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
    sizes.push_back(bytes);
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > max_header_bytes)
    throw error(target + ": the header would be " + std::to_string(header.size()) + " bytes, above the limit of " +
                std::to_string(max_header_bytes));
  unsigned char prefix[8];
  store_u64_le(header.size(), prefix);
  sink(prefix, sizeof prefix);
  sink(header.data(), header.size());
  for (std::size_t i = 0; i < tensors.size(); ++i)
    if (sizes[i] > 0) sink(tensors[i].data, static_cast<std::size_t>(sizes[i]));
}

}  // namespace detail

// The bytes of a safetensors file holding `tensors` (in that order) and `metadata`.
inline std::string serialize_safetensors(const std::vector<TensorRef>& tensors, const Metadata& metadata = {}) {
  std::string out;
  detail::write_safetensors(tensors, metadata, "safetensors", [&](const void* data, std::size_t size) {
    out.append(static_cast<const char*>(data), size);
  });
  return out;
}

// Writes `tensors` (in that order) and `metadata` to `path`, atomically.
inline void save_tensors(const std::vector<TensorRef>& tensors, const std::string& path,
                         const Metadata& metadata = {}) {
  AtomicFile file(path);
  detail::write_safetensors(tensors, metadata, path,
                            [&](const void* data, std::size_t size) { file.write(data, size); });
  file.commit();
}

// Writes a name -> tensor map (in name order), atomically.
template <typename T>
void save_tensors(const TensorMap<T>& tensors, const std::string& path, const Metadata& metadata = {}) {
  std::vector<TensorRef> refs;
  for (const auto& [name, tensor] : tensors) refs.push_back(tensor_ref(name, tensor));
  save_tensors(refs, path, metadata);
}

// Reads every tensor of a file; all must have T's dtype. `metadata`, when given, receives
// the file's __metadata__.
template <typename T>
TensorMap<T> load_tensors(const std::string& path, Metadata* metadata = nullptr) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  TensorMap<T> out;
  for (const TensorInfo& entry : file.tensors()) out.emplace(entry.name, file.tensor<T>(entry.name));
  if (metadata) *metadata = file.metadata();
  return out;
}

// Saves a model's state (parameters and buffers, such as BatchNorm's running statistics) under
// their state_dict names ("classifier.5.weight"), in state_dict order, atomically.
template <typename T>
void save_safetensors(Module<T>& model, const std::string& path, const Metadata& metadata = {}) {
  std::vector<TensorRef> refs;
  for (const NamedTensor<T>& named : model.state()) refs.push_back(tensor_ref(named.name, *named.tensor));
  save_tensors(refs, path, metadata);
}

// Loads every parameter and buffer of `model` from `path`. The file must hold exactly the
// model's state names, each with the model's shape and T's dtype; every difference is listed in
// one error, and on error the model is left unchanged. This overload takes a file already read
// (SafetensorsFile::read(path)); the errors name its source.
template <typename T>
void load_safetensors(Module<T>& model, const SafetensorsFile& file, Metadata* metadata = nullptr) {
  const std::string& path = file.source();
  const std::vector<NamedTensor<T>> state = model.state();
  std::vector<std::string> problems, missing;
  std::set<std::string> expected_names;
  for (const NamedTensor<T>& named : state) {
    expected_names.insert(named.name);
    const Tensor<T>& value = *named.tensor;
    if (!file.contains(named.name)) {
      missing.push_back(named.name + " " + value.shape().str());
      continue;
    }
    const TensorInfo& entry = file.info(named.name);
    if (entry.dtype != dtype_of<T>())
      problems.push_back(named.name + ": expected dtype " + dtype_name(dtype_of<T>()) + ", found " +
                         dtype_name(entry.dtype));
    else if (entry.shape != value.shape().dims())
      problems.push_back(named.name + ": expected " + value.shape().str() + ", found " + dims_string(entry.shape));
  }
  std::vector<std::string> unexpected;
  for (const TensorInfo& entry : file.tensors())
    if (!expected_names.count(entry.name)) unexpected.push_back(entry.name + " " + dims_string(entry.shape));
  const auto join = [](const std::vector<std::string>& items) {
    std::string text;
    for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
    return text;
  };
  if (!missing.empty()) problems.push_back("missing tensors: " + join(missing));
  if (!unexpected.empty()) problems.push_back("unexpected tensors: " + join(unexpected));
  if (!problems.empty()) {
    std::string message = path + ": does not match the model: ";
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw error(message);
  }
  for (const NamedTensor<T>& named : state) file.copy_to(named.name, *named.tensor);
  if (metadata) *metadata = file.metadata();
}

// The same, reading the file.
template <typename T>
void load_safetensors(Module<T>& model, const std::string& path, Metadata* metadata = nullptr) {
  load_safetensors(model, SafetensorsFile::read(path), metadata);
}

}  // namespace minicnn::io
