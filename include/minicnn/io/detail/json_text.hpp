#pragma once
// The text of JSON strings: UTF-8 well-formedness, UTF-16 surrogate pairs (how a \u escape
// spells a code point past U+FFFF), UTF-8 encoding and quoting. The helper of the safetensors
// header reader and writer (io/safetensors.hpp), the one JSON code of the library: it stays
// hand-written and strict (duplicate keys, bad UTF-8 and lone surrogates are errors) because it
// reads untrusted files and is fuzzed. Programs built on minicnn use a JSON library for their
// own files (the fashion_mnist demo uses nlohmann/json).
#include <cstddef>
#include <cstdint>
#include <string>

namespace minicnn::io {

inline bool is_high_surrogate(std::uint32_t code_unit) { return code_unit >= 0xD800 && code_unit <= 0xDBFF; }
inline bool is_low_surrogate(std::uint32_t code_unit) { return code_unit >= 0xDC00 && code_unit <= 0xDFFF; }
// The code point a high and a low surrogate spell together ("\ud83d\ude00" -> U+1F600).
inline std::uint32_t surrogate_pair(std::uint32_t high, std::uint32_t low) {
  return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
}

// The code point of a \u escape, or what is wrong with it (problem is null when it decoded).
struct UnicodeEscape {
  std::uint32_t code_point = 0;
  const char* problem = nullptr;
};

// Decodes a \u escape whose "\u" has been read: text[position] starts its 4 hexadecimal digits,
// followed, for a high surrogate, by "\u" and the 4 digits of the low one. Advances `position`
// past the escape, or to the offending character when it returns a problem.
inline UnicodeEscape decode_unicode_escape(const char* text, std::size_t size, std::size_t& position) {
  UnicodeEscape result;
  const auto hex4 = [&](std::uint32_t& value) {
    value = 0;
    for (int i = 0; i < 4; ++i, ++position) {
      const char h = position < size ? text[position] : '\0';
      const int digit = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
      if (digit < 0) {
        result.problem = "\\u must be followed by 4 hexadecimal digits";
        return false;
      }
      value = value * 16 + static_cast<std::uint32_t>(digit);
    }
    return true;
  };
  if (!hex4(result.code_point)) return result;
  if (is_low_surrogate(result.code_point)) {
    result.problem = "unpaired low surrogate in a \\u escape";
    return result;
  }
  if (!is_high_surrogate(result.code_point)) return result;
  if (size - position < 2 || text[position] != '\\' || text[position + 1] != 'u') {
    result.problem = "high surrogate \\u escape without its low surrogate";
    return result;
  }
  position += 2;
  std::uint32_t low = 0;
  if (!hex4(low)) return result;
  if (!is_low_surrogate(low)) {
    result.problem = "high surrogate followed by a non-low surrogate";
    return result;
  }
  result.code_point = surrogate_pair(result.code_point, low);
  return result;
}

// Checks one UTF-8 sequence starting at text[position]; returns its length, or 0 when the
// bytes are not well-formed UTF-8 (overlong forms, surrogates and values past U+10FFFF included).
inline std::size_t utf8_sequence_length(const unsigned char* text, std::size_t size, std::size_t position) {
  const unsigned char lead = text[position];
  if (lead < 0x80) return 1;
  std::size_t length;
  std::uint32_t code_point, minimum;
  if ((lead & 0xE0) == 0xC0)
    length = 2, code_point = lead & 0x1Fu, minimum = 0x80;
  else if ((lead & 0xF0) == 0xE0)
    length = 3, code_point = lead & 0x0Fu, minimum = 0x800;
  else if ((lead & 0xF8) == 0xF0)
    length = 4, code_point = lead & 0x07u, minimum = 0x10000;
  else
    return 0;
  if (size - position < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((text[position + i] & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (text[position + i] & 0x3Fu);
  }
  if (code_point < minimum || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) return 0;
  return length;
}

inline bool is_valid_utf8(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (std::size_t position = 0; position < text.size();) {
    const std::size_t length = utf8_sequence_length(bytes, text.size(), position);
    if (length == 0) return false;
    position += length;
  }
  return true;
}

inline void append_utf8(std::uint32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

// A JSON string literal for `text` (valid UTF-8): quotes, backslashes and control characters escaped.
inline std::string json_quote(const std::string& text) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += "\\u00";
      out += hex[byte >> 4];
      out += hex[byte & 0xF];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace minicnn::io
