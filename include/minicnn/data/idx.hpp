#pragma once
// IDX files, the format of MNIST and Fashion-MNIST: a hand-written reader and writer.
//
// Layout, every number big-endian:
//   byte 0, 1   0x00 0x00 (the magic)
//   byte 2      element type: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
//   byte 3      number of dimensions d (minicnn accepts 1 to 4)
//   4 * d       the dimension sizes as uint32
//   the rest    the elements, row-major, each big-endian
// A file may be gzip-compressed as a whole; gzip is recognised by its magic bytes (1f 8b),
// never by the file name.
//
// Contract of the reader: it never trusts the header. Every malformed input raises
// minicnn::error with a message that names the file and the field, and no allocation exceeds
// what the input can supply: a raw file's payload is checked against the file size before
// anything is allocated, and a gzip file's payload buffer grows only as data actually
// decompresses (after rejecting sizes beyond deflate's maximum ratio of 1032:1).
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "minicnn/error.hpp"
#include "minicnn/io/atomic_file.hpp"
#include "minicnn/tensor.hpp"

namespace minicnn::data {

// The element types of the IDX format; the enumerator's value is the type code in byte 2.
enum class IdxType : std::uint8_t { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };

enum class Compression { none, gzip };

inline const char* idx_type_name(IdxType type) {
  switch (type) {
    case IdxType::u8:
      return "u8";
    case IdxType::i8:
      return "i8";
    case IdxType::i16:
      return "i16";
    case IdxType::i32:
      return "i32";
    case IdxType::f32:
      return "f32";
    case IdxType::f64:
      return "f64";
  }
  return "unknown";
}

inline std::size_t idx_type_size(IdxType type) {
  switch (type) {
    case IdxType::u8:
    case IdxType::i8:
      return 1;
    case IdxType::i16:
      return 2;
    case IdxType::i32:
    case IdxType::f32:
      return 4;
    case IdxType::f64:
      return 8;
  }
  return 0;
}

// The C++ type of each IDX element type, and back.
template <typename T>
struct idx_type_of;
template <>
struct idx_type_of<std::uint8_t> {
  static constexpr IdxType value = IdxType::u8;
};
template <>
struct idx_type_of<std::int8_t> {
  static constexpr IdxType value = IdxType::i8;
};
template <>
struct idx_type_of<std::int16_t> {
  static constexpr IdxType value = IdxType::i16;
};
template <>
struct idx_type_of<std::int32_t> {
  static constexpr IdxType value = IdxType::i32;
};
template <>
struct idx_type_of<float> {
  static constexpr IdxType value = IdxType::f32;
};
template <>
struct idx_type_of<double> {
  static constexpr IdxType value = IdxType::f64;
};

template <typename T, typename = void>
struct is_idx_element : std::false_type {};
template <typename T>
struct is_idx_element<T, std::void_t<decltype(idx_type_of<T>::value)>> : std::true_type {};

// The content of an IDX file: a tensor of one of the six element types.
class IdxArray {
 public:
  using Storage = std::variant<Tensor<std::uint8_t>, Tensor<std::int8_t>, Tensor<std::int16_t>, Tensor<std::int32_t>,
                               Tensor<float>, Tensor<double>>;

  IdxArray() = default;
  template <typename T>
  explicit IdxArray(Tensor<T> values) : storage_(std::move(values)) {
    static_assert(is_idx_element<T>::value, "IdxArray holds u8, i8, i16, i32, f32 or f64 tensors");
  }

  IdxType type() const {
    return std::visit([](const auto& t) { return idx_type_of<typename std::decay_t<decltype(t)>::value_type>::value; },
                      storage_);
  }
  const Shape& shape() const {
    return std::visit([](const auto& t) -> const Shape& { return t.shape(); }, storage_);
  }
  std::int64_t size() const { return shape().numel(); }

  template <typename T>
  bool holds() const {
    return std::holds_alternative<Tensor<T>>(storage_);
  }
  // The stored tensor itself; throws unless the element type is exactly T.
  template <typename T>
  const Tensor<T>& get() const {
    check_holds<T>();
    return std::get<Tensor<T>>(storage_);
  }
  template <typename T>
  Tensor<T>& get() {
    check_holds<T>();
    return std::get<Tensor<T>>(storage_);
  }

