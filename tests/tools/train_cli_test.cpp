// `qkv train` on a small corpus: the progress line shows tokens/s; a run stopped by --minutes ends
// with a held-out evaluation, the summary line (steps, tokens/s, held-out loss, wall time) and a
// checkpoint that resumes.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "support/cli.hpp"

namespace qkv::testing {
namespace {

TEST(TrainCli, ProgressAndSummaryLines) {
  const temp_dir dir;
  {
    std::ofstream corpus(dir.file("corpus.txt"));
    for (int i = 0; i < 300; ++i) corpus << "A fortune " << i * 7919 % 1000 << " for today.\n";
  }
  const std::vector<std::string> args{
      "train",          "--corpus",          dir.file("corpus.txt"),
      "--layers=1",     "--heads=2",         "--embed=16",
      "--context=16",   "--batch=2",         "--steps=4",
      "--eval-every=2", "--eval-batches=1",  "--progress-every=1",
      "--threads=1",    "--checkpoint",      dir.file("c.safetensors"),
      "--plot",         dir.file("loss.svg")};
  std::vector<std::string> first = args, resume = args;
  first.push_back("--minutes=1e-5");  // stops after the first step
  resume.insert(resume.end(), {"--resume", "--minutes=0"});
  const cli_result r = run_qkv(first);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(step 1/4  loss \d+\.\d+  \d+ tokens/s)")))
      << r.err;
  // Step 1 is neither a multiple of --eval-every nor the last: the stop evaluates for the summary.
  EXPECT_TRUE(std::regex_search(
      r.err,
      std::regex(R"(qkv train: 1 steps \(0\.\.1\), \d+ tokens/s over the training steps, )"
                 R"(held-out loss \d+\.\d{4} nats per character at step 1, wall time 0m\d\ds)")))
      << r.err;
  const cli_result r2 = run_qkv(resume);
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_NE(r2.err.find("qkv train: 3 steps (1..4)"), std::string::npos) << r2.err;
}

}  // namespace
}  // namespace qkv::testing
