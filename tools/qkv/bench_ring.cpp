// `qkv bench --ring`: ring attention's overhead, not a speed-up: P ranks x 1 thread against
// 1 rank x P threads on the same cores, the time each rank spends waiting on MPI, and the peak
// resident memory of each rank (O(N/P): each holds its shards and two K/V blocks in flight).
#include "bench_ring.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "bench/shapes.hpp"
#include "bench/timing.hpp"
#include "qkv/error.hpp"

#ifdef QKV_WITH_MPI
#include <mpi.h>

#include "mpi_session.hpp"
#include "qkv/ring/ring_attention.hpp"
#endif

namespace qkv::cli {

#ifndef QKV_WITH_MPI

void run_bench_ring(const ring_bench_request&) {
  throw error("--ring: this qkv was built without MPI (it needs MPI found and QKV_WITH_MPI=ON)");
}

#else

namespace {

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  return x.empty() ? 0.0 : x[x.size() / 2];
}

tensor random_shard(const shape_t& shape, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  tensor t(shape);
  for (float& x : t.values()) x = normal(rng);
  return t;
}

// One rank of `mpirun -np P qkv bench --ring --shape S --threads T`: each rank makes only its
// own shards (never the whole tensors, so its memory is the ring's own), runs the ring forward,
// and rank 0 prints the medians and every rank's figures as one JSON line.
void run_worker(const ring_bench_request& r) {
  const mpi_session mpi;
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0, P = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &P);
  const bench::bench_shape s = bench::parse_shape(r.shape, "--shape");
  const int threads = r.threads.empty() ? 1 : std::stoi(r.threads);
  const int reps = r.reps.value_or(3);

  ring::ring_options options;
  options.causal = s.causal;
  options.layout =
      s.causal == causal_mode::none ? ring::shard_layout::contiguous : ring::shard_layout::zigzag;
  options.run.threads = threads;
  ring::ring_stats stats;
  options.stats = &stats;
  const int64_t nq = ring::shard_length(s.Nq, rank, P, options.layout);
  const int64_t nk = ring::shard_length(s.Nk, rank, P, options.layout);
  std::mt19937_64 rng(static_cast<uint64_t>(rank) + 1);
  const tensor q = random_shard({s.B, s.Hq, nq, s.d}, rng);
  const tensor k = random_shard({s.B, s.Hkv, nk, s.d}, rng);
  const tensor v = random_shard({s.B, s.Hkv, nk, s.dv}, rng);

  // Warm-up (skipped for slow rows), then timed runs between barriers: the ring's wall time.
  std::vector<double> ms, wait_ms, compute_ms;
  for (int rep = -1; rep < reps; ++rep) {
    MPI_Barrier(comm);
    const double start = MPI_Wtime();
    ring::ring_forward(comm, q, k, v, options);
    MPI_Barrier(comm);
    const double seconds = MPI_Wtime() - start;
    if (rep < 0 && seconds < 5) continue;
    ms.push_back(seconds * 1e3);
    wait_ms.push_back(stats.wait_seconds * 1e3);
    compute_ms.push_back(stats.compute_seconds * 1e3);
    if (rep < 0) ++rep;  // a slow warm-up counts as the first timed run
  }
  const double mine[4] = {median(wait_ms), median(compute_ms), bench::peak_rss_mb(),
                          static_cast<double>(stats.bytes_sent)};
  std::vector<double> all(static_cast<size_t>(4 * P));
  MPI_Gather(mine, 4, MPI_DOUBLE, all.data(), 4, MPI_DOUBLE, 0, comm);
  if (rank != 0) return;
  nlohmann::ordered_json j;
  j["impl"] = "ring", j["pass"] = "forward";
  j["B"] = s.B, j["Hq"] = s.Hq, j["Hkv"] = s.Hkv, j["Nq"] = s.Nq, j["Nk"] = s.Nk;
  j["d"] = s.d, j["dv"] = s.dv, j["causal"] = to_string(s.causal);
  j["layout"] = ring::to_string(options.layout);
  j["ranks"] = P, j["threads"] = threads;
  j["ms"] = median(ms);
  j["gflops"] = bench::forward_flops(s) / (median(ms) * 1e6);
  std::vector<double> wait, compute, rss, sent;
  for (int p = 0; p < P; ++p) {
    wait.push_back(all[static_cast<size_t>(4 * p)]);
    compute.push_back(all[static_cast<size_t>(4 * p + 1)]);
    rss.push_back(all[static_cast<size_t>(4 * p + 2)]);
    sent.push_back(all[static_cast<size_t>(4 * p + 3)]);
  }
  j["peak_rss_mb"] = *std::max_element(rss.begin(), rss.end());
  j["peak_rss_mb_per_rank"] = rss;
  j["wait_ms_per_rank"] = wait;
  j["compute_ms_per_rank"] = compute;
  j["bytes_sent_per_rank"] = sent;
  j["reps"] = ms.size();
  std::cout << j.dump() << std::endl;
}

