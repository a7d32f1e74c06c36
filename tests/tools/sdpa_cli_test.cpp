// `qkv sdpa` end to end: every golden sdpa and sdpa_grad case through the command, with each
// kernel, and every bad input of issue 2 refused with exit code 2, a message naming the argument
// and the shapes, and no output file.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "qkv/attention.hpp"
#include "qkv/io/npy.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"
#include "support/sdpa_command.hpp"

namespace qkv {
namespace {

using testing::golden_case;
using testing::golden_tolerance;
using testing::max_abs;
using testing::max_abs_diff;
using testing::nan_to_zero;
using testing::run_qkv;
using testing::temp_dir;

using cli_case = testing::golden_cli_case;

// The command-line flags that express a golden case's scale, causal mode and mask.
std::vector<std::string> option_flags(const golden_case& c, const temp_dir& dir) {
  std::vector<std::string> flags;
  const auto& p = c.data().at("params");
  if (!p.value("scale_is_default", true)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", p.at("scale").get<double>());
    flags.insert(flags.end(), {"--scale", buf});
  }
  if (p.contains("causal") && !p["causal"].is_null())
    flags.insert(flags.end(),
                 {"--causal", p["causal"] == "top_left" ? "top-left" : "bottom-right"});
  for (const char* name : {"attn_mask_bool", "attn_mask_additive"})
    if (c.has_input(name)) {
      testing::write_golden_npy(c.data()["inputs"][name], dir.file("mask.npy"));
      flags.insert(flags.end(), {"--mask", dir.file("mask.npy")});
    }
  return flags;
}

class SdpaCommand : public ::testing::TestWithParam<cli_case> {};

TEST_P(SdpaCommand, MatchesPyTorch) {
  const golden_case& c = GetParam().golden;
  const std::string& impl = GetParam().impl;
  temp_dir dir;
  for (const char* name : {"q", "k", "v"})
    testing::write_golden_npy(c.data()["inputs"][name], dir.file(std::string(name) + ".npy"));
  std::vector<std::string> args = testing::sdpa_command(dir);
  args.insert(args.end(), {"--lse", dir.file("lse.npy"), "--impl", impl});
  const auto flags = option_flags(c, dir);
  args.insert(args.end(), flags.begin(), flags.end());
  const bool grad = c.kind == "sdpa_grad";
  if (grad) {
    testing::write_golden_npy(c.data()["inputs"]["G"], dir.file("g.npy"));
    const auto grad_flags = testing::sdpa_grad_flags(dir);
    args.insert(args.end(), grad_flags.begin(), grad_flags.end());
  }
  const auto r = run_qkv(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const tensor out = io::read_npy_float(dir.file("out.npy"));
  // docs/contracts.md section 3: where fp32 rounding of the inputs decides the answer (a finite
  // -1e9 mask added to O(1) scores rounds to -1e9 exactly), an fp32 kernel is compared with
  // PyTorch's fp32.
  const bool fp32_decides = impl == "fused" && c.id.find("finite_neg1e9") != std::string::npos;
  const tensor expected = nan_to_zero(c.expected(fp32_decides ? "out_float32" : "out_float64"));
  EXPECT_LE(max_abs_diff(out, expected),
            golden_tolerance(c, expected, impl == "fused" ? 2e-5 : 1e-5));
  EXPECT_EQ(io::read_npy_float(dir.file("lse.npy")).shape(),
            (shape_t{out.size(0), out.size(1), out.size(2)}));
  if (grad)
    for (const char* name : {"dQ", "dK", "dV"}) {
      std::string file = std::string("d") + static_cast<char>(std::tolower(name[1])) + ".npy";
      const tensor got = io::read_npy_float(dir.file(file));
      const tensor want = c.expected(std::string(name) + "_float64");
      EXPECT_LE(max_abs_diff(got, want), golden_tolerance(c, want, 1e-4)) << name;
    }
}

INSTANTIATE_TEST_SUITE_P(Golden, SdpaCommand,
                         ::testing::ValuesIn(testing::golden_cli_cases({"sdpa", "sdpa_grad"})),
                         testing::golden_cli_case_name);

// ---- Bad input: exit 2, a message naming the argument and the shapes, no output file. ----

// A .npy file with an arbitrary header, for the formats qkv must refuse.
void write_raw_npy(const std::string& path, const std::string& descr, bool fortran,
                   const std::string& shape, size_t data_bytes) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': " + shape + ", }";
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(dict.size() & 0xff), static_cast<char>(dict.size() >> 8)};
  f.write(len, 2);
  f << dict << std::string(data_bytes, '\0');
}

class SdpaErrors : public ::testing::Test {
 protected:
  temp_dir dir;
  std::string q = dir.file("q.npy"), k = dir.file("k.npy"), v = dir.file("v.npy");
  std::string out = dir.file("out.npy");

