// The thread count rule of threads.hpp: explicit > QKV_NUM_THREADS > all available cores.
#include "qkv/threads.hpp"

#include <omp.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "qkv/error.hpp"

namespace qkv {

int resolve_thread_count(int requested) {
  if (requested < 0)
    throw error("threads: must be >= 0 (0 = default), got " + std::to_string(requested));
  if (requested > 0) return requested;
  if (const char* env = std::getenv("QKV_NUM_THREADS"); env && *env) {
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(env, &end, 10);
    if (*end != '\0' || errno != 0 || n < 1 || n > 65536)
      throw error(std::string("QKV_NUM_THREADS: expected a positive integer, got '") + env + "'");
    return static_cast<int>(n);
  }
  return omp_get_num_procs();
}

}  // namespace qkv
