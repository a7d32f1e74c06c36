// The one exception type of the public API, and the assert macro for internal invariants.
// A qkv::error message names the argument, the broken rule and the shapes involved.
#pragma once

#include <stdexcept>
#include <string>

namespace qkv {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& message) : std::runtime_error(message) {}
  // A message about one argument: what() is "argument: rule", and argument() gives the name alone,
  // so that a caller (the command line) can say which of its own flags supplied it.
  error(std::string argument, const std::string& rule)
      : std::runtime_error(argument + ": " + rule), argument_(std::move(argument)) {}

  // The argument's name as the thrower spelled it ("q", "grad_out"), or "" when not given.
  const std::string& argument() const { return argument_; }
  // what() without the "argument: " prefix (the whole message when there is no argument).
  std::string rule() const {
    const std::string all = what();
    return argument_.empty() ? all : all.substr(argument_.size() + 2);
  }

 private:
  std::string argument_;
};

[[noreturn]] void assertion_failed(const char* condition, const char* file, int line);

}  // namespace qkv

// For invariants the library itself guarantees (not for user input: that gets a qkv::error).
#define QKV_ASSERT(condition) \
  ((condition) ? static_cast<void>(0) : ::qkv::assertion_failed(#condition, __FILE__, __LINE__))