  void SetUp() override {
    io::write_npy(q, tensor({1, 2, 3, 4}, 0.5f));
    io::write_npy(k, tensor({1, 2, 5, 4}, 0.25f));
    io::write_npy(v, tensor({1, 2, 5, 6}, 1.0f));
  }

  // Runs `qkv sdpa` with the given inputs; expects exit 2, every `needle` in stderr, and no new
  // file in the directory.
  void expect_refused(std::vector<std::string> extra, std::vector<std::string> needles,
                      const std::string& q_path = "", const std::string& k_path = "",
                      const std::string& v_path = "") {
    const auto before = testing::list_dir(dir.path());
    std::vector<std::string> args = {"sdpa",
                                     "--q",
                                     q_path.empty() ? q : q_path,
                                     "--k",
                                     k_path.empty() ? k : k_path,
                                     "--v",
                                     v_path.empty() ? v : v_path,
                                     "-o",
                                     out};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_qkv(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    for (const auto& n : needles)
      EXPECT_NE(r.err.find(n), std::string::npos) << "stderr: " << r.err << "\nmissing: " << n;
    EXPECT_EQ(testing::list_dir(dir.path()).size(), before.size()) << "an output file appeared";
    EXPECT_FALSE(testing::file_exists(out));
  }
};

TEST_F(SdpaErrors, WrongRank) {
  io::write_npy(dir.file("q3.npy"), tensor({2, 3, 4}));
  expect_refused({}, {"--q", "rank 4", "[2, 3, 4]"}, dir.file("q3.npy"));
}

TEST_F(SdpaErrors, MismatchedBatch) {
  io::write_npy(dir.file("k2.npy"), tensor({2, 2, 5, 4}));
  expect_refused({}, {"batch", "[1, 2, 3, 4]", "[2, 2, 5, 4]"}, "", dir.file("k2.npy"));
}

TEST_F(SdpaErrors, MismatchedHeadDim) {
  io::write_npy(dir.file("k3.npy"), tensor({1, 2, 5, 3}));
  expect_refused({}, {"--k", "head dim", "[1, 2, 5, 3]"}, "", dir.file("k3.npy"));
}

TEST_F(SdpaErrors, MismatchedKvHeads) {
  io::write_npy(dir.file("v1.npy"), tensor({1, 1, 5, 6}));
  expect_refused({}, {"--v", "Hkv", "[1, 1, 5, 6]"}, "", "", dir.file("v1.npy"));
}

TEST_F(SdpaErrors, MismatchedKeyCount) {
  io::write_npy(dir.file("v7.npy"), tensor({1, 2, 7, 6}));
  expect_refused({}, {"--v", "Nk", "[1, 2, 7, 6]"}, "", "", dir.file("v7.npy"));
}

TEST_F(SdpaErrors, QueryHeadsNotAMultipleOfKvHeads) {
  io::write_npy(dir.file("q3h.npy"), tensor({1, 3, 3, 4}));
  expect_refused({}, {"multiple", "Hq (3)", "Hkv (2)"}, dir.file("q3h.npy"));
}

TEST_F(SdpaErrors, MaskThatDoesNotBroadcast) {
  io::write_npy(dir.file("m.npy"), bool_tensor({3, 4}, 1));
  expect_refused({"--mask", dir.file("m.npy")}, {"--mask", "[3, 4]", "[1, 2, 3, 5]", "broadcast"});
}

TEST_F(SdpaErrors, ScaleNotFinitePositive) {
  for (const char* s : {"0", "-1", "inf", "nan"})
    expect_refused({"--scale", s}, {"--scale", "finite"});
}

TEST_F(SdpaErrors, UnknownImplAndCausal) {
  expect_refused({"--impl", "fast"}, {"--impl", "fast"});
  expect_refused({"--causal", "diagonal"}, {"--causal", "top-left"});
}

TEST_F(SdpaErrors, NotANpyFile) {
  std::ofstream(dir.file("text.npy")) << "hello, not numpy\n";
  expect_refused({}, {"--q", "text.npy", "not a .npy"}, dir.file("text.npy"));
}

TEST_F(SdpaErrors, TruncatedData) {
  write_raw_npy(dir.file("short.npy"), "<f4", false, "(1, 2, 3, 4)", 40);
  expect_refused({}, {"--q", "truncated", "[1, 2, 3, 4]"}, dir.file("short.npy"));
}

TEST_F(SdpaErrors, FortranOrder) {
  write_raw_npy(dir.file("f.npy"), "<f4", true, "(1, 2, 3, 4)", 96);
  expect_refused({}, {"--q", "Fortran"}, dir.file("f.npy"));
}

TEST_F(SdpaErrors, BigEndian) {
  write_raw_npy(dir.file("be.npy"), ">f4", false, "(1, 2, 3, 4)", 96);
  expect_refused({}, {"--q", "big-endian"}, dir.file("be.npy"));
}

TEST_F(SdpaErrors, UnsupportedDtype) {
  write_raw_npy(dir.file("i.npy"), "<i4", false, "(1, 2, 3, 4)", 96);
  expect_refused({}, {"--q", "dtype", "<i4"}, dir.file("i.npy"));
}

TEST_F(SdpaErrors, MissingInput) {
  expect_refused({}, {"--k", "nope.npy"}, "", dir.file("nope.npy"));
}

TEST_F(SdpaErrors, UnwritableOutput) {
  const auto r =
      run_qkv({"sdpa", "--q", q, "--k", k, "--v", v, "-o", dir.file("no/such/dir/o.npy")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no/such/dir/o.npy"), std::string::npos) << r.err;
}

TEST_F(SdpaErrors, LaterOutputFailureRemovesEarlierOutputs) {
  // OUT is written first; the LSE path is unwritable; OUT must not be left behind.
  expect_refused({"--lse", dir.file("missing/lse.npy")}, {"lse.npy"});
}

// --grad-out writes any subset of --dq, --dk, --dv (HostileNeighbours tests one alone), but not
// none; and a gradient output needs --grad-out.
TEST_F(SdpaErrors, GradientOutputsAndGradOutGoTogether) {
  io::write_npy(dir.file("g.npy"), tensor({1, 2, 3, 6}));
  expect_refused({"--grad-out", dir.file("g.npy")}, {"--grad-out", "--dq", "--dk", "--dv"});
  expect_refused({"--dq", dir.file("dq.npy")}, {"--grad-out"});
}

TEST_F(SdpaErrors, GradOutWithTheWrongShape) {
  io::write_npy(dir.file("g.npy"), tensor({1, 2, 3, 4}));
  expect_refused({"--grad-out", dir.file("g.npy"), "--dq", dir.file("dq.npy"), "--dk",
                  dir.file("dk.npy"), "--dv", dir.file("dv.npy")},
                 {"--grad-out", "[1, 2, 3, 6]", "[1, 2, 3, 4]"});
}

TEST_F(SdpaErrors, DropoutOutsideZeroToOne) {
  expect_refused({"--dropout", "1"}, {"--dropout", "[0, 1)"});
}

TEST(SdpaCommandInputs, NanAndInfPropagateWithoutACrash) {
  temp_dir dir;
  tensor q({1, 1, 2, 2}, 1.0f);
  q.at({0, 0, 0, 1}) = std::numeric_limits<float>::quiet_NaN();
  tensor v({1, 1, 3, 2}, 1.0f);
  v.at({0, 0, 2, 0}) = std::numeric_limits<float>::infinity();
  io::write_npy(dir.file("q.npy"), q);
  io::write_npy(dir.file("k.npy"), tensor({1, 1, 3, 2}, 0.5f));
  io::write_npy(dir.file("v.npy"), v);
  const auto r = run_qkv({"sdpa", "--q", dir.file("q.npy"), "--k", dir.file("k.npy"), "--v",
                          dir.file("v.npy"), "-o", dir.file("o.npy")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const tensor o = io::read_npy_float(dir.file("o.npy"));
  // The NaN rule: a NaN in q's row 0, and an infinite value row that row 1 sees, make every
  // output of those rows NaN.
  for (const float x :
       {o.at({0, 0, 0, 0}), o.at({0, 0, 0, 1}), o.at({0, 0, 1, 0}), o.at({0, 0, 1, 1})})
    EXPECT_TRUE(std::isnan(x));
}

}  // namespace
}  // namespace qkv
