// `qkv mha` end to end: every golden mha case through the command (weights written to a
// .safetensors file by our writer, under PyTorch's state_dict names), and bad inputs refused
// with exit code 2, a message naming the flag, and no output file.
#include <gtest/gtest.h>

#include "qkv/io/npy.hpp"
#include "qkv/io/safetensors.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"

namespace qkv {
namespace {

using testing::golden_case;
using testing::golden_tolerance;
using testing::max_abs_diff;
using testing::run_qkv;
using testing::temp_dir;

// The command line for a golden case, its files written into `dir`.
std::vector<std::string> mha_command(const golden_case& c, const temp_dir& dir) {
  io::write_safetensors(dir.file("w.safetensors"), c.state_dict());
  std::vector<std::string> args = {"mha",
                                   "--weights",
                                   dir.file("w.safetensors"),
                                   "--heads",
                                   std::to_string(c.data()["params"]["num_heads"].get<int>()),
                                   "-o",
                                   dir.file("out.npy"),
                                   "--attn-weights",
                                   dir.file("w.npy")};
  // Not the mha_grad cases' G: it is no input of the command.
  const auto inputs = testing::golden_input_flags(
      c, dir.path(), {"query", "key", "value", "key_padding_mask", "attn_mask"});
  args.insert(args.end(), inputs.begin(), inputs.end());
  return args;
}

class MhaCommand : public ::testing::TestWithParam<golden_case> {};

TEST_P(MhaCommand, MatchesPyTorch) {
  const golden_case& c = GetParam();
  temp_dir dir;
  const auto r = run_qkv(mha_command(c, dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Rows whose keys are all padded: attention output 0, so the layer output is out_proj's bias.
  tensor expected = c.expected("attn_output_float64");
  const auto dict = c.state_dict();
  const int64_t E = expected.size(2);
  for (int64_t n = 0; n < expected.numel(); ++n)
    if (std::isnan(expected[n])) expected[n] = dict.at("out_proj.bias")[n % E];
  const tensor out = io::read_npy_float(dir.file("out.npy"));
  EXPECT_LE(max_abs_diff(out, expected), golden_tolerance(c, expected, 1e-5)) << c.id;
  const tensor weights = testing::nan_to_zero(c.expected("attn_weights_avg_float64"));
  EXPECT_LE(max_abs_diff(io::read_npy_float(dir.file("w.npy")), weights),
            golden_tolerance(c, weights, 1e-5))
      << c.id;
}

INSTANTIATE_TEST_SUITE_P(Golden, MhaCommand,
                         ::testing::ValuesIn(testing::load_golden({"mha", "mha_grad"})),
                         testing::golden_case_name);

// Runs a golden command with one flag's value replaced (or the flag added); expects exit 2,
// every needle in stderr and no output file.
void expect_refused(const std::string& flag, const std::string& value,
                    const std::vector<std::string>& needles) {
  const golden_case c = [] {
    for (auto& g : testing::load_golden("mha"))
      if (g.id == "mha_self_E8_H2_B1_q5k5") return g;
    throw std::runtime_error("golden case mha_self_E8_H2_B1_q5k5 is missing");
  }();
  temp_dir dir;
  testing::expect_refused(mha_command(c, dir), flag, value, needles,
                          {dir.file("out.npy"), dir.file("w.npy")});
}

TEST(MhaCommand, BadInputsExitTwoNamingTheFlag) {
  temp_dir other;
  io::write_npy(other.file("q7.npy"), tensor({2, 4, 7}));
  io::write_npy(other.file("kpm_float.npy"), tensor({2, 4}));
  io::write_npy(other.file("kpm_shape.npy"), bool_tensor({2, 5}));
  io::write_npy(other.file("mask.npy"), bool_tensor({4, 3}));
  io::write_safetensors(other.file("bad.safetensors"), {{"in_proj_weight", tensor({24, 8})}});
  expect_refused("--heads", "3", {"--heads", "3", "8"});
  expect_refused("--query", other.file("q7.npy"), {"--query", "[2, 4, 7]"});
  expect_refused("--query", other.file("missing.npy"), {"--query", "missing.npy"});
  expect_refused("--key-padding-mask", other.file("kpm_float.npy"),
                 {"--key-padding-mask", "boolean"});
  expect_refused("--key-padding-mask", other.file("kpm_shape.npy"),
                 {"--key-padding-mask", "[2, 5]"});
  expect_refused("--attn-mask", other.file("mask.npy"), {"--attn-mask", "[4, 3]"});
  expect_refused("--weights", other.file("bad.safetensors"), {"--weights", "out_proj.weight"});
  expect_refused("--key", other.file("q7.npy"), {"--key", "--value"});
}

}  // namespace
}  // namespace qkv
