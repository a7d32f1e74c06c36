// `qkv generate`: samples text from a `qkv train` checkpoint, one byte at a time through the
// model's KV cache, with temperature and top-k sampling and a seed; or from a GPT-2 folder
// (--model, generate_model.cpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "commands.hpp"
#include "generate_model.hpp"
#include "inputs.hpp"
#include "numbers.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/counter_rng.hpp"
#include "qkv/train/trainer.hpp"
#include "sampling.hpp"

namespace qkv::cli {
namespace {

struct generate_args {
  std::string checkpoint, model, prompt;
  int64_t tokens = 300, top_k = 0;
  double temperature = 0.8;
  uint64_t seed = 1;
  int threads = 0;
  dtype kv_dtype = dtype::f32;
};

// Without a prompt a checkpoint's text starts as after a line break: the model reads '\n' first
// (a space, or the vocabulary's first byte, when the corpus had no line break).
int32_t start_of_text(const train::vocabulary& vocab) {
  for (const uint8_t byte : {uint8_t{'\n'}, uint8_t{' '}})
    if (const int32_t id = vocab.id_of(byte); id >= 0) return id;
  return 0;
}

void run_generate(const generate_args& a) {
  if (a.checkpoint.empty() == a.model.empty())
    throw error("--checkpoint or --model: give exactly one");
  if (!a.model.empty())
    return run_generate_model(a.model, a.prompt.empty() ? "Write a poem" : a.prompt,
                              {a.tokens, a.top_k, a.temperature, a.seed, a.threads, a.kv_dtype});
  train::trained_model m =
      read_for_flag("--checkpoint", [&] { return train::load_trained_model(a.checkpoint); });
  std::vector<int32_t> ids = m.vocab.encode(a.prompt, "--prompt");
  if (ids.empty()) ids.push_back(start_of_text(m.vocab));  // fed, not printed
  std::fputs(a.prompt.c_str(), stdout);
  generate_tokens<nn::gpt_kv_cache>(
      ids, m.model->config().context,
      {a.tokens, a.top_k, a.temperature, a.seed, a.threads, a.kv_dtype},
      [&](int32_t id, nn::gpt_kv_cache& cache) {
        return m.model->decode_step(id, cache, a.threads);
      },
      [&](int32_t id) {
        std::fputs(m.vocab.decode({id}).c_str(), stdout);
        std::fflush(stdout);
      });
  std::fputc('\n', stdout);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<generate_args>();
  CLI::App* cmd = app.add_subcommand(
      "generate", "Sample text from a `qkv train` checkpoint or a GPT-2 model folder");
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint written by qkv train");
  cmd->add_option("--model", a->model, "Hugging Face GPT-2 folder (instead of --checkpoint)");
  cmd->add_option("--prompt", a->prompt,
                  "text to continue (default: for a checkpoint none, the text starts as after a "
                  "line break; for --model \"Write a poem\")");
  add_int(cmd, "--tokens", a->tokens, {.lo = 0}, "tokens to generate (bytes for a checkpoint)");
  add_real(cmd, "--temperature", a->temperature, {.lo = 0}, "softmax temperature (0: greedy)");
  add_int(cmd, "--top-k", a->top_k, {.lo = 0}, "sample among the k likeliest (0: all)");
  add_uint64(cmd, "--seed", a->seed, "sampling seed, in [0, 2^64)");
  add_threads(cmd, a->threads);
  add_dtype(cmd, "--kv-dtype", a->kv_dtype,
            "what the KV cache stores keys and values as: f32, f16 or bf16 (rounded to nearest "
            "even; half the memory)");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace qkv::cli
