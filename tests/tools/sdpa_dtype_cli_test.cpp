// `qkv sdpa --kv-dtype/--dtype/--compute` and <f2 inputs: the command runs on the rounded
// storage and gives what the library gives on it; unknown dtype names, the bf16-compute mode
// (not built; this CPU class lacks avx512_bf16) and other .npy dtypes are refused with exit code 2
// and no output file.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "qkv/attention.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/stored_tensor.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"
#include "support/raw_files.hpp"
#include "support/sdpa_command.hpp"

namespace qkv {
namespace {

using testing::max_abs_diff;
using testing::run_qkv;
using testing::temp_dir;

struct inputs {
  tensor q, k, v;
};

inputs write_inputs(const temp_dir& dir) {
  std::mt19937_64 rng(21);
  inputs in{testing::random_tensor({1, 4, 5, 24}, rng), testing::random_tensor({1, 2, 37, 24}, rng),
            testing::random_tensor({1, 2, 37, 16}, rng)};
  io::write_npy(dir.file("q.npy"), in.q);
  io::write_npy(dir.file("k.npy"), in.k);
  io::write_npy(dir.file("v.npy"), in.v);
  return in;
}

// The command's output under each storage flag equals the library's reference on the same
// rounded storage, bit for bit (the same kernel on the same values).
TEST(SdpaDtypeCommand, RunsOnTheRoundedStorage) {
  temp_dir dir;
  const inputs in = write_inputs(dir);
  for (const char* flag : {"--kv-dtype", "--dtype"})
    for (dtype type : {dtype::f32, dtype::f16, dtype::bf16}) {
      std::vector<std::string> args = testing::sdpa_command(dir);
      args.insert(args.end(),
                  {flag, to_string(type), "--impl", "reference", "--causal", "bottom-right"});
      const testing::cli_result r = run_qkv(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const bool all = std::string(flag) == "--dtype";
      sdpa_options options;
      options.run.impl = sdpa_impl::reference;
      options.causal = causal_mode::bottom_right;
      const sdpa_result want = sdpa_forward(round_to(all ? type : dtype::f32, in.q),
                                            round_to(type, in.k), round_to(type, in.v), options);
      EXPECT_EQ(max_abs_diff(io::read_npy_float(dir.file("out.npy")), want.out), 0.0)
          << flag << " " << to_string(type);
    }
}

// <f2 files are kept as f16 storage: the same result as the f32 files rounded by --dtype f16.
TEST(SdpaDtypeCommand, ReadsHalfFilesAsF16) {
  temp_dir dir;
  const inputs in = write_inputs(dir);
  std::vector<std::string> args = testing::sdpa_command(dir);
  args.insert(args.end(), {"--impl", "reference", "--dtype", "f16"});
  ASSERT_EQ(run_qkv(args).exit_code, 0);
  const tensor rounded = io::read_npy_float(dir.file("out.npy"));
  io::write_npy(dir.file("q.npy"), round_to(dtype::f16, in.q));
  io::write_npy(dir.file("k.npy"), round_to(dtype::f16, in.k));
  io::write_npy(dir.file("v.npy"), round_to(dtype::f16, in.v));
  args.resize(args.size() - 2);
  const testing::cli_result r = run_qkv(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(max_abs_diff(io::read_npy_float(dir.file("out.npy")), rounded), 0.0);
}

TEST(SdpaDtypeCommand, RefusesUnknownTypesAndTheBf16ComputeMode) {
  temp_dir dir;
  write_inputs(dir);
  const std::vector<std::string> args = testing::sdpa_command(dir);
  const std::vector<std::string> outputs = {dir.file("out.npy")};
  testing::expect_refused(args, "--kv-dtype", "fp16", {"--kv-dtype", "'fp16'", "bf16"}, outputs);
  testing::expect_refused(args, "--dtype", "f64", {"--dtype", "'f64'"}, outputs);
  testing::expect_refused(args, "--compute", "f16", {"--compute", "'f16'"}, outputs);
  if (!__builtin_cpu_supports("avx512bf16"))
    testing::expect_refused(args, "--compute", "bf16", {"--compute", "avx512_bf16"}, outputs);
  // A .npy of another dtype (<i2) for K: refused naming the flag and the dtype.
  std::ofstream(dir.file("k.npy"), std::ios::binary)
      << testing::npy_bytes("{'descr': '<i2', 'fortran_order': False, 'shape': (1, 2, 37, 24), }",
                            std::string(2 * 2 * 37 * 24, '\0'));
  testing::expect_refused(args, "--kv-dtype", "bf16", {"--k", "<i2"}, outputs);
}

}  // namespace
}  // namespace qkv
