// `qkv generate`: samples text from a `qkv train` checkpoint, one byte at a time through the
// model's KV cache, with temperature and top-k sampling and a seed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "commands.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/counter_rng.hpp"
#include "qkv/train/trainer.hpp"

namespace qkv::cli {
namespace {

struct generate_args {
  std::string checkpoint, prompt;
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

// Without a prompt the text starts as after a line break: the model reads '\n' first (a space,
// or the vocabulary's first byte, when the corpus had no line break).
int32_t start_of_text(const train::vocabulary& vocab) {
  for (const uint8_t byte : {uint8_t{'\n'}, uint8_t{' '}})
    if (const int32_t id = vocab.id_of(byte); id >= 0) return id;
  return 0;
}

void run_generate(const generate_args& a) {
  if (!(a.temperature >= 0.0 && std::isfinite(a.temperature)))
    throw error("--temperature: must be finite and >= 0, got " + std::to_string(a.temperature));
  if (a.tokens < 0 || a.top_k < 0) throw error("--tokens/--top-k: must be >= 0");
  train::trained_model m;
  try {
    m = train::load_trained_model(a.checkpoint);
  } catch (const error& e) {
    throw error(std::string("--checkpoint: ") + e.what());
  }
  std::vector<int32_t> ids = m.vocab.encode(a.prompt, "--prompt");
  if (ids.empty()) ids.push_back(start_of_text(m.vocab));  // fed, not printed
  const int64_t context = m.model->config().context;
  std::fputs(a.prompt.c_str(), stdout);
  nn::gpt_kv_cache cache;
  std::vector<float> logits;
  size_t fed = 0;  // ids[0, fed) are in the cache
  for (int64_t n = 0; n < a.tokens; ++n) {
    if (static_cast<int64_t>(ids.size() - fed) + cache.length() > context) {
      // The window is full: restart the cache on the last half context of the text (at least
      // the last byte, whose prediction comes next).
      cache = {};
      fed =
          ids.size() - std::min(static_cast<size_t>(std::max<int64_t>(1, context / 2)), ids.size());
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
  cmd->add_option("--prompt", a->prompt,
                  "text to continue (default: none, the text starts as after a line break)");
  cmd->add_option("--tokens", a->tokens, "characters to generate")->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "softmax temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", a->top_k, "sample among the k likeliest (0: all)")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "sampling seed")->capture_default_str();
  cmd->add_option("--threads", a->threads, "threads (0: the default rule)");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace qkv::cli
