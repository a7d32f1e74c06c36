// `qkv layer encoder|decoder` end to end: every golden encoder_layer and decoder_layer case
// through the command (weights written by our .safetensors writer under the state_dict names),
// and bad inputs refused with exit code 2 naming the flag, and no output file.
#include <gtest/gtest.h>

#include "qkv/io/npy.hpp"
#include "qkv/io/safetensors.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"

namespace qkv {
namespace {

using testing::golden_case;
using testing::run_qkv;
using testing::temp_dir;

// The command line of a golden layer case, its files written into `dir`.
std::vector<std::string> layer_command(const golden_case& c, const temp_dir& dir) {
  const auto& p = c.data().at("params");
  io::write_safetensors(dir.file("w.safetensors"), c.state_dict());
  char eps[32];
  std::snprintf(eps, sizeof eps, "%.9g", p.at("layer_norm_eps").get<double>());
  std::vector<std::string> args = {
      "layer",        c.kind == "encoder_layer" ? "encoder" : "decoder",
      "--weights",    dir.file("w.safetensors"),
      "--heads",      std::to_string(p.at("nhead").get<int>()),
      "--activation", p.at("activation").get<std::string>(),
      "--eps",        eps,
      "-o",           dir.file("out.npy")};
  if (p.at("norm_first").get<bool>()) args.push_back("--norm-first");
  const auto inputs = testing::golden_input_flags(c, dir.path());
  args.insert(args.end(), inputs.begin(), inputs.end());
  return args;
}

class LayerCommand : public ::testing::TestWithParam<golden_case> {};

TEST_P(LayerCommand, MatchesPyTorch) {
  const golden_case& c = GetParam();
  temp_dir dir;
  const auto r = run_qkv(layer_command(c, dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const tensor expected = c.expected("out_float64");
  EXPECT_LE(testing::max_abs_diff(io::read_npy_float(dir.file("out.npy")), expected),
            testing::golden_tolerance(c, expected, 1e-5))
      << c.id;
}

INSTANTIATE_TEST_SUITE_P(Golden, LayerCommand,
                         ::testing::ValuesIn(testing::load_golden({"encoder_layer",
                                                                   "decoder_layer"})),
                         testing::golden_case_name);

TEST(LayerCommand, BadInputsExitTwoNamingTheFlag) {
  const golden_case dec = testing::load_golden("decoder_layer").front();
  const golden_case enc = testing::load_golden("encoder_layer").front();
  temp_dir other;
  io::write_npy(other.file("bad_kpm.npy"), bool_tensor({1, 2}));
  io::write_npy(other.file("x3.npy"), tensor({1, 2, 3}));
  const auto refused = [](const golden_case& c, const std::string& flag, const std::string& value,
                          const std::vector<std::string>& needles) {
    temp_dir dir;
    testing::expect_refused(layer_command(c, dir), flag, value, needles, {dir.file("out.npy")});
  };
  refused(enc, "--activation", "tanh", {"--activation", "tanh"});
  refused(enc, "--eps", "0", {"--eps"});
  refused(enc, "--heads", "5", {"--heads", "5"});
  refused(enc, "--src", other.file("x3.npy"), {"--src", "[1, 2, 3]"});
  refused(enc, "--src-key-padding-mask", other.file("bad_kpm.npy"),
          {"--src-key-padding-mask", "[1, 2]"});
  refused(dec, "--memory-key-padding-mask", other.file("bad_kpm.npy"),
          {"--memory-key-padding-mask", "[1, 2]"});
  refused(dec, "--memory", other.file("x3.npy"), {"--memory", "[1, 2, 3]"});
  // A decoder's weights given to the encoder: the decoder-only tensors are named.
  temp_dir dir;
  std::vector<std::string> args = layer_command(enc, dir);
  io::write_safetensors(dir.file("dec.safetensors"), dec.state_dict());
  *(std::find(args.begin(), args.end(), "--weights") + 1) = dir.file("dec.safetensors");
  *(std::find(args.begin(), args.end(), "--heads") + 1) =
      std::to_string(dec.data()["params"]["nhead"].get<int>());
  const auto r = run_qkv(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("norm3"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qkv
