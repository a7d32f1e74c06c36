// `qkv sdpa --grad-out ... --impl fused` beyond the golden cases (which sdpa_cli_test.cpp runs
// with each kernel): shapes spanning several tiles, GQA, masks, rows without a visible key and
// attention dropout (--dropout, --dropout-seed), against the library's reference backward
// (docs/contracts.md section 3 gradient bound, without the 2·e_naive allowance).
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "qkv/attention.hpp"
#include "qkv/io/npy.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"
#include "support/sdpa_command.hpp"

namespace qkv {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

struct grad_cli_case {
  const char* name;
  int64_t B, Hq, Hkv, Nq, Nk, d, dv;
  const char* causal;
  bool padding_mask;  // bool [B,1,1,Nk] hiding the second half of batch 0's keys
  const char* threads;
  float dropout = 0.0f;  // --dropout P --dropout-seed 99
};

void PrintTo(const grad_cli_case& c, std::ostream* os) {
  *os << c.name;
}

class SdpaGradCommand : public ::testing::TestWithParam<grad_cli_case> {};

TEST_P(SdpaGradCommand, FusedGradientsMatchTheReferenceBackward) {
  const grad_cli_case& c = GetParam();
  std::mt19937_64 rng(c.Nq * 1000 + c.Nk);
  const auto [q, k, v, g] = testing::random_attention_inputs(c, rng);
  sdpa_options options;
  options.run.impl = sdpa_impl::reference;
  options.causal = parse_causal_mode(c.causal);
  testing::temp_dir dir;
  std::vector<std::string> args = testing::sdpa_command(dir);
  const auto grad_flags = testing::sdpa_grad_flags(dir);
  args.insert(args.end(), grad_flags.begin(), grad_flags.end());
  args.insert(args.end(), {"--impl", "fused", "--causal", c.causal, "--threads", c.threads});
  if (c.dropout > 0.0f) {
    args.insert(args.end(), {"--dropout", std::to_string(c.dropout), "--dropout-seed", "99"});
    options.dropout_p = c.dropout;
    options.dropout_seed = 99;
  }
  if (c.padding_mask) {
    bool_tensor m({c.B, 1, 1, c.Nk}, 1);
    for (int64_t j = c.Nk / 2; j < c.Nk; ++j) m.at({0, 0, 0, j}) = 0;
    io::write_npy(dir.file("mask.npy"), m);
    args.insert(args.end(), {"--mask", dir.file("mask.npy")});
    options.mask.boolean = m;
  }
  for (const auto& [name, t] : {std::pair{"q", &q}, {"k", &k}, {"v", &v}, {"g", &g}})
    io::write_npy(dir.file(std::string(name) + ".npy"), *t);
  const auto r = testing::run_qkv(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const sdpa_result fwd = sdpa_forward(q, k, v, options);
  const sdpa_gradients ref = sdpa_backward(q, k, v, fwd, g, options);
  for (const auto& [file, want] :
       {std::pair{"dq.npy", &ref.dq}, {"dk.npy", &ref.dk}, {"dv.npy", &ref.dv}}) {
    const tensor got = io::read_npy_float(dir.file(file));
    EXPECT_LE(max_abs_diff(got, *want), 1e-4 * std::max(1.0, max_abs(*want))) << file;
  }
  // A query that sees no key (bottom-right with Nq > Nk): its dQ row is exactly zero.
  const tensor dq = io::read_npy_float(dir.file("dq.npy"));
  for (int64_t row = 0; row < fwd.lse.numel(); ++row) {
    if (fwd.lse[row] != -std::numeric_limits<float>::infinity()) continue;
    for (int64_t x = 0; x < c.d; ++x) EXPECT_EQ(dq[row * c.d + x], 0.0f) << "row " << row;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SdpaGradCommand,
                         ::testing::Values(grad_cli_case{"tiles_gqa", 2, 4, 2, 150, 260, 40, 24,
                                                         "none", false, "2"},
                                           grad_cli_case{"padding_top_left", 2, 2, 2, 130, 130, 64,
                                                         64, "top-left", true, "1"},
                                           grad_cli_case{"bottom_right_hidden_rows", 1, 3, 1, 200,
                                                         70, 17, 9, "bottom-right", false, "3"},
                                           grad_cli_case{"dropout_padding", 2, 2, 1, 97, 150, 32,
                                                         32, "top-left", true, "2", 0.3f}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace qkv
