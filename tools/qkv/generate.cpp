// `qkv generate`: samples text from a `qkv train` checkpoint, one character at a time through the
// model's KV cache, with temperature and top-k sampling and a seed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "commands.hpp"
#include "numbers.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/counter_rng.hpp"
#include "qkv/train/trainer.hpp"

namespace qkv::cli {
namespace {

struct generate_args {
  std::string checkpoint, prompt = "Write a poem";
  int64_t tokens = 300, top_k = 0;
  double temperature = 0.8;
  uint64_t seed = 1;
  int threads = 0;
};

// Draws from softmax(logits / temperature) restricted to the top_k largest (0: all); temperature
// 0 is greedy. u is uniform in [0, 1).
int32_t sample(std::vector<float> logits, double temperature, int64_t top_k, float u) {
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  if (temperature == 0.0) return order[0];
  const size_t k = top_k > 0 ? std::min(order.size(), static_cast<size_t>(top_k)) : order.size();
  std::vector<double> p(k);
  for (size_t i = 0; i < k; ++i)
    p[i] = std::exp((logits[order[i]] - logits[order[0]]) / temperature);
  double target = u * std::accumulate(p.begin(), p.end(), 0.0);
  for (size_t i = 0; i < k; ++i)
    if ((target -= p[i]) < 0) return order[i];
  return order[k - 1];
}

void run_generate(const generate_args& a) {
  train::trained_model m;
  try {
    m = train::load_trained_model(a.checkpoint);
  } catch (const error& e) {
    throw error(std::string("--checkpoint: ") + e.what());
  }
  std::vector<int32_t> ids = m.vocab.encode(a.prompt, "--prompt");
  if (ids.empty()) throw error("--prompt: must not be empty");
  const int64_t context = m.model->config().context;
  std::fputs(a.prompt.c_str(), stdout);
  nn::gpt_kv_cache cache;
  std::vector<float> logits;
  size_t fed = 0;  // ids[0, fed) are in the cache
  for (int64_t n = 0; n < a.tokens; ++n) {
    if (static_cast<int64_t>(ids.size() - fed) + cache.length() > context) {
      // The window is full: restart the cache on the last half context of the text.
      cache = {};
      fed = ids.size() -
            static_cast<size_t>(std::min<int64_t>(context / 2, static_cast<int64_t>(ids.size())));
    }
    while (fed < ids.size()) logits = m.model->decode_step(ids[fed++], cache, a.threads);
    const int32_t next = sample(logits, a.temperature, a.top_k,
                                nn::random_uniform(a.seed, 0, static_cast<uint64_t>(n)));
    ids.push_back(next);
    std::fputs(m.vocab.decode({next}).c_str(), stdout);
    std::fflush(stdout);
  }
  std::fputc('\n', stdout);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<generate_args>();
  CLI::App* cmd = app.add_subcommand("generate", "Sample text from a `qkv train` checkpoint");
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint written by qkv train")->required();
  cmd->add_option("--prompt", a->prompt, "text to continue")->capture_default_str();
  add_int(cmd, "--tokens", a->tokens, {.lo = 0}, "characters to generate");
  add_real(cmd, "--temperature", a->temperature, {.lo = 0}, "softmax temperature (0: greedy)");
  add_int(cmd, "--top-k", a->top_k, {.lo = 0}, "sample among the k likeliest (0: all)");
  add_uint64(cmd, "--seed", a->seed, "sampling seed, in [0, 2^64)");
  add_threads(cmd, a->threads);
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace qkv::cli
