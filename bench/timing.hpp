// Timing and memory measurement for benchmark rows: medians of repeated runs after warm-up, and
// the peak resident memory of one row (the high-water mark reset through /proc/self/clear_refs).
#pragma once

#include <functional>

namespace qkv::bench {

// wall: elapsed time. cpu: the process's CPU time divided by `threads`, which on a machine other
// jobs load is close to what a quiet machine's wall clock would give (exactly, for one thread;
// with several it also counts the time threads spin waiting at barriers, so it errs slow).
enum class clock_kind { wall, cpu };

struct timing_plan {
  int warmup = 1;                 // untimed runs first (page faults, thread start-up, caches)
  int reps = 5;                   // at least this many timed runs ...
  double min_seconds = 0;         // ... and more until this much time has passed
  double slow_seconds = 2;        // when one warm-up run takes longer than this, ...
  int slow_reps = 3;              // ... this many timed runs are enough,
  double very_slow_seconds = 20;  // and beyond this (the N = 32768 row), one
  clock_kind clock = clock_kind::wall;
  int threads = 1;  // cpu clock: the thread count the timed runs use
};

// Median time of `run` in milliseconds, by the plan's clock (the warm-up and repetition rules
// always follow the wall clock).
double median_ms(const std::function<void()>& run, const timing_plan& plan);

// Resets the process's resident-memory high-water mark to its current use (Linux "5" to
// /proc/self/clear_refs); false where the kernel does not allow it.
bool reset_peak_rss();
// The high-water mark (VmHWM) in MiB since the last reset, or -1 when unavailable.
double peak_rss_mb();

}  // namespace qkv::bench
