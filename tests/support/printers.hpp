// GoogleTest printers for the library's enums used as test parameters, so that a failing case
// prints its name ("fused", "onednn") rather than the bytes of its value.
#pragma once

#include <ostream>

#include "qkv/attention.hpp"
#include "qkv/gemm.hpp"

namespace qkv {

inline void PrintTo(sdpa_impl impl, std::ostream* os) {
  *os << to_string(impl);
}

inline void PrintTo(gemm_backend backend, std::ostream* os) {
  *os << to_string(backend);
}

}  // namespace qkv
