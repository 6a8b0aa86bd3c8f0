#pragma once
// Byte-level file builders shared by the data-pipeline tests (scratch directories come from
// temp_dir.hpp).
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "minicnn/data/idx.hpp"
#include "temp_dir.hpp"

namespace minicnn::data_testing {

using Bytes = std::vector<unsigned char>;

inline void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// An IDX header: 0x00 0x00, type code, dimension count, big-endian uint32 sizes.
inline Bytes idx_header(std::uint8_t type_code, const std::vector<std::uint32_t>& dims) {
  Bytes bytes = {0, 0, type_code, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<unsigned char>(d >> shift));
  return bytes;
}

// The message of the minicnn::error that `action` throws; a marker string if it throws none.
template <typename F>
std::string error_of(F&& action) {
  try {
    action();
  } catch (const minicnn::error& e) {
    return e.what();
  }
  return "<no minicnn::error thrown>";
}

inline Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline Bytes gzip_bytes(const Bytes& bytes) {
  Bytes out;
  data::detail::append_gzip(bytes.data(), bytes.size(), out, "test");
  return out;
}

}  // namespace minicnn::data_testing
