// `qkv train` and `qkv generate` on a small corpus: the progress and summary lines; a run stopped
// by --minutes, its ETA and its resume; every bad flag and output path refused (exit 2, the flag
// named, no file written); an existing checkpoint kept unless --resume or --overwrite; --resume
// with changed values; stop signals during the final save still ending with a whole checkpoint
// and no temporary file; generation without a prompt and with a context of 1.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <regex>
#include <thread>

#include "qkv/train/trainer.hpp"
#include "support/cli.hpp"

namespace qkv::testing {
namespace {

void write_corpus(const std::string& path) {
  std::ofstream corpus(path);
  for (int i = 0; i < 300; ++i) corpus << "A fortune " << i * 7919 % 1000 << " for today.\n";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// `flag` set to `value` in `args` (replaced, or appended when absent).
std::vector<std::string> with(std::vector<std::string> args, const std::string& flag,
                              const std::string& value) {
  const auto it = std::find(args.begin(), args.end(), flag);
  if (it == args.end())
    args.insert(args.end(), {flag, value});
  else
    *(it + 1) = value;
  return args;
}

// A tiny model, fast enough to train a few steps in well under a second.
std::vector<std::string> tiny_run(const temp_dir& dir, std::vector<std::string> more = {}) {
  std::vector<std::string> args{"train",
                                "--corpus",
                                dir.file("corpus.txt"),
                                "--layers",
                                "1",
                                "--heads",
                                "2",
                                "--embed",
                                "16",
                                "--context",
                                "16",
                                "--batch",
                                "2",
                                "--steps",
                                "4",
                                "--eval-every",
                                "2",
                                "--eval-batches",
                                "1",
                                "--progress-every",
                                "1",
                                "--threads",
                                "1",
                                "--checkpoint",
                                dir.file("c.safetensors")};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(TrainCli, ProgressAndSummaryLines) {
  const temp_dir dir;
  write_corpus(dir.file("corpus.txt"));
  // Stops after the first step; the plot lands beside the checkpoint.
  const cli_result r = run_qkv(tiny_run(dir, {"--minutes=1e-5"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex(R"(step 1/4  loss \d+\.\d+  \d+ tokens/s)")))
      << r.err;
  // Step 1 is neither a multiple of --eval-every nor the last: the stop evaluates for the summary.
  EXPECT_TRUE(std::regex_search(
      r.err, std::regex(R"(qkv train: 1 steps \(0\.\.1\), \d+ tokens/s over the training steps, )"
                        R"(held-out loss \d+\.\d{4} nats per byte at step 1, wall time 0m\d\ds)")))
      << r.err;
  EXPECT_TRUE(file_exists(dir.file("c-loss.svg"))) << r.err;
  const cli_result r2 = run_qkv(tiny_run(dir, {"--resume", "--minutes=0"}));
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_NE(r2.err.find("qkv train: 3 steps (1..4)"), std::string::npos) << r2.err;
}

TEST(TrainCli, EtaRespectsMinutes) {
  const temp_dir dir;
  write_corpus(dir.file("corpus.txt"));
  const cli_result r = run_qkv(
      with(with(tiny_run(dir, {"--minutes=0.01"}), "--eval-every", "1000"), "--steps", "100000"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // 0.6 s of budget: every ETA is at most that, however many steps the schedule has left.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex(R"(step 1/100000 .* ETA (\d+)m(\d\d)s)")))
      << r.err;
  EXPECT_EQ(m[1].str(), "0");
  EXPECT_EQ(m[2].str(), "00");
}

TEST(TrainCli, BadFlagsAreRefusedNamingThem) {
  const temp_dir dir;
  write_corpus(dir.file("corpus.txt"));
  const std::vector<std::string> args = tiny_run(dir, {"--plot", dir.file("p.svg")});
  const std::vector<std::string> outputs{dir.file("c.safetensors"), dir.file("p.svg")};
  for (const auto& [flag, value, needle] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--lr", "nan", "--lr: expected a finite number"},
           {"--lr", "-1", "--lr: must be finite and > 0, got -1"},
           {"--min-lr", "-1", "--min-lr: must be finite and >= 0"},
           {"--weight-decay", "nan", "--weight-decay: expected a finite number"},
           {"--clip", "nan", "--clip: expected a finite number"},
           {"--minutes", "nan", "--minutes: expected a finite number >= 0"},
           {"--warmup", "-5", "--warmup: must be in [0, 2^24], got -5"},
           {"--steps", "0", "--steps: must be >= 1, got 0"},
           {"--steps", "-5", "--steps: must be >= 1, got -5"},
           {"--stop-at", "-3", "--stop-at: expected an integer >= 0"},
           {"--dropout", "-0.5", "--dropout: must be in [0, 1), got -0.5"},
           {"--dropout", "1.5", "--dropout: must be in [0, 1), got 1.5"},
           {"--attention-dropout", "1", "--attention-dropout: must be in [0, 1)"},
           {"--batch", "1000000000", "GiB to train, more than this machine's"},
           {"--eval-batches", "0", "--eval-batches: must be >= 1"},
           {"--heads", "3", "--heads: must divide embed = 16, got 3"},
           {"--plot", dir.file("c.safetensors"), "is the same file as --checkpoint"},
           {"--plot", dir.file("no_such_dir/p.svg"), "does not exist"},
       })
    expect_refused(args, flag, value, {needle}, outputs);
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"corpus.txt"});
}

TEST(TrainCli, AnExistingCheckpointIsKeptUnlessResumedOrOverwritten) {
  const temp_dir dir;
  write_corpus(dir.file("corpus.txt"));
  ASSERT_EQ(run_qkv(tiny_run(dir, {"--stop-at=2"})).exit_code, 0);
  const std::string before = slurp(dir.file("c.safetensors"));
  const cli_result again = run_qkv(tiny_run(dir));
  EXPECT_EQ(again.exit_code, 2) << again.err;
  EXPECT_NE(again.err.find("exists; continue it with --resume, or replace it with --overwrite"),
            std::string::npos)
      << again.err;
  EXPECT_EQ(slurp(dir.file("c.safetensors")), before);
  const cli_result both = run_qkv(tiny_run(dir, {"--resume", "--overwrite"}));
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("--overwrite: contradicts --resume"), std::string::npos) << both.err;
  const cli_result missing =
      run_qkv(with(tiny_run(dir, {"--resume"}), "--checkpoint", dir.file("x")));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--resume: no checkpoint to continue"), std::string::npos)
      << missing.err;
  const cli_result overwrite = run_qkv(tiny_run(dir, {"--overwrite", "--stop-at=1"}));
  ASSERT_EQ(overwrite.exit_code, 0) << overwrite.err;
  EXPECT_EQ(
      train::trainer::resume(dir.file("c.safetensors"), slurp(dir.file("corpus.txt")))->step(), 1);
}

TEST(TrainCli, ResumeRefusesAnotherModelAndAppliesANewSchedule) {
  const temp_dir dir;
  write_corpus(dir.file("corpus.txt"));
  ASSERT_EQ(run_qkv(tiny_run(dir, {"--stop-at=2"})).exit_code, 0);
  const cli_result layers = run_qkv(with(tiny_run(dir, {"--resume"}), "--layers", "2"));
  EXPECT_EQ(layers.exit_code, 2);
  EXPECT_NE(layers.err.find("--layers: 2 differs from checkpoint '" + dir.file("c.safetensors") +
                            "', which has 1"),
            std::string::npos)
      << layers.err;
  const cli_result lr = run_qkv(with(tiny_run(dir, {"--resume", "--lr=0.01"}), "--steps", "5"));
  ASSERT_EQ(lr.exit_code, 0) << lr.err;
  EXPECT_NE(lr.err.find("--resume with --lr 0.01 (the checkpoint had 0.002)"), std::string::npos)
      << lr.err;
  EXPECT_NE(lr.err.find("--resume with --steps 5 (the checkpoint had 4)"), std::string::npos);
  EXPECT_NE(lr.err.find("qkv train: 3 steps (2..5)"), std::string::npos) << lr.err;
  const std::unique_ptr<train::trainer> t =
      train::trainer::resume(dir.file("c.safetensors"), slurp(dir.file("corpus.txt")));
  EXPECT_FLOAT_EQ(t->config().lr, 0.01f);
  EXPECT_EQ(t->config().steps, 5);
}

// Ctrl-C, then more SIGINT, SIGTERM and SIGHUP all through the evaluation and the save (held back
// by the test hook): the run still ends with exit code 0, a checkpoint that resumes, and no
// temporary file.
TEST(TrainCli, StopSignalsDuringTheFinalSaveLeaveAWholeCheckpoint) {
  const temp_dir dir;
  write_corpus(dir.file("corpus.txt"));
  std::vector<std::string> args =
      with(tiny_run(dir, {"--minutes=0", "--plot", dir.file("p.svg")}), "--steps", "100000");
  std::vector<char*> argv{const_cast<char*>(QKV_CLI)};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string err_path = dir.file("stderr.txt");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(err, 2);
    setenv("QKV_TEST_PAUSE_BEFORE_FINAL_SAVE_MS", "300", 1);
    execv(QKV_CLI, argv.data());
    _exit(127);
  }
  using namespace std::chrono_literals;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (slurp(err_path).find("step 3/") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  kill(pid, SIGINT);
  while (slurp(err_path).find("saving the checkpoint") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  int status = 0, sent = 0;
  while (waitpid(pid, &status, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline) {
    kill(pid, (const int[]){SIGINT, SIGTERM, SIGHUP}[sent++ % 3]);
    std::this_thread::sleep_for(2ms);
  }
  const std::string err = slurp(err_path);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n" << err;
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
  EXPECT_GT(sent, 50) << err;  // signals kept coming through the pause and the save
  EXPECT_NE(err.find("interrupted at step"), std::string::npos) << err;
  std::vector<std::string> files = list_dir(dir.path());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files,
            (std::vector<std::string>{"c.safetensors", "corpus.txt", "p.svg", "stderr.txt"}));
  const std::unique_ptr<train::trainer> t =
      train::trainer::resume(dir.file("c.safetensors"), slurp(dir.file("corpus.txt")));
  EXPECT_GE(t->step(), 3);
}

TEST(GenerateCli, WithoutAPromptAndWithAContextOfOne) {
  const temp_dir dir;
  write_corpus(dir.file("corpus.txt"));
  ASSERT_EQ(run_qkv(tiny_run(dir, {"--stop-at=1"})).exit_code, 0);
  for (const std::vector<std::string>& prompt :
       {std::vector<std::string>{}, std::vector<std::string>{"--prompt", ""}}) {
    std::vector<std::string> args{"generate", "--checkpoint", dir.file("c.safetensors"), "--tokens",
                                  "20"};
    args.insert(args.end(), prompt.begin(), prompt.end());
    const cli_result r = run_qkv(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.size(), 21u) << r.out;  // 20 bytes and a line break
  }
  const cli_result bf16 = run_qkv({"generate", "--checkpoint", dir.file("c.safetensors"),
                                   "--tokens", "20", "--kv-dtype", "bf16"});
  EXPECT_EQ(bf16.exit_code, 0) << bf16.err;
  EXPECT_EQ(bf16.out.size(), 21u) << bf16.out;
  const cli_result unknown =
      run_qkv({"generate", "--checkpoint", dir.file("c.safetensors"), "--prompt", "for\xC3\xA9"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("--prompt: byte 0xC3 of the character '\xC3\xA9' at byte offset 3"),
            std::string::npos)
      << unknown.err;
  // A model that reads one byte at a time: every step restarts the cache on the last byte.
  ASSERT_EQ(
      run_qkv(with(tiny_run(dir, {"--overwrite", "--stop-at=1"}), "--context", "1")).exit_code, 0);
  const cli_result r = run_qkv({"generate", "--checkpoint", dir.file("c.safetensors"), "--prompt",
                                "A fortune", "--tokens", "30"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 9u + 30u + 1u) << r.out;
}

TEST(GenerateCli, ABadCheckpointIsRefusedNamingIt) {
  const temp_dir dir;
  std::ofstream(dir.file("not.safetensors")) << "not a checkpoint";
  const cli_result r = run_qkv({"generate", "--checkpoint", dir.file("not.safetensors")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--checkpoint"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("--prompt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qkv::testing
