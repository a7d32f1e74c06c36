// MPI return codes and message sizes, checked: MPI counts are int, our sizes int64_t.
#pragma once

#include <mpi.h>

#include <climits>
#include <cstdint>
#include <string>

#include "qkv/error.hpp"

namespace qkv::ring {

// An MPI call that fails (with MPI_ERRORS_RETURN set) is an internal failure, not bad input.
inline void mpi_check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(call) + " failed: " + std::string(text, length));
}

// A message of `count` floats: one MPI message holds at most INT_MAX elements.
inline int message_count(int64_t count) {
  if (count > INT_MAX)
    throw error("ring", "a message of " + std::to_string(count) +
                            " floats exceeds MPI's int count; use more ranks or a smaller batch");
  return static_cast<int>(count);
}

}  // namespace qkv::ring

#define QKV_MPI(call) ::qkv::ring::mpi_check((call), #call)
