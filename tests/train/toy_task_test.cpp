// A task only attention can solve: copy a random sequence. Input "s_1 … s_n | s_1 … s_n"; after
// the separator, position t must output s_{t−n}, a token chosen at random per sequence, so no
// per-position rule works: the learned W_Q and W_K have to make each query find the key n
// places back. The GPT (trained with cross-entropy, AdamW, clipping and the schedule) must reach
// >= 99% token accuracy on the copied half of fresh sequences within a fixed number of steps.
#include <cblas.h>
#include <gtest/gtest.h>

#include <random>

#include "qkv/nn/adamw.hpp"
#include "qkv/nn/cross_entropy.hpp"
#include "qkv/nn/gpt.hpp"
#include "qkv/nn/lr_schedule.hpp"

namespace qkv::nn {
namespace {

constexpr int64_t n = 8, symbols = 8, T = 2 * n;  // T = inputs: s_1..s_n, |, s_1..s_{n-1}
constexpr int32_t separator = symbols;

struct copy_batch {
  std::vector<int32_t> x, y;
  std::vector<bool> scored;  // the targets after the separator
};

copy_batch make_batch(int64_t B, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> symbol(0, symbols - 1);
  copy_batch b;
  for (int64_t s = 0; s < B; ++s) {
    std::vector<int32_t> seq;
    for (int64_t i = 0; i < n; ++i) seq.push_back(symbol(rng));
    seq.push_back(separator);
    for (int64_t i = 0; i < n; ++i) seq.push_back(seq[static_cast<size_t>(i)]);
    for (int64_t t = 0; t < T; ++t) {
      b.x.push_back(seq[static_cast<size_t>(t)]);
      b.y.push_back(seq[static_cast<size_t>(t + 1)]);
      b.scored.push_back(t >= n);
    }
  }
  return b;
}

TEST(ToyTask, CopyingASequenceIsLearnedByAttention) {
  // One thread: these matrices are tiny, and threaded sgemm on them only adds synchronisation.
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  std::mt19937_64 rng(2024);
  gpt model({.vocab = symbols + 1, .context = T, .embed = 32, .heads = 2, .layers = 2}, rng);
  adamw opt(model.parameters(), {0.9, 0.98, 1e-8, 0.01});
  const int64_t B = 32, steps = 600;
  const lr_schedule schedule{3e-3, 3e-4, 50, steps};
  const gpt_step step{.training = true, .run = {.threads = 1}};
  for (int64_t s = 0; s < steps; ++s) {
    const copy_batch b = make_batch(B, rng);
    std::shared_ptr<gpt_activations> act;
    const tensor logits = model.forward(b.x, B, T, step, &act);
    // Only the copied half is predictable; the loss covers it alone (other rows' gradient 0).
    cross_entropy_result ce = cross_entropy(logits, b.y);
    for (int64_t r = 0; r < B * T; ++r)
      if (!b.scored[static_cast<size_t>(r)])
        for (int64_t v = 0; v < symbols + 1; ++v) ce.dlogits[r * (symbols + 1) + v] = 0.0f;
    model.zero_grads();
    model.backward(*act, ce.dlogits);
    clip_grad_norm(model.parameters(), 1.0);
    opt.step(schedule.at(s));
  }
  const copy_batch test = make_batch(256, rng);
  const tensor logits = model.forward(test.x, 256, T, {.run = {.threads = 1}});
  int64_t correct = 0, total = 0;
  for (int64_t r = 0; r < 256 * T; ++r) {
    if (!test.scored[static_cast<size_t>(r)]) continue;
    int64_t best = 0;
    for (int64_t v = 1; v < symbols + 1; ++v)
      if (logits[r * (symbols + 1) + v] > logits[r * (symbols + 1) + best]) best = v;
    correct += best == test.y[static_cast<size_t>(r)];
    ++total;
  }
  openblas_set_num_threads(blas_threads);
  EXPECT_GE(static_cast<double>(correct) / static_cast<double>(total), 0.99)
      << correct << " of " << total << " copied tokens right";
}

}  // namespace
}  // namespace qkv::nn
