// Medians of repeated timings and the per-row peak resident memory (Linux /proc).
#include "timing.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

namespace qkv::bench {

namespace {

double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

}  // namespace

double median_ms(const std::function<void()>& run, const timing_plan& plan) {
  using clock = std::chrono::steady_clock;
  const auto seconds_since = [](clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  int reps = std::max(plan.reps, 1);
  for (int i = 0; i < plan.warmup; ++i) {
    const auto t0 = clock::now();
    run();
    const double seconds = seconds_since(t0);
    if (seconds > plan.slow_seconds) reps = std::min(reps, plan.slow_reps);
    if (seconds > plan.very_slow_seconds) reps = 1;
  }
  std::vector<double> ms;
  const auto start = clock::now();
  while (static_cast<int>(ms.size()) < reps || seconds_since(start) < plan.min_seconds) {
    const auto t0 = clock::now();
    const double cpu0 = process_cpu_seconds();
    run();
    ms.push_back(plan.clock == clock_kind::cpu
                     ? 1e3 * (process_cpu_seconds() - cpu0) / std::max(plan.threads, 1)
                     : std::chrono::duration<double, std::milli>(clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const size_t h = ms.size() / 2;
  return ms.size() % 2 ? ms[h] : 0.5 * (ms[h - 1] + ms[h]);
}

bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return -1;
}

}  // namespace qkv::bench
