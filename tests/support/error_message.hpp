// The message of the qkv::error a call throws, for tests of refusals that check its wording.
#pragma once

#include <string>

#include "qkv/error.hpp"

namespace qkv::testing {

// The qkv::error message of f(), or "" when it does not throw.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const error& e) {
    return e.what();
  }
  return "";
}

}  // namespace qkv::testing
