// `qkv explain --format json` (docs/contracts.md section 5) on random matrices of awkward sizes,
// against an independent float64 computation of every step; and the multi-head layout of
// render_json.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "qkv/explain/render_json.hpp"
#include "qkv/io/npy.hpp"
#include "support/cli.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using rows_t = std::vector<std::vector<double>>;

rows_t as_rows(const tensor& t) {
  rows_t r(static_cast<size_t>(t.size(0)), std::vector<double>(static_cast<size_t>(t.size(1))));
  for (int64_t i = 0; i < t.size(0); ++i)
    for (int64_t j = 0; j < t.size(1); ++j) r[i][j] = t[i * t.size(1) + j];
  return r;
}

rows_t times_transposed(const rows_t& a, const rows_t& b) {  // a·b^T
  rows_t c(a.size(), std::vector<double>(b.size(), 0.0));
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < b.size(); ++j)
      for (size_t k = 0; k < a[i].size(); ++k) c[i][j] += a[i][k] * b[j][k];
  return c;
}

// max |actual - expected| <= 1e-5·max(1, max|expected|) (the tolerance of float32 inputs).
void expect_rows(const nlohmann::json& actual, const rows_t& expected, const char* step) {
  ASSERT_EQ(actual.size(), expected.size()) << step;
  double worst = 0, largest = 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(actual[i].size(), expected[i].size()) << step;
    for (size_t j = 0; j < expected[i].size(); ++j) {
      worst = std::max(worst, std::abs(actual[i][j].get<double>() - expected[i][j]));
      largest = std::max(largest, std::abs(expected[i][j]));
    }
  }
  EXPECT_LE(worst, 1e-5 * largest) << step;
}

void check_random_case(bool causal) {
  std::mt19937_64 rng(causal ? 7 : 11);
  const int64_t N = 5, E = 7, dk = 3, dv = 4;
  const tensor x = testing::random_tensor({N, E}, rng), wq = testing::random_tensor({dk, E}, rng),
               wk = testing::random_tensor({dk, E}, rng), wv = testing::random_tensor({dv, E}, rng);
  testing::temp_dir dir;
  io::write_npy(dir.file("x.npy"), x);
  io::write_npy(dir.file("wq.npy"), wq);
  io::write_npy(dir.file("wk.npy"), wk);
  io::write_npy(dir.file("wv.npy"), wv);
  std::vector<std::string> args = {"explain",
                                   "--x",
                                   dir.file("x.npy"),
                                   "--wq",
                                   dir.file("wq.npy"),
                                   "--wk",
                                   dir.file("wk.npy"),
                                   "--wv",
                                   dir.file("wv.npy"),
                                   "--tokens",
                                   "the cat sat on mats",
                                   "--format",
                                   "json"};
  if (causal) args.push_back("--causal");
  const testing::cli_result r = testing::run_qkv(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);

  // The independent computation, all in float64.
  const rows_t X = as_rows(x), Q = times_transposed(X, as_rows(wq)),
               K = times_transposed(X, as_rows(wk)), V = times_transposed(X, as_rows(wv));
  const rows_t S = times_transposed(Q, K);
  const double scale = 1.0 / std::sqrt(static_cast<double>(dk));
  rows_t scaled = S, P = S, O(N, std::vector<double>(dv, 0.0));
  std::vector<std::vector<bool>> masked(N, std::vector<bool>(N));
  for (int64_t i = 0; i < N; ++i) {
    double sum = 0;
    for (int64_t k = 0; k < N; ++k) {
      scaled[i][k] = scale * S[i][k];
      masked[i][k] = causal && k > i;
      sum += masked[i][k] ? 0.0 : std::exp(scaled[i][k]);
    }
    for (int64_t k = 0; k < N; ++k) P[i][k] = masked[i][k] ? 0.0 : std::exp(scaled[i][k]) / sum;
    for (int64_t c = 0; c < dv; ++c)
      for (int64_t k = 0; k < N; ++k) O[i][c] += P[i][k] * V[k][c];
  }

  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["tokens"], nlohmann::json({"the", "cat", "sat", "on", "mats"}));
  EXPECT_NEAR(j["scale"].get<double>(), scale, 1e-7);
  EXPECT_EQ(j["causal"].get<bool>(), causal);
  ASSERT_EQ(j["heads"].size(), 1u);
  const nlohmann::json& steps = j["heads"][0]["steps"];
  expect_rows(j["X"], X, "X");
  expect_rows(steps["Q"], Q, "Q");
  expect_rows(steps["K"], K, "K");
  expect_rows(steps["V"], V, "V");
  expect_rows(steps["scores"], S, "scores");
  expect_rows(steps["scaled"], scaled, "scaled");
  EXPECT_EQ(steps["masked"], nlohmann::json(masked));
  expect_rows(j["heads"][0]["weights"], P, "weights");
  expect_rows(steps["output"], O, "output");
}

TEST(ExplainJson, RandomMatricesMatchAnIndependentComputation) {
  check_random_case(false);
}
TEST(ExplainJson, CausalRandomMatricesMatchAnIndependentComputation) {
  check_random_case(true);
}

TEST(ExplainJson, SeveralHeadsAreListedUnderHeadsAndNothingElse) {
  std::mt19937_64 rng(3);
  const tensor q = testing::random_tensor({2, 4, 3}, rng),
               k = testing::random_tensor({2, 4, 3}, rng),
               v = testing::random_tensor({2, 4, 2}, rng);
  const nlohmann::json j =
      nlohmann::json::parse(explain::render_json(explain::trace_attention(q, k, v, {}, true)));
  EXPECT_EQ(j["tokens"], nlohmann::json({"t0", "t1", "t2", "t3"}));
  ASSERT_EQ(j["heads"].size(), 2u);
  // One place for each number: no top-level copy of head 0, no encodings when Q, K, V are given.
  for (const char* key : {"steps", "summary", "X", "rollout", "words"})
    EXPECT_FALSE(j.contains(key)) << key;
  EXPECT_EQ(j["heads"][1]["head"], 1);
  // Head 1's Q is the second slice of q.
  EXPECT_EQ(j["heads"][1]["steps"]["Q"][0][0].get<double>(), q.at({1, 0, 0}));
  for (const auto& head : j["heads"]) {
    for (const auto& row : head["weights"]) {
      double sum = 0;
      for (const auto& w : row) sum += w.get<double>();
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
    // Each query's most attended key, by index, with the weight (the word "weight" throughout).
    for (const auto& m : head["most_attended"]) {
      const size_t i = m["query"], key = m["key"];
      EXPECT_EQ(m["weight"], head["weights"][i][key]);
      for (const auto& w : head["weights"][i])
        EXPECT_LE(w.get<double>(), m["weight"].get<double>());
    }
  }
  const std::string text = j.dump();
  for (const char* absent : {"probability", "null", "Infinity"})
    EXPECT_EQ(text.find(absent), std::string::npos) << absent;
}

}  // namespace
}  // namespace qkv
