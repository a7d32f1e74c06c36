// `qkv train`: trains the byte-level GPT (include/qkv/nn/gpt.hpp) on a text corpus (default:
// Debian's fortunes), with a progress line, held-out evaluation, atomic checkpoints, exact
// resumption, a clean stop with a checkpoint on Ctrl-C (or SIGTERM, SIGHUP), and the loss curve
// as an SVG.
#include <cblas.h>
#include <malloc.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "numbers.hpp"
#include "output_files.hpp"
#include "qkv/error.hpp"
#include "qkv/io/atomic_file.hpp"
#include "qkv/threads.hpp"
#include "qkv/train/trainer.hpp"

namespace qkv::cli {
namespace {

// The first stop signal received (0: none). Once set, every later SIGINT, SIGTERM or SIGHUP
// is absorbed too: the run finishes its step and writes its checkpoint whatever follows.
volatile std::sig_atomic_t stop_signal = 0;
extern "C" void on_stop_signal(int signal) {
  if (stop_signal == 0) stop_signal = signal;
}

constexpr int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

// Kept until the command returns: a signal after the final save must not kill the run either.
void catch_stop_signals() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  action.sa_flags = SA_RESTART;  // a write of the checkpoint is not cut short by EINTR
  sigemptyset(&action.sa_mask);
  for (const int s : stop_signals) sigaddset(&action.sa_mask, s);
  for (const int s : stop_signals) sigaction(s, &action, nullptr);
}

struct train_args {
  train::train_config config;
  std::string corpus, checkpoint = "qkv-train.safetensors", plot;
  bool resume = false, overwrite = false;
  int threads = 0;
  int64_t eval_every = 200, checkpoint_every = 500, stop_at = 0, progress_every = 50;
  double minutes = 15;  // the default run fits in it (docs/training.md)
  // The flags given on the command line (for --resume: which values the user asked to change).
  std::vector<std::string> given;
  bool was_given(const std::string& flag) const {
    return std::find(given.begin(), given.end(), flag) != given.end();
  }
};

// A flag's value as a user would write it: 4, 0.002, 1e-05.
std::string shown(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", x);
  return buffer;
}
std::string shown(int64_t x) {
  return std::to_string(x);
}
std::string shown(uint64_t x) {
  return std::to_string(x);
}

std::string duration(double seconds) {
  const auto s = static_cast<long>(seconds);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%ldm%02lds", s / 60, s % 60);
  return buffer;
}

// The loss plot beside the checkpoint: "run.safetensors" -> "run-loss.svg".
std::string default_plot_path(const std::string& checkpoint) {
  std::filesystem::path p(checkpoint);
  return (p.parent_path() / (p.stem().string() + "-loss.svg")).string();
}

void save(const train::trainer& t, const train_args& a) {
  output_files outputs;
  outputs.add("--checkpoint", a.checkpoint, [&](const std::string& path) { t.save(path); });
  outputs.add("--plot", a.plot, [&](const std::string& path) {
    io::write_file_atomically(
        path, train::loss_plot_svg(t.train_curve(), t.eval_curve(), "qkv train: loss per byte"));
  });
  outputs.commit();
}

// Every check that needs no corpus, before the corpus is read and anything is written.
void check_arguments(train_args& a) {
  if (std::string why = train::train_config_violation(a.config); !why.empty())
    throw error("--" + why);
  if (a.resume && a.overwrite)
    throw error("--overwrite: contradicts --resume (which continues the checkpoint)");
  if (a.plot.empty()) a.plot = default_plot_path(a.checkpoint);
  check_output_paths({{"--checkpoint", a.checkpoint}, {"--plot", a.plot}});
  const bool exists = std::filesystem::exists(a.checkpoint);
  if (a.resume && !exists)
    throw error("--resume: no checkpoint to continue at --checkpoint '" + a.checkpoint + "'");
  if (!a.resume && !a.overwrite && exists)
    throw error("--checkpoint: '" + a.checkpoint +
                "' exists; continue it with --resume, or replace it with --overwrite");
}

// On --resume: the schedule, weight decay and clipping given on the command line replace the
// checkpoint's (said on stderr); any other value given must equal the checkpoint's, since the
// model and its data stream are the checkpoint's.
void adjust_resumed_run(const train_args& a, train::train_config& c) {
  const train::train_config& given = a.config;
  const auto same = [&](const char* flag, auto mine, auto theirs) {
    if (a.was_given(flag) && mine != theirs)
      throw error(std::string(flag) + ": " + shown(mine) + " differs from checkpoint '" +
                  a.checkpoint + "', which has " + shown(theirs) +
                  "; a resumed run keeps the model, batch, dropout, evaluation and seed (drop the "
                  "flag, or start a new run with --overwrite)");
  };
  same("--layers", given.model.layers, c.model.layers);
  same("--heads", given.model.heads, c.model.heads);
  same("--embed", given.model.embed, c.model.embed);
  same("--context", given.model.context, c.model.context);
  same("--dropout", given.model.dropout, c.model.dropout);
  same("--attention-dropout", given.model.attention_dropout, c.model.attention_dropout);
  same("--batch", given.batch, c.batch);
  same("--eval-batches", given.eval_batches, c.eval_batches);
  same("--seed", given.seed, c.seed);
  const auto change = [&](const char* flag, auto mine, auto& theirs) {
    if (!a.was_given(flag) || mine == theirs) return;
    std::fprintf(stderr, "qkv train: --resume with %s %s (the checkpoint had %s)\n", flag,
                 shown(mine).c_str(), shown(theirs).c_str());
    theirs = mine;
  };
  change("--steps", given.steps, c.steps);
  change("--lr", given.lr, c.lr);
  change("--min-lr", given.min_lr, c.min_lr);
  change("--warmup", given.warmup, c.warmup);
  change("--weight-decay", given.weight_decay, c.weight_decay);
  change("--clip", given.clip, c.clip);
}

// libgomp reads OMP_WAIT_POLICY once, when the program loads. Its default, spinning at every
// barrier for a while before sleeping, collapses 2-thread training as soon as another process
// shares the 2 cores: a step passes ~150 barriers, and a spinning thread burns the share its
// partner needs (measured at load 1.3-2: 4.0k and 8.0k tokens/s by default, 15.9k and 18.0k
// passive, 11k on 1 thread; docs/training.md). So `qkv train` re-executes itself once with
// OMP_WAIT_POLICY=passive unless the environment already sets a policy.
void prefer_passive_waiting() {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(cmdline, arg, '\0');) args.push_back(arg);
  if (args.empty()) return;
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv.data());
  unsetenv("OMP_WAIT_POLICY");  // exec failed: carry on with the default policy
}

