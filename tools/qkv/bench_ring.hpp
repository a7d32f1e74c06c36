// `qkv bench --ring`: what ring attention costs on this machine (bench_ring.cpp).
#pragma once

#include <optional>
#include <string>

namespace qkv::cli {

struct ring_bench_request {
  bool quick = false;
  std::string format = "table";  // table or json
  std::string shape, threads;    // as `qkv bench` takes them; the worker's shape and thread count
  std::optional<int> reps;
};

// Started by hand: runs each configuration under `mpirun` and reports them. Started by mpirun
// (one of its ranks): times ring_forward on the given shape and prints one JSON line from rank 0.
void run_bench_ring(const ring_bench_request& request);

}  // namespace qkv::cli
