// `mpirun -np P qkv sdpa --ring`: the same whole output files as `qkv sdpa` (docs/contracts.md
// section 5, section 3's tolerances), and bad input refused on every rank with exit code 2 and no
// file.
#if defined(QKV_WITH_MPI) && defined(QKV_MPIEXEC)

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "qkv/io/npy.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::temp_dir;

testing::cli_result run_ring(int P, const std::vector<std::string>& args) {
  std::vector<std::string> all = {"--allow-run-as-root",
                                  "--oversubscribe",
                                  "-np",
                                  std::to_string(P),
                                  QKV_CLI,
                                  "sdpa",
                                  "--ring",
                                  "--threads",
                                  "1"};
  all.insert(all.end(), args.begin(), args.end());
  return testing::run_program(QKV_MPIEXEC, all);
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(SdpaRingCli, SameFilesAsSingleProcess) {
  temp_dir dir;
  std::mt19937_64 rng(11);
  const int64_t B = 2, Hq = 4, Hkv = 2, N = 19, d = 8;
  io::write_npy(dir.file("q.npy"), testing::random_tensor({B, Hq, N, d}, rng));
  io::write_npy(dir.file("k.npy"), testing::random_tensor({B, Hkv, N, d}, rng));
  io::write_npy(dir.file("v.npy"), testing::random_tensor({B, Hkv, N, d}, rng));
  io::write_npy(dir.file("g.npy"), testing::random_tensor({B, Hq, N, d}, rng));
  bool_tensor padding({B, 1, 1, N}, 1);
  for (int64_t j = 0; j < 4; ++j) padding.at({1, 0, 0, j}) = 0;  // batch 1: first 4 keys hidden
  io::write_npy(dir.file("m.npy"), padding);

  io::write_npy(dir.file("slopes.npy"), tensor({Hq}, 0.25f));
  io::write_npy(dir.file("sinks.npy"), testing::random_tensor({Hq}, rng));

  // Plain, then with every score modifier (and d sinks).
  for (bool modifiers : {false, true}) {
    std::vector<std::string> names = {"out", "lse", "dq", "dk", "dv"};
    if (modifiers) names.push_back("dsinks");
    const auto args = [&](const std::string& tag) {
      std::vector<std::string> a = {"--q",      dir.file("q.npy"), "--k",        dir.file("k.npy"),
                                    "--v",      dir.file("v.npy"), "--mask",     dir.file("m.npy"),
                                    "--causal", "top-left",        "--grad-out", dir.file("g.npy")};
      if (modifiers)
        a.insert(a.end(), {"--window", "6,0", "--softcap", "4", "--alibi", dir.file("slopes.npy"),
                           "--sinks", dir.file("sinks.npy")});
      for (const auto& n : names) a.insert(a.end(), {"--" + n, dir.file(tag + n + ".npy")});
      return a;
    };
    const auto single = testing::run_qkv([&] {
      auto a = args("single_");
      a.insert(a.begin(), "sdpa");
      return a;
    }());
    ASSERT_EQ(single.exit_code, 0) << single.err;
    for (const char* layout : {"zigzag", "contiguous"}) {
      auto a = args(std::string(layout) + "_");
      a.insert(a.end(), {"--ring-layout", layout});
      const auto ring = run_ring(3, a);
      ASSERT_EQ(ring.exit_code, 0) << ring.err;
      for (const auto& n : names) {
        const tensor expected = io::read_npy_float(dir.file("single_" + n + ".npy"));
        const tensor got = io::read_npy_float(dir.file(std::string(layout) + "_" + n + ".npy"));
        ASSERT_EQ(got.shape(), expected.shape()) << n;
        const double base = n == "out" || n == "lse" ? 2e-5 : 1e-4;
        EXPECT_LE(testing::max_abs_diff(got, expected),
                  base * std::max(1.0, testing::max_abs(expected)))
            << layout << " " << n << (modifiers ? " with modifiers" : "");
      }
    }
  }
}

// A bad input is refused on every rank (exit code 2) and said once, by rank 0.
TEST(SdpaRingCli, DenseMaskRefusedOnceForEveryRank) {
  temp_dir dir;
  std::mt19937_64 rng(12);
  for (const char* name : {"q", "k", "v"})
    io::write_npy(dir.file(std::string(name) + ".npy"), testing::random_tensor({1, 2, 6, 4}, rng));
  io::write_npy(dir.file("m.npy"), bool_tensor({6, 6}, 1));  // [Nq,Nk]
  const auto r =
      run_ring(2, {"--q", dir.file("q.npy"), "--k", dir.file("k.npy"), "--v", dir.file("v.npy"),
                   "--mask", dir.file("m.npy"), "-o", dir.file("out.npy")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count(r.err, "a dense mask is refused with --ring"), 1u) << r.err;
  EXPECT_FALSE(testing::file_exists(dir.file("out.npy")));
}

TEST(SdpaRingCli, SequenceTooShortForZigzag) {
  temp_dir dir;
  std::mt19937_64 rng(13);
  for (const char* name : {"q", "k", "v"})
    io::write_npy(dir.file(std::string(name) + ".npy"), testing::random_tensor({1, 1, 5, 4}, rng));
  const auto r =
      run_ring(3, {"--q", dir.file("q.npy"), "--k", dir.file("k.npy"), "--v", dir.file("v.npy"),
                   "--ring-layout", "zigzag", "-o", dir.file("out.npy")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count(r.err, "--q: a sequence of 5 rows is too short for 3 ranks"), 1u) << r.err;
  EXPECT_FALSE(testing::file_exists(dir.file("out.npy")));
}

// Started by mpirun without --ring, each rank would run the whole command and write the same
// files: refused before anything runs, said once.
TEST(SdpaRingCli, MpirunWithoutRingIsRefusedOnce) {
  temp_dir dir;
  std::mt19937_64 rng(14);
  for (const char* name : {"q", "k", "v"})
    io::write_npy(dir.file(std::string(name) + ".npy"), testing::random_tensor({1, 1, 4, 4}, rng));
  const auto r = testing::run_program(
      QKV_MPIEXEC, {"--allow-run-as-root", "--oversubscribe", "-np", "2", QKV_CLI, "sdpa", "--q",
                    dir.file("q.npy"), "--k", dir.file("k.npy"), "--v", dir.file("v.npy"), "-o",
                    dir.file("out.npy")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count(r.err, "without --ring"), 1u) << r.err;
  EXPECT_FALSE(testing::file_exists(dir.file("out.npy")));
}

}  // namespace
}  // namespace qkv

#endif
