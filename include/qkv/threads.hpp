// How many threads the parallel kernels use: an explicit request, else the QKV_NUM_THREADS
// environment variable, else every core the process may run on.
#pragma once

namespace qkv {

// requested > 0 wins; 0 means the default. Throws qkv::error when requested < 0 or when
// QKV_NUM_THREADS is set to anything but a positive integer.
int resolve_thread_count(int requested = 0);

}  // namespace qkv
