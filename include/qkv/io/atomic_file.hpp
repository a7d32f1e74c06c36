// Whole files. Reading: regular files only, so that a directory, a FIFO with no writer or an
// endless device (/dev/zero) is refused before it is opened. Writing: the whole file or nothing,
// the bytes going to a temporary file beside the target that is renamed into place only once they
// are all written and flushed.
#pragma once

#include <string>
#include <string_view>

namespace qkv::io {

// The bytes of the regular file at `path` (symbolic links followed). Throws qkv::error naming
// `path` when it is missing, unreadable, or not a regular file (a directory, FIFO, device, socket).
std::string read_regular_file(const std::string& path);

// Throws qkv::error naming `path` when it cannot be written; leaves no file behind then.
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace qkv::io
