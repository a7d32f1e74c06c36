// `qkv bench` end to end on tiny shapes: the JSON lines carry every key of docs/contracts.md
// section 6's contract with sensible values, the table prints, and bad options exit 2 with a
// message.
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>

#include <set>
#include <sstream>
#include <tuple>

#include "support/cli.hpp"

namespace qkv {
namespace {

using testing::run_qkv;

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

void expect_contract_keys(const nlohmann::json& r) {
  for (const char* key : {"impl", "pass", "causal"}) EXPECT_TRUE(r.at(key).is_string()) << key;
  for (const char* key : {"B", "Hq", "Hkv", "Nq", "Nk", "d", "dv", "threads"})
    EXPECT_TRUE(r.at(key).is_number_integer()) << key;
  for (const char* key : {"ms", "gflops", "peak_rss_mb"}) {
    EXPECT_TRUE(r.at(key).is_number()) << key;
    EXPECT_GT(r.at(key).get<double>(), 0.0) << key << " in " << r.dump();
  }
}

TEST(BenchCli, JsonLinesCarryEveryContractKey) {
  const auto r =
      run_qkv({"bench", "--quick", "--format", "json", "--shape", "1,4,2,6,37,8,4,top-left",
               "--threads", "1,2", "--reps", "1", "--impl", "sgemm,blas,fused,reference"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = json_lines(r.out);
  ASSERT_EQ(rows.size(), 8u) << r.out << r.err;  // 4 impls x 2 thread counts
  std::set<std::string> impls;
  for (const auto& row : rows) {
    expect_contract_keys(row);
    impls.insert(row["impl"].get<std::string>());
    EXPECT_EQ(row["pass"], "forward");
    EXPECT_EQ(row["Hkv"], 2);
    EXPECT_EQ(row["dv"], 4);
    EXPECT_EQ(row["causal"], "top-left");
    if (__builtin_cpu_supports("avx2")) {  // the peak loops need AVX2+FMA at least
      EXPECT_GT(row.at("ratio_to_peak").get<double>(), 0.0) << row.dump();
    }
    if (row["impl"] == "sgemm") {
      EXPECT_GE(row["sgemm_n"].get<int>(), 1024);
      EXPECT_FALSE(row.at("gemm").get<std::string>().empty());
    } else {
      EXPECT_GT(row["ratio_to_sgemm"].get<double>(), 0.0);
      // 2·(d+dv)·(visible pairs)·B·Hq, with sum over i < 6 of (i + 1) visible pairs top-left.
      const double flops = 2.0 * (8 + 4) * 21 * 4;
      EXPECT_NEAR(row["gflops"].get<double>(), flops / (row["ms"].get<double>() * 1e6),
                  1e-3 * row["gflops"].get<double>());
    }
  }
  EXPECT_EQ(impls, (std::set<std::string>{"sgemm", "blas", "fused", "reference"}));
  EXPECT_EQ(rows[0]["threads"], 1);
  EXPECT_EQ(rows[4]["threads"], 2);
}

// One peak row per instruction set and thread count, first; the best of them is every row's 1.0.
TEST(BenchCli, PeakRowsComeFirstPerThreadCount) {
  const auto r = run_qkv({"bench", "--format", "json", "--shape", "1,2,2,16,16,8", "--threads",
                          "1,2", "--reps", "1", "--impl", "peak,fused"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = json_lines(r.out);
  std::map<int, double> best;  // threads -> the best peak's GFLOP/s
  std::map<int, int> peaks;
  for (const auto& row : rows) {
    expect_contract_keys(row);
    const int T = row["threads"].get<int>();
    if (row["impl"] == "peak") {
      EXPECT_TRUE(row["isa"] == "avx2" || row["isa"] == "avx512f") << row.dump();
      EXPECT_GT(row["fma_chains"].get<int>(), 0);
      ++peaks[T];
      best[T] = std::max(best[T], row["gflops"].get<double>());
    } else {
      ASSERT_TRUE(best.count(T)) << "the peak rows come before the shapes";
      EXPECT_NEAR(row["ratio_to_peak"].get<double>(), row["gflops"].get<double>() / best[T],
                  2e-3 * row["ratio_to_peak"].get<double>() + 1e-3);
    }
  }
  for (int T : {1, 2}) EXPECT_GE(peaks[T], __builtin_cpu_supports("avx2") ? 1 : 0) << T;
}

// --clock cpu: the rows say so and still carry positive times; a bad clock exits 2.
TEST(BenchCli, CpuClockRowsSaySo) {
  const auto r = run_qkv({"bench", "--format", "json", "--shape", "1,2,2,16,16,8", "--threads", "2",
                          "--reps", "1", "--impl", "peak,fused", "--clock", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& row : json_lines(r.out)) {
    expect_contract_keys(row);
    EXPECT_EQ(row.at("clock"), "cpu") << row.dump();
  }
  const auto bad = run_qkv({"bench", "--clock", "sundial"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--clock"), std::string::npos) << bad.err;
}

TEST(BenchCli, BackwardAndDecodeRows) {
  const auto r = run_qkv({"bench", "--format", "json", "--shape", "1,2,1,1,1024,8", "--threads",
                          "1", "--reps", "1", "--impl", "blas,fused", "--pass", "all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = json_lines(r.out);
  std::set<std::string> seen;
  for (const auto& row : rows) {
    expect_contract_keys(row);
    seen.insert(row["impl"].get<std::string>() + "/" + row["pass"].get<std::string>());
    if (row["pass"] == "forward") {  // a decode shape: bytes of K and V read per second
      EXPECT_GT(row.at("bytes_per_s").get<double>(), 0.0);
      EXPECT_GT(row.at("read_loop_bytes_per_s").get<double>(), 0.0);
    }
    if (row["impl"] == "fused") {
      EXPECT_GT(row.at("ratio_to_blas").get<double>(), 0.0);
    }
  }
  EXPECT_TRUE(seen.count("blas/forward") && seen.count("blas/backward") &&
              seen.count("fused/forward"))
      << r.out << r.err;
}

TEST(BenchCli, TablePrintsAHeaderAndRows) {
  const auto r = run_qkv(
      {"bench", "--shape", "1,1,1,4,4,8", "--threads", "1", "--reps", "1", "--impl", "blas"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GFLOP/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blas"), std::string::npos) << r.out;
}

// A causal shape's label is the longest: the columns after it still line up with the header's.
TEST(BenchCli, TableColumnsLineUpOnCausalRows) {
  const auto r = run_qkv({"bench", "--shape", "1,1,1,4,40,8,8,bottom-right", "--threads", "1",
                          "--reps", "1", "--impl", "blas"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string header, row;
  std::getline(lines, header);
  std::getline(lines, row);
  ASSERT_NE(row.find("bottom-right"), std::string::npos) << r.out;
  const size_t end = header.find("GFLOP/s") + 7;  // right-aligned columns end where it ends
  ASSERT_LT(end, row.size()) << r.out;
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(row[end - 1])) && row[end] == ' ') << r.out;
}

// Shapes whose inputs are beyond the memory limit (products beyond int64 among them) are skipped
// with a note, before anything is allocated or counted: no bad_alloc, no endless FLOP count.
TEST(BenchCli, ShapesBeyondTheMemoryLimitAreSkippedWhole) {
  for (const char* shape : {"100000,100000,100000,100000,4,4", "1,1,1,99999999999,4,4"}) {
    const auto r = run_qkv({"bench", "--format", "json", "--shape", shape, "--threads", "1",
                            "--impl", "sgemm,blas,fused", "--pass", "all"});
    ASSERT_EQ(r.exit_code, 0) << shape << ": " << r.err;
    EXPECT_EQ(r.out, "") << shape;
    size_t notes = 0;
    for (size_t at = 0; (at = r.err.find("skipped: would need", at)) != std::string::npos; ++at)
      ++notes;
    EXPECT_EQ(notes, 6u) << shape << ": " << r.err;  // 3 implementations x 2 passes
  }
}

// --kv-dtype bf16: the decode row reads 2-byte K and V (half the f32 row's bytes per run) and says
// so; the composition, which reads f32 only, is skipped with a note.
TEST(BenchCli, KvDtypeRowsCarryTheirStorageType) {
  const auto r = run_qkv({"bench", "--format", "json", "--shape", "1,2,1,1,1024,8", "--threads",
                          "1", "--reps", "1", "--impl", "blas,fused", "--kv-dtype", "bf16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int fused = 0;
  for (const auto& row : json_lines(r.out)) {
    if (row["impl"] == "peak") continue;
    EXPECT_EQ(row.at("kv_dtype"), "bf16") << row.dump();
    EXPECT_NE(row["impl"], "blas") << row.dump();
    if (row["impl"] != "fused") continue;
    ++fused;
    expect_contract_keys(row);
    // bytes_per_s counts 2 bytes per element: B·Hkv·Nk·(d+dv)·2 over the time.
    const double bytes = 1.0 * 1 * 1024 * (8 + 8) * 2;
    EXPECT_NEAR(row.at("bytes_per_s").get<double>() * row.at("ms").get<double>() * 1e-3, bytes,
                1e-3 * bytes);
  }
  EXPECT_EQ(fused, 1) << r.out;
  EXPECT_NE(r.err.find("f32 Q, K and V only"), std::string::npos) << r.err;
}

// --dtype stores Q too (q_dtype on the rows); --kv-dtype overrides it for K and V.
TEST(BenchCli, DtypeRowsStoreTheQueryToo) {
  for (const auto& [flags, q, kv] :
       std::vector<std::tuple<std::vector<std::string>, std::string, std::string>>{
           {{"--dtype", "f16"}, "f16", "f16"},
           {{"--dtype", "bf16", "--kv-dtype", "f16"}, "bf16", "f16"}}) {
    std::vector<std::string> args = {"bench",     "--format", "json",   "--shape", "1,2,1,3,64,8",
                                     "--threads", "1",        "--reps", "1",       "--impl",
                                     "fused",     "--pass",   "all"};
    args.insert(args.end(), flags.begin(), flags.end());
    const auto r = run_qkv(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int rows = 0;
    for (const auto& row : json_lines(r.out)) {
      if (row["impl"] == "peak") continue;
      ++rows;
      expect_contract_keys(row);
      EXPECT_EQ(row.at("q_dtype"), q) << row.dump();
      EXPECT_EQ(row.at("kv_dtype"), kv) << row.dump();
    }
    EXPECT_EQ(rows, 2) << r.out;  // forward and backward
  }
  const auto f32 = run_qkv({"bench", "--format", "json", "--shape", "1,2,1,3,64,8", "--threads",
                            "1", "--reps", "1", "--impl", "fused"});
  for (const auto& row : json_lines(f32.out)) EXPECT_FALSE(row.contains("q_dtype")) << row.dump();
}

TEST(BenchCli, BadOptionsExitTwoNamingTheOption) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--shape", "1,8,3,4,4,8"}, "--shape"}, {{"--shape", "1,2,3"}, "--shape"},
      {{"--threads", "0"}, "--threads"},       {{"--threads", "two"}, "--threads"},
      {{"--impl", "cublas"}, "--impl"},        {{"--pass", "sideways"}, "--pass"},
      {{"--format", "xml"}, "--format"},       {{"--reps", "0"}, "--reps"},
      {{"--reps", "99999999999"}, "--reps"},   {{"--reps", "abc"}, "--reps"},
      {{"--kv-dtype", "fp8"}, "--kv-dtype"},   {{"--dtype", "half"}, "--dtype"}};
  for (const auto& [flags, name] : cases) {
    std::vector<std::string> args = {"bench", "--quick"};
    args.insert(args.end(), flags.begin(), flags.end());
    const auto r = run_qkv(args);
    EXPECT_EQ(r.exit_code, 2) << name;
    EXPECT_NE(r.err.find(name), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("GFLOP"), std::string::npos) << "no rows before the error: " << r.out;
  }
}

}  // namespace
}  // namespace qkv
