// Files written byte for byte, without validation, for tests of what the readers refuse.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace qkv::testing {

// A .npy file: format version `major` (1: 2-byte header length; 2, 3: 4-byte), the header `dict`
// padded with spaces and a newline so that the data starts on a 64-byte boundary, then `data`.
inline std::string npy_bytes(std::string dict, const std::string& data, int major = 1) {
  const size_t prefix = major == 1 ? 10 : 12;
  dict.append((64 - (prefix + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  const uint32_t len = static_cast<uint32_t>(dict.size());
  bytes.append(reinterpret_cast<const char*>(&len), major == 1 ? 2 : 4);
  return bytes + dict + data;
}

// A .safetensors file: the 8-byte length of `header` (exactly as given), the header, `data`.
inline std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  return bytes + header + data;
}

}  // namespace qkv::testing
