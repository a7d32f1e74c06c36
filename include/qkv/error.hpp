// The one exception type of the public API, and the assert macro for internal invariants.
// A qkv::error message names the argument, the broken rule and the shapes involved.
#pragma once

#include <stdexcept>
#include <string>

namespace qkv {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& message) : std::runtime_error(message) {}
};

[[noreturn]] void assertion_failed(const char* condition, const char* file, int line);

}  // namespace qkv

// For invariants the library itself guarantees (not for user input: that gets a qkv::error).
#define QKV_ASSERT(condition) \
  ((condition) ? static_cast<void>(0) : ::qkv::assertion_failed(#condition, __FILE__, __LINE__))
