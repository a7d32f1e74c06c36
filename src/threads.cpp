// The thread count rule of threads.hpp: explicit > QKV_NUM_THREADS > all available cores, each
// bounded so that a large count is refused with a message instead of failing inside the OpenMP
// runtime (which aborts, or dies with SIGSEGV, when it cannot create its threads).
#include "qkv/threads.hpp"

#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qkv/error.hpp"

namespace qkv {
namespace {

// Bytes one thread reserves: its stack (the soft RLIMIT_STACK, which is what the runtime gives
// new threads; 8 MiB when unlimited, glibc's default then).
int64_t thread_stack_bytes() {
  constexpr int64_t fallback = int64_t{8} << 20;
  rlimit r{};
  if (getrlimit(RLIMIT_STACK, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return fallback;
  return std::max<int64_t>(static_cast<int64_t>(r.rlim_cur), int64_t{64} << 10);
}

int64_t available_memory_bytes() {
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return INT64_MAX;
  return static_cast<int64_t>(pages) * page;
}

}  // namespace

int max_thread_count() {
  const int64_t by_memory = available_memory_bytes() / thread_stack_bytes();
  return static_cast<int>(std::clamp<int64_t>(by_memory, 1, thread_limit));
}

int resolve_thread_count(int requested) {
  if (requested < 0)
    throw error("threads", "must be >= 0 (0 = default), got " + std::to_string(requested));
  const int most = max_thread_count();
  if (requested > most)
    throw error("threads", "at most " + std::to_string(most) + " (the limit is " +
                               std::to_string(thread_limit) +
                               ", lower when the available memory cannot hold the threads' "
                               "stacks), got " +
                               std::to_string(requested));
  if (requested > 0) return requested;
  if (const char* env = std::getenv("QKV_NUM_THREADS"); env && *env) {
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(env, &end, 10);
    if (*end != '\0' || errno != 0 || n < 1 || n > most)
      throw error("the environment variable QKV_NUM_THREADS: expected an integer in [1, " +
                  std::to_string(most) + "], got '" + env + "'");
    return static_cast<int>(n);
  }
  return std::min(omp_get_num_procs(), most);
}

}  // namespace qkv