// For tests of the stop signals: QKV_TEST_PAUSE_BEFORE_FINAL_SAVE_MS holds the final save back
// so that signals can be sent while it is pending.
void test_pause_before_final_save() {
  if (const char* ms = std::getenv("QKV_TEST_PAUSE_BEFORE_FINAL_SAVE_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(ms)));
}

void run_train(train_args& a) {
  check_arguments(a);
  prefer_passive_waiting();
  // Every step frees and allocates the same activation tensors (up to 4 MB each). Kept in the
  // heap rather than mmap'd and unmapped each time, their pages are not faulted in and zeroed
  // again by the kernel every step (glibc's adaptive threshold does not always ensure it: one
  // profile spent 15% of the time in page faults).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto seconds_since = [](clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  const int threads = resolve_thread_count(a.threads);
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  const std::string text =
      train::read_text_files(a.corpus.empty() ? train::fortune_files() : std::vector{a.corpus});
  std::unique_ptr<train::trainer> t =
      a.resume ? train::trainer::resume(a.checkpoint, text,
                                        [&](train::train_config& c) { adjust_resumed_run(a, c); })
               : std::make_unique<train::trainer>(a.config, text);
  t->run.threads = threads;
  const train::train_config& c = t->config();
  const int64_t last = a.stop_at > 0 ? std::min(a.stop_at, c.steps) : c.steps;
  std::fprintf(stderr,
               "qkv train: %lld bytes, vocabulary %lld, L=%lld H=%lld E=%lld T=%lld B=%lld, "
               "%d threads, steps %lld..%lld\n",
               static_cast<long long>(text.size()), static_cast<long long>(t->vocab().size()),
               static_cast<long long>(c.model.layers), static_cast<long long>(c.model.heads),
               static_cast<long long>(c.model.embed), static_cast<long long>(c.model.context),
               static_cast<long long>(c.batch), threads, static_cast<long long>(t->step()),
               static_cast<long long>(last));
  catch_stop_signals();
  const bool tty = isatty(fileno(stderr));
  const int64_t first = t->step();
  double loss = 0, train_seconds = 0, held_out = 0;
  int64_t held_out_step = -1;
  const auto evaluate = [&] {
    held_out = t->evaluate();
    held_out_step = t->step();
    std::fprintf(stderr, "%sstep %lld: held-out loss %.4f nats per byte (%s)\n",
                 tty ? "\r\033[K" : "", static_cast<long long>(t->step()), held_out,
                 duration(seconds_since(start)).c_str());
  };
  while (t->step() < last && !stop_signal) {
    const auto step_start = clock::now();
    loss = t->train_step();
    train_seconds += seconds_since(step_start);
    // Throughput of the training steps alone (evaluations and checkpoints excluded).
    const double per_step = train_seconds / static_cast<double>(t->step() - first);
    const double tokens_per_s = static_cast<double>(t->tokens_per_step()) / per_step;
    const double elapsed = seconds_since(start);
    // The time left: the remaining steps at the current pace, or what --minutes leaves.
    double eta = per_step * static_cast<double>(last - t->step());
    if (a.minutes > 0) eta = std::max(0.0, std::min(eta, 60 * a.minutes - elapsed));
    if (tty || t->step() % a.progress_every == 0 || t->step() == last)
      std::fprintf(stderr, "%sstep %lld/%lld  loss %.3f  %.0f tokens/s  elapsed %s  ETA %s%s",
                   tty ? "\r\033[K" : "", static_cast<long long>(t->step()),
                   static_cast<long long>(last), loss, tokens_per_s, duration(elapsed).c_str(),
                   duration(eta).c_str(), tty ? "" : "\n");
    if (t->step() % a.eval_every == 0 || t->step() == last) evaluate();
    if (t->step() % a.checkpoint_every == 0) save(*t, a);
    // Stop before a step that would end past the time limit.
    if (a.minutes > 0 && seconds_since(start) + per_step > 60 * a.minutes) break;
  }
  if (stop_signal) {
    std::fprintf(stderr, "\nqkv train: %s at step %lld: saving the checkpoint\n",
                 stop_signal == SIGINT ? "interrupted" : "stopped by a signal",
                 static_cast<long long>(t->step()));
    test_pause_before_final_save();
  }
  if (t->step() > first && held_out_step != t->step()) evaluate();
  save(*t, a);
  if (const int64_t steps = t->step() - first; steps > 0)
    std::fprintf(stderr,
                 "qkv train: %lld steps (%lld..%lld), %.0f tokens/s over the training steps, "
                 "held-out loss %.4f nats per byte at step %lld, wall time %s\n",
                 static_cast<long long>(steps), static_cast<long long>(first),
                 static_cast<long long>(t->step()),
                 static_cast<double>(steps * t->tokens_per_step()) / train_seconds, held_out,
                 static_cast<long long>(held_out_step), duration(seconds_since(start)).c_str());
  std::fprintf(stderr,
               "qkv train: checkpoint %s (step %lld; continue with --resume), loss curve %s\n",
               a.checkpoint.c_str(), static_cast<long long>(t->step()), a.plot.c_str());
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<train_args>();
  train::train_config& c = a->config;
  CLI::App* cmd = app.add_subcommand("train", "Train a byte-level GPT on a text corpus");
  cmd->add_option("--corpus", a->corpus, "text file (default: /usr/share/games/fortunes/*)");
  // Numbers are parsed by one rule (numbers.hpp); the model's and the schedule's ranges are
  // train_config_violation's, which checks a checkpoint's values the same way.
  add_int(cmd, "--layers", c.model.layers, {}, "transformer blocks L");
  add_int(cmd, "--heads", c.model.heads, {}, "attention heads H");
  add_int(cmd, "--embed", c.model.embed, {}, "model width E");
  add_int(cmd, "--context", c.model.context, {}, "context length T");
  add_real(cmd, "--dropout", c.model.dropout, {}, "residual dropout p");
  add_real(cmd, "--attention-dropout", c.model.attention_dropout, {},
           "dropout p on the attention weights");
  add_int(cmd, "--batch", c.batch, {}, "sequences per step B");
  add_int(cmd, "--steps", c.steps, {}, "total steps (the schedule's length)");
  add_real(cmd, "--lr", c.lr, {}, "peak learning rate");
  add_real(cmd, "--min-lr", c.min_lr, {}, "final learning rate");
  add_int(cmd, "--warmup", c.warmup, {}, "warm-up steps");
  add_real(cmd, "--weight-decay", c.weight_decay, {}, "AdamW weight decay");
  add_real(cmd, "--clip", c.clip, {}, "gradient-norm clipping");
  add_uint64(cmd, "--seed", c.seed, "seed of the initialisation, batches and dropout");
  add_int(cmd, "--eval-batches", c.eval_batches, {}, "held-out batches per evaluation");
  add_int(cmd, "--eval-every", a->eval_every, {.lo = 1}, "steps between evaluations");
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint file (.safetensors)")
      ->capture_default_str();
  add_int(cmd, "--checkpoint-every", a->checkpoint_every, {.lo = 1}, "steps between checkpoints");
  cmd->add_flag("--resume", a->resume,
                "continue the run saved in --checkpoint (--steps, --lr, --min-lr, --warmup, "
                "--weight-decay and --clip may change)");
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing --checkpoint with a new run");
  add_int(cmd, "--stop-at", a->stop_at, {.lo = 0}, "stop (with a checkpoint) after this step");
  add_real(cmd, "--minutes", a->minutes, {.lo = 0},
           "stop (with a checkpoint) before this much wall time (0: no limit)");
  cmd->add_option("--plot", a->plot,
                  "loss curve (.svg; default: beside the checkpoint, NAME-loss.svg)");
  add_int(cmd, "--progress-every", a->progress_every, {.lo = 1},
          "steps between progress lines when not a terminal");
  add_threads(cmd, a->threads);
  cmd->callback([a, cmd] {
    for (const CLI::Option* o : cmd->get_options())
      if (o->count() > 0) a->given.push_back(o->get_name());
    run_train(*a);
  });
}

}  // namespace qkv::cli
