// How many threads the parallel kernels use: an explicit request, else the QKV_NUM_THREADS
// environment variable, else every core the process may run on.
#pragma once

namespace qkv {

// The most threads qkv runs: far beyond any core count it is made for, and low enough that the
// threads' stacks fit in memory (each thread reserves one; see max_thread_count()).
inline constexpr int thread_limit = 1024;

// min(thread_limit, the available memory / one thread's stack size): the largest count accepted.
int max_thread_count();

// requested > 0 wins; 0 means the default. Throws qkv::error (argument "threads") when requested
// < 0 or above max_thread_count(), and when QKV_NUM_THREADS is set to anything but an integer in
// [1, max_thread_count()].
int resolve_thread_count(int requested = 0);

}  // namespace qkv
