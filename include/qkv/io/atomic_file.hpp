// Writing a whole file or nothing: the bytes go to a temporary file beside the target, which is
// renamed into place only once they are all written and flushed.
#pragma once

#include <string>
#include <string_view>

namespace qkv::io {

// Throws qkv::error naming `path` when it cannot be written; leaves no file behind then.
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace qkv::io