struct ring_config {
  bench::bench_shape shape;
  int ranks, threads, reps;
};

// The comparisons on a 2-core machine: 2 ranks x 1 thread against 1 rank x 2 threads
// at N = 8192 and 32768, and the memory of 1, 2 and 4 ranks at N = 32768 (4 ranks oversubscribe
// the 2 cores: their time is not a speed figure). --quick: the same at N = 1024 and 2048.
std::vector<ring_config> configs(bool quick) {
  const auto shape = [](int64_t H, int64_t N) {
    bench::bench_shape s;
    s.Hq = s.Hkv = H, s.Nq = s.Nk = N;
    return s;
  };
  const int64_t small = quick ? 1024 : 8192, large = quick ? 2048 : 32768;
  return {{shape(2, small), 1, 2, 3},
          {shape(2, small), 2, 1, 3},
          {shape(1, large), 1, 2, 3},
          {shape(1, large), 2, 1, 3},
          {shape(1, large), 4, 1, 1}};
}

std::string shape_argument(const bench::bench_shape& s) {
  return std::to_string(s.B) + "," + std::to_string(s.Hq) + "," + std::to_string(s.Hkv) + "," +
         std::to_string(s.Nq) + "," + std::to_string(s.Nk) + "," + std::to_string(s.d) + "," +
         std::to_string(s.dv) +
         (s.causal == causal_mode::none ? "" : std::string(",") + to_string(s.causal));
}

// Runs one configuration under mpirun (this same executable as the workers); its JSON line.
std::string run_under_mpirun(const ring_config& c) {
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof self - 1) <= 0)
    throw std::runtime_error("qkv bench --ring: cannot find its own executable");
  std::string command = "mpirun --oversubscribe --bind-to none";
  if (geteuid() == 0) command += " --allow-run-as-root";
  command += " -x OMP_NUM_THREADS=" + std::to_string(c.threads) + " -np " +
             std::to_string(c.ranks) + " '" + self + "' bench --ring --shape " +
             shape_argument(c.shape) + " --threads " + std::to_string(c.threads) + " --reps " +
             std::to_string(c.reps);
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("qkv bench --ring: cannot run " + command);
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  if (pclose(pipe) != 0 || out.empty())
    throw std::runtime_error("qkv bench --ring: failed: " + command);
  return out.substr(0, out.find('\n'));
}

std::string table_line(const nlohmann::json& j) {
  const auto list = [](const nlohmann::json& values, const char* format) {
    std::string text;
    char item[32];
    for (const auto& v : values) {
      std::snprintf(item, sizeof item, format, v.get<double>());
      if (!text.empty()) text += ' ';
      text += item;
    }
    return text;
  };
  char line[512];
  std::snprintf(line, sizeof line, "%5lld %2d x %d %10.1f %8.1f  wait ms [%s]  peak MiB [%s]",
                static_cast<long long>(j["Nq"].get<int64_t>()), j["ranks"].get<int>(),
                j["threads"].get<int>(), j["ms"].get<double>(), j["gflops"].get<double>(),
                list(j["wait_ms_per_rank"], "%.1f").c_str(),
                list(j["peak_rss_mb_per_rank"], "%.1f").c_str());
  return line;
}

}  // namespace

void run_bench_ring(const ring_bench_request& request) {
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) return run_worker(request);  // a rank of mpirun
  if (request.format != "table" && request.format != "json")
    throw error("--format: expected table or json, got '" + request.format + "'");
  const bool json = request.format == "json";
  if (!json)
    std::cout << "ring attention forward, B=1 d=64 (H=2 at the smaller N, H=1 at the larger), "
                 "medians\n    N  ranks x threads    ms  GFLOP/s\n";
  for (const ring_config& c : configs(request.quick)) {
    const std::string line = run_under_mpirun(c);
    std::cout << (json ? line : table_line(nlohmann::json::parse(line))) << std::endl;
  }
}

#endif

}  // namespace qkv::cli
