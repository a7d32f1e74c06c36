// AdamW against its equations evaluated in double, gradient clipping, the warm-up + cosine
// schedule, dropout masks and the counter-based generator they draw from.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "qkv/error.hpp"
#include "qkv/nn/adamw.hpp"
#include "qkv/nn/counter_rng.hpp"
#include "qkv/nn/dropout.hpp"
#include "qkv/nn/lr_schedule.hpp"

namespace qkv::nn {
namespace {

TEST(AdamW, MatchesTheAlgorithmInDouble) {
  tensor w({2}, std::vector<float>{1.0f, -2.0f}), g({2}), b({1}, 0.5f), gb({1});
  adamw opt({{"w", &w, &g, true}, {"b", &b, &gb, false}}, {0.9, 0.999, 1e-8, 0.1});
  double theta[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0}, bias = 0.5, mb = 0, vb = 0;
  const double grads[3][2] = {{0.5, -1.0}, {0.25, 3.0}, {-0.75, 0.0}};
  for (int t = 1; t <= 3; ++t) {
    const double lr = 0.01 * t;
    g[0] = static_cast<float>(grads[t - 1][0]);
    g[1] = static_cast<float>(grads[t - 1][1]);
    gb[0] = 1.0f;
    opt.step(lr);
    const double c1 = 1 - std::pow(0.9, t), c2 = 1 - std::pow(0.999, t);
    for (int i = 0; i < 2; ++i) {
      theta[i] *= 1 - lr * 0.1;
      m[i] = 0.9 * m[i] + 0.1 * grads[t - 1][i];
      v[i] = 0.999 * v[i] + 0.001 * grads[t - 1][i] * grads[t - 1][i];
      theta[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + 1e-8);
      EXPECT_NEAR(w[i], theta[i], 1e-6) << "step " << t;
    }
    mb = 0.9 * mb + 0.1;  // no decay on b
    vb = 0.999 * vb + 0.001;
    bias -= lr * (mb / c1) / (std::sqrt(vb / c2) + 1e-8);
    EXPECT_NEAR(b[0], bias, 1e-6);
  }
  state_dict saved;
  opt.save(saved);
  EXPECT_EQ(saved.at("step")[0], 3.0f);
  adamw restored({{"w", &w, &g, true}, {"b", &b, &gb, false}});
  state_dict_reader reader(saved, "");
  restored.load(reader);
  reader.finish();
  EXPECT_EQ(restored.steps(), 3);
}

TEST(ClipGradNorm, ScalesOnlyAboveTheLimit) {
  tensor w({2}), g({2}, std::vector<float>{3.0f, 4.0f});
  const std::vector<parameter> params{{"w", &w, &g, true}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 10.0), 5.0);
  EXPECT_EQ(g[0], 3.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 1.0), 5.0);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 1.0, 1e-6);
  EXPECT_NEAR(g[0] / g[1], 0.75, 1e-6);
  zero_grads(params);
  EXPECT_EQ(g[1], 0.0f);
}

TEST(LrSchedule, WarmupThenCosine) {
  const lr_schedule s{1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);  // halfway: cos(π/2) = 0
  EXPECT_NEAR(s.at(85), 0.1 + 0.9 * 0.5 * (1 + std::cos(0.75 * std::numbers::pi)), 1e-12);
  EXPECT_DOUBLE_EQ(s.at(110), 0.1);
  EXPECT_DOUBLE_EQ(s.at(500), 0.1);
}

TEST(Dropout, KeepsAboutOneMinusPScaledAndIsReproducible) {
  const tensor m = dropout_mask({100, 100}, 0.3f, 42, 7);
  int64_t kept = 0;
  for (const float x : m.values()) {
    EXPECT_TRUE(x == 0.0f || x == 1.0f / 0.7f);
    kept += x != 0.0f;
  }
  EXPECT_NEAR(static_cast<double>(kept) / 1e4, 0.7, 0.02);
  const tensor again = dropout_mask({100, 100}, 0.3f, 42, 7),
               other = dropout_mask({100, 100}, 0.3f, 42, 8);
  int64_t same = 0;
  for (int64_t i = 0; i < m.numel(); ++i) {
    EXPECT_EQ(m[i], again[i]);
    same += m[i] == other[i];
  }
  EXPECT_LT(same, 9000);  // another stream gives another mask
  const tensor ones = dropout_mask({5}, 0.0f, 1, 1);
  for (const float x : ones.values()) EXPECT_EQ(x, 1.0f);
  EXPECT_THROW(dropout_mask({5}, 1.0f, 1, 1), error);
  tensor x({2}, std::vector<float>{2.0f, 3.0f});
  apply_dropout(x, tensor({2}, std::vector<float>{0.0f, 2.0f}));
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 6.0f);
}

TEST(CounterRng, UniformMeanAndRange) {
  double sum = 0;
  for (uint64_t i = 0; i < 100000; ++i) {
    const float u = random_uniform(3, 1, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / 1e5, 0.5, 0.005);
  EXPECT_NE(random_bits(1, 2, 3), random_bits(1, 3, 2));
}

}  // namespace
}  // namespace qkv::nn
