#pragma once
// Little-endian helpers for the file formats in io/ (safetensors, ONNX): both store numbers
// little-endian. minicnn copies tensor data to and from files with memcpy, which is right only
// on a little-endian host; a big-endian host is refused with a clear error instead of
// silently writing byte-swapped files.
#include <cstdint>
#include <cstring>
#include <string>

#include "minicnn/error.hpp"

namespace minicnn::io {

inline bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first_byte = 0;
  std::memcpy(&first_byte, &probe, 1);
  return first_byte == 1;
}

// Throws minicnn::error on a big-endian host; `what` names the file or operation.
inline void require_little_endian_host(const std::string& what) {
  if (!host_is_little_endian())
    throw error(what +
                ": this host is big-endian; minicnn reads and writes little-endian files only on "
                "little-endian hosts (x86-64, AArch64, RISC-V)");
}

inline std::uint64_t load_u64_le(const unsigned char* bytes) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

inline void store_u64_le(std::uint64_t value, unsigned char* bytes) {
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
}

}  // namespace minicnn::io
