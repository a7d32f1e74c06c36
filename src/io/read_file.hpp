// A whole file's bytes, for the readers of files that are parsed at once.
#pragma once

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "qkv/error.hpp"

namespace qkv::io::detail {

// Throws qkv::error naming `path` and the system's reason when it cannot be read.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error("cannot read '" + path + "': " + std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace qkv::io::detail
