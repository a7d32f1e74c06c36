// `qkv sdpa --window --softcap --alibi --sinks [--dsinks]`: every golden sdpa_ext and sdpa_ext_grad
// case through the command with each kernel (lse and d sinks included), and the refusals of bad
// modifier values (exit 2, a message naming the flag, no output file).
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "qkv/io/npy.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"
#include "support/sdpa_command.hpp"

namespace qkv {
namespace {

using testing::golden_case;
using testing::max_abs;
using testing::max_abs_diff;
using testing::temp_dir;

using cli_case = testing::golden_cli_case;

// The flags of a case's causal mode, mask and modifiers (its inputs written to `dir`).
std::vector<std::string> case_flags(const golden_case& c, const temp_dir& dir) {
  std::vector<std::string> flags;
  const auto& p = c.data().at("params");
  if (!p["causal"].is_null())
    flags.insert(flags.end(),
                 {"--causal", p["causal"] == "top_left" ? "top-left" : "bottom-right"});
  if (!p["window"].is_null())
    flags.insert(flags.end(), {"--window", std::to_string(p["window"][0].get<int64_t>()) + "," +
                                               std::to_string(p["window"][1].get<int64_t>())});
  if (!p["softcap"].is_null()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", p["softcap"].get<double>());
    flags.insert(flags.end(), {"--softcap", buf});
  }
  const std::pair<const char*, const char*> files[] = {{"attn_mask_bool", "--mask"},
                                                       {"attn_mask_additive", "--mask"},
                                                       {"alibi_slopes", "--alibi"},
                                                       {"sinks", "--sinks"}};
  for (const auto& [name, flag] : files)
    if (c.has_input(name)) {
      testing::write_golden_npy(c.data()["inputs"][name], dir.file(std::string(name) + ".npy"));
      flags.insert(flags.end(), {flag, dir.file(std::string(name) + ".npy")});
    }
  return flags;
}

class SdpaModifiersCommand : public ::testing::TestWithParam<cli_case> {};

TEST_P(SdpaModifiersCommand, MatchesFloat64) {
  const golden_case& c = GetParam().golden;
  temp_dir dir;
  for (const char* name : {"q", "k", "v"})
    testing::write_golden_npy(c.data()["inputs"][name], dir.file(std::string(name) + ".npy"));
  std::vector<std::string> args = testing::sdpa_command(dir);
  args.insert(args.end(), {"--lse", dir.file("lse.npy"), "--impl", GetParam().impl});
  const auto flags = case_flags(c, dir);
  args.insert(args.end(), flags.begin(), flags.end());
  const bool grad = c.kind == "sdpa_ext_grad", sinks = c.has_input("sinks");
  if (grad) {
    testing::write_golden_npy(c.data()["inputs"]["G"], dir.file("g.npy"));
    const auto grad_flags = testing::sdpa_grad_flags(dir);
    args.insert(args.end(), grad_flags.begin(), grad_flags.end());
    if (sinks) args.insert(args.end(), {"--dsinks", dir.file("dsinks.npy")});
  }
  const auto r = testing::run_qkv(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // docs/contracts.md section 3: 1e-5·max(1, max|expected|); lse over its finite entries, -inf
  // exact.
  const tensor out = io::read_npy_float(dir.file("out.npy")), want = c.expected("out_float64");
  EXPECT_LE(max_abs_diff(out, want), 1e-5 * std::max(1.0, max_abs(want)));
  const tensor lse = io::read_npy_float(dir.file("lse.npy")), want_lse = c.expected("lse_float64");
  ASSERT_EQ(lse.shape(), want_lse.shape());
  for (int64_t x = 0; x < lse.numel(); ++x) {
    ASSERT_EQ(std::isinf(lse[x]), std::isinf(want_lse[x])) << "lse " << x;
    if (!std::isinf(lse[x])) {
      EXPECT_LE(std::fabs(lse[x] - want_lse[x]), 1e-5 * std::max(1.0, max_abs(want_lse)));
    }
  }
  if (!grad) return;
  for (const char* name : {"dQ", "dK", "dV"}) {
    std::string file = std::string("d") + static_cast<char>(std::tolower(name[1])) + ".npy";
    const tensor got = io::read_npy_float(dir.file(file));
    const tensor expected = c.expected(std::string(name) + "_float64");
    EXPECT_LE(max_abs_diff(got, expected), 1e-4 * std::max(1.0, max_abs(expected))) << name;
  }
  if (sinks) {
    const tensor got = io::read_npy_float(dir.file("dsinks.npy"));
    const tensor expected = c.expected("dsinks_float64");
    EXPECT_LE(max_abs_diff(got, expected), 1e-4 * std::max(1.0, max_abs(expected))) << "dsinks";
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, SdpaModifiersCommand,
                         ::testing::ValuesIn(testing::golden_cli_cases({"sdpa_ext",
                                                                        "sdpa_ext_grad"})),
                         testing::golden_cli_case_name);

// Bad modifier values: exit 2, the flag and the rule in the message, no output file.
class SdpaModifierErrors : public ::testing::Test {
 protected:
  temp_dir dir;
  std::vector<std::string> args = testing::sdpa_command(dir);

  void SetUp() override {
    io::write_npy(dir.file("q.npy"), tensor({1, 2, 3, 4}, 0.5f));
    io::write_npy(dir.file("k.npy"), tensor({1, 1, 5, 4}, 0.25f));
    io::write_npy(dir.file("v.npy"), tensor({1, 1, 5, 6}, 1.0f));
    io::write_npy(dir.file("g.npy"), tensor({1, 2, 3, 6}, 1.0f));
    io::write_npy(dir.file("two.npy"), tensor({2}, 0.5f));
    io::write_npy(dir.file("three.npy"), tensor({3}, 0.5f));
    tensor bad({2}, 0.5f);
    bad[1] = std::numeric_limits<float>::infinity();
    io::write_npy(dir.file("inf.npy"), bad);
  }
  void expect_refused(const std::string& flag, const std::string& value,
                      const std::vector<std::string>& needles,
                      std::vector<std::string> extra = {}) {
    std::vector<std::string> a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    testing::expect_refused(a, flag, value, needles,
                            {dir.file("out.npy"), dir.file("dq.npy"), dir.file("dsinks.npy")});
  }
};

TEST_F(SdpaModifierErrors, WindowSideBelowMinusOne) {
  expect_refused("--window", "-2,0", {"--window", ">= -1", "-2"});
  expect_refused("--window", "3", {"--window", "LEFT,RIGHT"});
  expect_refused("--window", "3,x", {"--window", "LEFT,RIGHT"});
}

TEST_F(SdpaModifierErrors, SoftcapNotFiniteOrNotPositive) {
  for (const char* c : {"0", "-1", "inf", "nan"})
    expect_refused("--softcap", c, {"--softcap", "finite", "> 0"});
}

TEST_F(SdpaModifierErrors, SlopesAndSinksNotOnePerHeadOrNotFinite) {
  expect_refused("--alibi", dir.file("three.npy"), {"--alibi", "[Hq] = [2]", "[3]"});
  expect_refused("--sinks", dir.file("three.npy"), {"--sinks", "[Hq] = [2]", "[3]"});
  expect_refused("--alibi", dir.file("inf.npy"), {"--alibi", "finite"});
  expect_refused("--sinks", dir.file("inf.npy"), {"--sinks", "finite"});
}

TEST_F(SdpaModifierErrors, DsinksWithoutSinks) {
  expect_refused("--dsinks", dir.file("dsinks.npy"), {"--dsinks", "--sinks"},
                 {"--grad-out", dir.file("g.npy"), "--dq", dir.file("dq.npy"), "--dk",
                  dir.file("dk.npy"), "--dv", dir.file("dv.npy")});
}

}  // namespace
}  // namespace qkv