  // A copy converted to T. Conversions to an integer type are range-checked (a value that does
  // not fit, or a NaN, throws); floating-point values are truncated toward zero, as static_cast.
  template <typename T>
  Tensor<T> to() const {
    static_assert(is_idx_element<T>::value, "IdxArray::to<T>: T must be u8, i8, i16, i32, f32 or f64");
    return std::visit([](const auto& source) { return convert<T>(source); }, storage_);
  }

  const Storage& storage() const { return storage_; }

 private:
  template <typename T>
  void check_holds() const {
    if (!holds<T>())
      throw error(std::string("IdxArray: holds ") + idx_type_name(type()) + " elements, not " +
                  idx_type_name(idx_type_of<T>::value));
  }

  template <typename T, typename S>
  static Tensor<T> convert(const Tensor<S>& source) {
    Tensor<T> out;
    out.resize(source.shape());
    const S* in = source.data();
    T* result = out.data();
    for (std::int64_t i = 0; i < source.size(); ++i) {
      if constexpr (std::is_integral<T>::value && !std::is_same<T, S>::value) {
        // A double holds every u8..i32 value and every f32 value exactly, so the bound test is
        // exact; it also rejects NaN. Values are then truncated toward zero by static_cast.
        const double value = static_cast<double>(in[i]);
        if (!(value >= static_cast<double>(std::numeric_limits<T>::lowest()) &&
              value <= static_cast<double>(std::numeric_limits<T>::max())))
          throw error(std::string("IdxArray::to<") + idx_type_name(idx_type_of<T>::value) + ">: element " +
                      std::to_string(i) + " (" + std::to_string(value) + ") does not fit in " +
                      idx_type_name(idx_type_of<T>::value));
      }
      result[i] = static_cast<T>(in[i]);
    }
    return out;
  }

  Storage storage_;
};

namespace detail {

// Deflate never expands data by more than 1032:1 (a 258-byte match coded in 2 bits), so a
// gzip input of n bytes decompresses to at most this many bytes.
inline std::uint64_t gzip_max_output(std::uint64_t compressed_bytes) {
  constexpr std::uint64_t max_ratio = 1032;
  constexpr std::uint64_t slack = 1 << 16;
  if (compressed_bytes > (std::numeric_limits<std::uint64_t>::max() - slack) / max_ratio)
    return std::numeric_limits<std::uint64_t>::max();
  return compressed_bytes * max_ratio + slack;
}

// More elements than this are never a real data set; the limit matches Shape's.
constexpr std::uint64_t idx_max_elements = std::uint64_t{1} << 40;

inline std::string hex_byte(unsigned value) {
  static const char digits[] = "0123456789ABCDEF";
  return std::string("0x") + digits[(value >> 4) & 0xF] + digits[value & 0xF];
}

inline std::string dims_string(const std::vector<std::uint64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// The undecoded bytes of the input: a memory buffer or an open file, read front to back.
class InputBytes {
 public:
  InputBytes(const unsigned char* data, std::uint64_t size) : memory_(data), size_(size) {}

  explicit InputBytes(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code status_error;
    const fs::file_status status = fs::status(path, status_error);
    if (status_error || !fs::exists(status))
      throw error("IDX file '" + path +
                  "': cannot open: " + (status_error ? status_error.message() : std::string("no such file")));
    if (fs::is_directory(status)) throw error("IDX file '" + path + "': cannot open: it is a directory");
    if (!fs::is_regular_file(status)) throw error("IDX file '" + path + "': cannot open: not a regular file");
    file_ = std::fopen(path.c_str(), "rb");
    if (file_ == nullptr) throw error("IDX file '" + path + "': cannot open: " + std::strerror(errno));
    std::error_code size_error;
    size_ = fs::file_size(path, size_error);
    if (size_error) {
      std::fclose(file_);
      throw error("IDX file '" + path + "': cannot read its size: " + size_error.message());
    }
  }
  ~InputBytes() {
    if (file_ != nullptr) std::fclose(file_);
  }
  InputBytes(const InputBytes&) = delete;
  InputBytes& operator=(const InputBytes&) = delete;

  std::uint64_t size() const { return size_; }
  std::uint64_t remaining() const { return size_ - position_; }

  // Copies min(count, remaining()) bytes into destination; throws if the file cannot supply
  // what its size promised (a read error or a file that shrank while being read).
  std::size_t read(unsigned char* destination, std::size_t count, const std::string& name) {
    const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(count, remaining()));
    if (wanted == 0) return 0;
    if (memory_ != nullptr) {
      std::memcpy(destination, memory_ + position_, wanted);
    } else if (std::fread(destination, 1, wanted, file_) != wanted) {
      throw error("IDX file '" + name + "': read error after " + std::to_string(position_) + " of " +
                  std::to_string(size_) + " bytes (file shrank or I/O failure)");
    }
    position_ += wanted;
    return wanted;
  }

  // The next up-to-`max_count` bytes, without a copy when the input is in memory.
  const unsigned char* next_chunk(std::size_t max_count, std::size_t& count, const std::string& name) {
    count = static_cast<std::size_t>(std::min<std::uint64_t>(max_count, remaining()));
    if (memory_ != nullptr) {
      const unsigned char* chunk = memory_ + position_;
      position_ += count;
      return chunk;
    }
    if (chunk_.size() < count) chunk_.resize(count);
    read(chunk_.data(), count, name);
    return chunk_.data();
  }

  void rewind(const std::string& name) {
    if (file_ != nullptr && std::fseek(file_, 0, SEEK_SET) != 0)
      throw error("IDX file '" + name + "': cannot seek back to its start");
    position_ = 0;
  }

 private:
  const unsigned char* memory_ = nullptr;
  std::FILE* file_ = nullptr;
  std::uint64_t size_ = 0;
  std::uint64_t position_ = 0;
  std::vector<unsigned char> chunk_;
};

// The decoded IDX byte stream: the input itself, or what its gzip stream inflates to.
class IdxByteSource {
 public:
  virtual ~IdxByteSource() = default;
  // Reads up to count bytes; fewer only at the end of the stream.
  virtual std::size_t read(unsigned char* destination, std::size_t count) = 0;
  // An upper bound on the bytes still to come; exact() says whether it is the exact count.
  virtual std::uint64_t max_remaining() const = 0;
  virtual bool exact() const = 0;

  std::size_t read_fully(unsigned char* destination, std::size_t count) {
    std::size_t done = 0;
    while (done < count) {
      const std::size_t n = read(destination + done, count - done);
      if (n == 0) break;
      done += n;
    }
    return done;
  }
};

class RawSource final : public IdxByteSource {
 public:
  RawSource(InputBytes& input, std::string name) : input_(input), name_(std::move(name)) {}
  std::size_t read(unsigned char* destination, std::size_t count) override {
    return input_.read(destination, count, name_);
  }
  std::uint64_t max_remaining() const override { return input_.remaining(); }
  bool exact() const override { return true; }

 private:
  InputBytes& input_;
  std::string name_;
};

class GzipSource final : public IdxByteSource {
 public:
  GzipSource(InputBytes& input, std::string name) : input_(input), name_(std::move(name)) {
    // 15 + 16: a gzip wrapper (not zlib or raw deflate) with the largest window.
    if (inflateInit2(&stream_, 15 + 16) != Z_OK) throw error("IDX file '" + name_ + "': cannot initialise zlib");
  }
  ~GzipSource() override { inflateEnd(&stream_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(unsigned char* destination, std::size_t count) override {
    std::size_t done = 0;
    while (done < count && !finished_) {
      if (stream_.avail_in == 0 && input_.remaining() > 0) {
        std::size_t chunk_size = 0;
        stream_.next_in = const_cast<unsigned char*>(input_.next_chunk(chunk_bytes, chunk_size, name_));
        stream_.avail_in = static_cast<uInt>(chunk_size);
      }
      const std::size_t step = std::min<std::size_t>(count - done, std::numeric_limits<uInt>::max());
      stream_.next_out = destination + done;
      stream_.avail_out = static_cast<uInt>(step);
      const int status = inflate(&stream_, Z_NO_FLUSH);
      const std::size_t produced = step - stream_.avail_out;
      done += produced;
      decompressed_ += produced;
      if (status == Z_STREAM_END) {
        if (stream_.avail_in == 0 && input_.remaining() == 0) {
          finished_ = true;
        } else {
          // More input after a complete member: gzip allows concatenated members.
          inflateReset(&stream_);
          ++member_;
        }
      } else if (status == Z_BUF_ERROR) {
        // No progress was possible: with output space available this means the input ran out.
        if (stream_.avail_in == 0 && input_.remaining() == 0)
          throw error("IDX file '" + name_ + "': truncated gzip stream: the compressed data (" +
                      std::to_string(input_.size()) + " bytes) ends inside gzip member " + std::to_string(member_) +
                      ", after " + std::to_string(decompressed_) + " decompressed bytes");
        throw error("IDX file '" + name_ + "': zlib made no progress with input and output available");
      } else if (status != Z_OK) {
        const std::string reason = stream_.msg != nullptr ? stream_.msg : zlib_status_name(status);
        throw error("IDX file '" + name_ + "': corrupt gzip stream in member " + std::to_string(member_) + " after " +
                    std::to_string(decompressed_) + " decompressed bytes (zlib: " + reason + ")");
      }
    }
    return done;
  }

  std::uint64_t max_remaining() const override { return gzip_max_output(input_.remaining() + stream_.avail_in); }
  bool exact() const override { return false; }
  std::uint64_t compressed_size() const { return input_.size(); }

 private:
  static constexpr std::size_t chunk_bytes = std::size_t{1} << 18;

  static std::string zlib_status_name(int status) {
    switch (status) {
      case Z_NEED_DICT:
        return "a preset dictionary is required";
      case Z_DATA_ERROR:
        return "data error";
      case Z_MEM_ERROR:
        return "out of memory";
      case Z_STREAM_ERROR:
        return "stream error";
      default:
        return "status " + std::to_string(status);
    }
  }

  InputBytes& input_;
  std::string name_;
  z_stream stream_{};
  bool finished_ = false;
  std::uint64_t decompressed_ = 0;
  int member_ = 1;
};

inline std::uint32_t load_big_endian_u32(const unsigned char* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

// Decodes `count` big-endian elements in place: `bytes` and `values` are the same storage.
template <typename T>
void decode_big_endian_in_place(T* values, std::size_t count) {
  if constexpr (sizeof(T) == 1) {
    (void)values;
    (void)count;
  } else {
    using Bits = std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>;
    auto* bytes = reinterpret_cast<unsigned char*>(values);
    for (std::size_t i = 0; i < count; ++i) {
      Bits bits = 0;
      for (std::size_t b = 0; b < sizeof(T); ++b) bits = static_cast<Bits>((bits << 8) | bytes[i * sizeof(T) + b]);
      std::memcpy(bytes + i * sizeof(T), &bits, sizeof(T));
    }
  }
}

template <typename T>
void encode_big_endian(const T* values, std::size_t count, unsigned char* out) {
  if constexpr (sizeof(T) == 1) {
    if (count > 0) std::memcpy(out, values, count);
  } else {
    using Bits = std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>;
    for (std::size_t i = 0; i < count; ++i) {
      Bits bits;
      std::memcpy(&bits, values + i, sizeof(T));
      for (std::size_t b = 0; b < sizeof(T); ++b)
        out[i * sizeof(T) + b] = static_cast<unsigned char>(bits >> (8 * (sizeof(T) - 1 - b)));
    }
  }
}

template <typename T>
IdxArray read_idx_payload(IdxByteSource& source, const std::string& name, const Shape& shape,
                          std::uint64_t payload_bytes, const std::string& layout) {
  Tensor<T> values;
  const std::size_t count = static_cast<std::size_t>(shape.numel());
  if (source.exact()) {
    values.resize(shape);
    // The size was checked against the input already: read straight into the tensor.
    const std::size_t got =
        source.read_fully(reinterpret_cast<unsigned char*>(values.data()), static_cast<std::size_t>(payload_bytes));
    if (got != payload_bytes)
      throw error("IDX file '" + name + "': truncated data: " + layout + " need " + std::to_string(payload_bytes) +
                  " bytes, the input holds only " + std::to_string(got));
  } else {
    // A gzip stream: memory follows what really decompresses, so a small file whose header
    // claims gigabytes fails after allocating about what it inflates to. Chunks of doubling
    // size take the first half of the payload; once that much has arrived, the tensor (at most
    // twice what decompressed) is allocated and the rest inflates straight into it.
    std::vector<std::unique_ptr<unsigned char[]>> chunks;
    std::vector<std::size_t> chunk_sizes;
    const auto payload = static_cast<std::size_t>(payload_bytes);
    std::size_t filled = 0;
    auto truncated = [&](std::size_t got) {
      return error("IDX file '" + name + "': truncated data: " + layout + " need " + std::to_string(payload_bytes) +
                   " bytes, the decompressed stream ends after " + std::to_string(got));
    };
    while (filled < payload - filled) {
      const std::size_t size = std::min(payload - filled, std::max<std::size_t>(std::size_t{1} << 16, filled));
      chunks.emplace_back(new unsigned char[size]);
      const std::size_t got = source.read_fully(chunks.back().get(), size);
      chunk_sizes.push_back(got);
      filled += got;
      if (got < size) throw truncated(filled);
    }
    values.resize(shape);
    auto* bytes = reinterpret_cast<unsigned char*>(values.data());
    std::size_t offset = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      std::memcpy(bytes + offset, chunks[i].get(), chunk_sizes[i]);
      offset += chunk_sizes[i];
    }
    chunks.clear();
    const std::size_t got = payload > filled ? source.read_fully(bytes + filled, payload - filled) : 0;
    if (filled + got < payload) throw truncated(filled + got);
  }
  decode_big_endian_in_place(values.data(), count);
  return IdxArray(std::move(values));
}

inline IdxArray parse_idx_stream(IdxByteSource& source, const std::string& name, bool gzip, std::uint64_t input_size) {
  const std::string file = "IDX file '" + name + "': ";
  const std::string decoded = gzip ? " (after gzip decompression)" : "";
  unsigned char magic[4] = {0, 0, 0, 0};
  const std::size_t magic_bytes = source.read_fully(magic, 4);
  if (magic_bytes == 0)
    throw error(file + "empty file" + decoded + ": expected an IDX header (0x00 0x00, type code, dimension count)");
  if (magic[0] != 0 || (magic_bytes > 1 && magic[1] != 0))
    throw error(file + "wrong magic: the first two bytes" + decoded + " are " + hex_byte(magic[0]) + " " +
                (magic_bytes > 1 ? hex_byte(magic[1]) : std::string("(missing)")) +
                ", expected 0x00 0x00 (not an IDX file)");
  if (magic_bytes < 4)
    throw error(file + "truncated header: the input" + decoded + " holds " + std::to_string(magic_bytes) +
                " bytes, the IDX magic needs 4");
  const std::uint8_t type_code = magic[2];
  const bool known_type = type_code == 0x08 || type_code == 0x09 || type_code == 0x0B || type_code == 0x0C ||
                          type_code == 0x0D || type_code == 0x0E;
  if (!known_type)
    throw error(file + "unknown element type code " + hex_byte(type_code) +
                " (byte 2); expected 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32 or 0x0E f64");
  const auto type = static_cast<IdxType>(type_code);
  const unsigned rank = magic[3];
  if (rank == 0 || rank > static_cast<unsigned>(Shape::max_rank))
    throw error(file + "dimension count (byte 3) is " + std::to_string(rank) + "; expected 1 to " +
                std::to_string(Shape::max_rank));

  unsigned char dim_bytes[4 * Shape::max_rank];
  const std::size_t got = source.read_fully(dim_bytes, 4 * rank);
  if (got != 4 * rank)
    throw error(file + "truncated header: " + std::to_string(rank) + " dimension sizes need " +
                std::to_string(4 * rank) + " bytes after the magic, the input" + decoded + " holds " +
                std::to_string(got));
  std::vector<std::uint64_t> dims(rank);
  for (unsigned axis = 0; axis < rank; ++axis) dims[axis] = load_big_endian_u32(dim_bytes + 4 * axis);

  // The product of the non-zero dimensions, checked: a zero dimension makes an empty array,
  // but the others must still describe a representable shape.
  std::uint64_t nonzero_product = 1;
  for (std::uint64_t d : dims) {
    if (d == 0) continue;
    if (nonzero_product > idx_max_elements / d)
      throw error(file + "overflowing dimension product: dimension sizes " + dims_string(dims) +
                  " multiply to more than 2^40 elements");
    nonzero_product *= d;
  }
  const bool has_zero = std::find(dims.begin(), dims.end(), std::uint64_t{0}) != dims.end();
  const std::uint64_t element_count = has_zero ? 0 : nonzero_product;
  const std::uint64_t payload_bytes = element_count * idx_type_size(type);
  const std::uint64_t header_bytes = 4 + 4 * std::uint64_t{rank};
  const std::string layout = "dimensions " + dims_string(dims) + " of " + idx_type_name(type);

  const std::uint64_t available = source.max_remaining();
  if (payload_bytes > available) {
    if (source.exact())
      throw error(file + "truncated data: " + layout + " need " + std::to_string(payload_bytes) + " bytes after the " +
                  std::to_string(header_bytes) + "-byte header, the file holds only " + std::to_string(available));
    throw error(file + "dimension sizes exceed the file: " + layout + " need " + std::to_string(payload_bytes) +
                " bytes, more than a " + std::to_string(input_size) + "-byte gzip file can decompress to");
  }
  if (source.exact() && payload_bytes < available)
    throw error(file + std::to_string(available - payload_bytes) + " trailing bytes after the data: " + layout +
                " need " + std::to_string(payload_bytes) + " bytes after the header, the file holds " +
                std::to_string(available));

  std::vector<std::int64_t> shape_dims(dims.begin(), dims.end());
  const Shape shape(shape_dims);
  IdxArray array;
  switch (type) {
    case IdxType::u8:
      array = read_idx_payload<std::uint8_t>(source, name, shape, payload_bytes, layout);
      break;
    case IdxType::i8:
      array = read_idx_payload<std::int8_t>(source, name, shape, payload_bytes, layout);
      break;
    case IdxType::i16:
      array = read_idx_payload<std::int16_t>(source, name, shape, payload_bytes, layout);
      break;
    case IdxType::i32:
      array = read_idx_payload<std::int32_t>(source, name, shape, payload_bytes, layout);
      break;
    case IdxType::f32:
      array = read_idx_payload<float>(source, name, shape, payload_bytes, layout);
      break;
    case IdxType::f64:
      array = read_idx_payload<double>(source, name, shape, payload_bytes, layout);
      break;
  }

  if (!source.exact()) {
    // Whatever decompresses after the payload is counted (bounded by the input's size) and refused.
    std::uint64_t trailing = 0;
    unsigned char scratch[4096];
    for (std::size_t n; (n = source.read(scratch, sizeof scratch)) > 0;) trailing += n;
    if (trailing > 0)
      throw error(file + std::to_string(trailing) + " trailing bytes after the data in the decompressed stream: " +
                  layout + " need " + std::to_string(payload_bytes) + " bytes after the header");
  }
  return array;
}

inline IdxArray parse_idx_input(InputBytes& input, const std::string& name) {
  unsigned char peek[2] = {0, 0};
  const std::size_t peeked = input.read(peek, 2, name);
  input.rewind(name);
  if (peeked == 2 && peek[0] == 0x1F && peek[1] == 0x8B) {
    GzipSource source(input, name);
    return parse_idx_stream(source, name, true, input.size());
  }
  RawSource source(input, name);
  return parse_idx_stream(source, name, false, input.size());
}

inline void append_gzip(const unsigned char* data, std::size_t size, std::vector<unsigned char>& out,
                        const std::string& name) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw error("IDX writer '" + name + "': cannot initialise zlib");
  stream.next_in = const_cast<unsigned char*>(data);
  std::size_t remaining_in = size;
  int status = Z_OK;
  do {
    const std::size_t step_in = std::min<std::size_t>(remaining_in, std::numeric_limits<uInt>::max());
    stream.avail_in = static_cast<uInt>(step_in);
    const int flush = step_in == remaining_in ? Z_FINISH : Z_NO_FLUSH;
    do {
      const std::size_t old_size = out.size();
      const std::size_t step_out = std::max<std::size_t>(1 << 16, stream.avail_in / 2);
      out.resize(old_size + step_out);
      stream.next_out = out.data() + old_size;
      stream.avail_out = static_cast<uInt>(step_out);
      status = deflate(&stream, flush);
      out.resize(old_size + step_out - stream.avail_out);
      if (status == Z_STREAM_ERROR) {
        deflateEnd(&stream);
        throw error("IDX writer '" + name + "': zlib deflate failed");
      }
    } while (stream.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END));
    remaining_in -= step_in - stream.avail_in;
  } while (remaining_in > 0);
  deflateEnd(&stream);
}

}  // namespace detail

// Reads an IDX file, raw or gzip-compressed (told apart by the gzip magic bytes).
inline IdxArray read_idx(const std::string& path) {
  detail::InputBytes input(path);
  return detail::parse_idx_input(input, path);
}

// Parses IDX bytes held in memory (raw or gzip); `name` stands for the file in error messages.
inline IdxArray parse_idx(const void* data, std::size_t size, const std::string& name = "<memory>") {
  detail::InputBytes input(static_cast<const unsigned char*>(data), size);
  return detail::parse_idx_input(input, name);
}

// The bytes of an IDX file holding `values`, optionally gzip-compressed.
template <typename T>
std::vector<unsigned char> encode_idx(const Tensor<T>& values, Compression compression = Compression::none,
                                      const std::string& name = "<memory>") {
  static_assert(is_idx_element<T>::value, "encode_idx: T must be u8, i8, i16, i32, f32 or f64");
  const Shape& shape = values.shape();
  if (shape.rank() < 1 || shape.rank() > Shape::max_rank)
    throw error("IDX writer '" + name + "': a tensor of rank " + std::to_string(shape.rank()) +
                " cannot be written; expected 1 to 4 dimensions");
  for (int axis = 0; axis < shape.rank(); ++axis)
    if (shape[axis] > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()))
      throw error("IDX writer '" + name + "': dimension " + std::to_string(axis) + " of shape " + shape.str() +
                  " does not fit in the format's uint32 size field");
  const std::size_t count = static_cast<std::size_t>(values.size());
  std::vector<unsigned char> bytes(4 + 4 * static_cast<std::size_t>(shape.rank()) + count * sizeof(T));
  bytes[2] = static_cast<unsigned char>(idx_type_of<T>::value);
  bytes[3] = static_cast<unsigned char>(shape.rank());
  for (int axis = 0; axis < shape.rank(); ++axis) {
    const auto d = static_cast<std::uint32_t>(shape[axis]);
    unsigned char* field = bytes.data() + 4 + 4 * axis;
    field[0] = static_cast<unsigned char>(d >> 24);
    field[1] = static_cast<unsigned char>(d >> 16);
    field[2] = static_cast<unsigned char>(d >> 8);
    field[3] = static_cast<unsigned char>(d);
  }
  detail::encode_big_endian(values.data(), count, bytes.data() + 4 + 4 * shape.rank());
  if (compression == Compression::none) return bytes;
  std::vector<unsigned char> compressed;
  detail::append_gzip(bytes.data(), bytes.size(), compressed, name);
  return compressed;
}

inline std::vector<unsigned char> encode_idx(const IdxArray& array, Compression compression = Compression::none,
                                             const std::string& name = "<memory>") {
  return std::visit([&](const auto& values) { return encode_idx(values, compression, name); }, array.storage());
}

// Writes `values` as an IDX file (gzip-compressed when asked; the name is not consulted),
// atomically: a temporary file renamed over `path` (io/atomic_file.hpp), so a crash never
// leaves a half-written file.
template <typename T>
void write_idx(const std::string& path, const Tensor<T>& values, Compression compression = Compression::none) {
  const std::vector<unsigned char> bytes = encode_idx(values, compression, path);
  io::write_file_atomically(path, bytes.data(), bytes.size());
}

inline void write_idx(const std::string& path, const IdxArray& array, Compression compression = Compression::none) {
  std::visit([&](const auto& values) { write_idx(path, values, compression); }, array.storage());
}

}  // namespace minicnn::data
