// The model-independent views: words from token texts, weights between words, attention rollout
// against an independent computation, the JSON of a map (tokens as their own text, no non-finite
// number), and the summary of a map without words.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "qkv/error.hpp"
#include "qkv/explain/attention_map.hpp"
#include "qkv/explain/render_json.hpp"
#include "qkv/explain/render_svg.hpp"
#include "qkv/explain/render_text.hpp"

namespace qkv {
namespace {

using explain::matrix;

std::vector<explain::word_span> words_of(std::vector<std::string> tokens) {
  return explain::group_words(tokens);
}

TEST(ExplainWords, CharactersAndSubwordTokensGroupIntoWords) {
  std::vector<std::string> characters;
  for (const char c : std::string("jane visits africa")) characters.emplace_back(1, c);
  const auto chars = words_of(characters);
  ASSERT_EQ(chars.size(), 3u);
  EXPECT_EQ(chars[1].text, "visits");
  EXPECT_EQ(chars[1].first, 5);
  EXPECT_EQ(chars[1].last, 11);
  // GPT-2's tokens carry their leading space: " visits" starts a word, "ane" continues one, a
  // whitespace-only token belongs to none, punctuation joins the word it touches.
  const auto subwords = words_of({"j", "ane", " visits", " af", "rica", "!", " ", "\n", "x"});
  ASSERT_EQ(subwords.size(), 4u);
  const std::vector<std::tuple<std::string, int64_t, int64_t>> expected = {
      {"jane", 0, 2}, {"visits", 2, 3}, {"africa!", 3, 6}, {"x", 8, 9}};
  for (size_t w = 0; w < expected.size(); ++w) {
    EXPECT_EQ(subwords[w].text, std::get<0>(expected[w]));
    EXPECT_EQ(subwords[w].first, std::get<1>(expected[w]));
    EXPECT_EQ(subwords[w].last, std::get<2>(expected[w]));
  }
}

TEST(ExplainWords, AggregatesByHand) {
  // "ab c": a query word's row is the mean over its characters of the sum over the key word's
  // characters; the space (index 2) belongs to no word.
  const matrix p{4,
                 4,
                 {0.5, 0.5, 0.0, 0.0,  //
                  0.2, 0.6, 0.2, 0.0,  //
                  0.1, 0.1, 0.8, 0.0,  //
                  0.1, 0.2, 0.2, 0.5}};
  const matrix t = explain::aggregate_words(p, words_of({"a", "b", " ", "c"}));
  EXPECT_DOUBLE_EQ(t(0, 0), (0.5 + 0.5 + 0.2 + 0.6) / 2);  // 0.9
  EXPECT_DOUBLE_EQ(t(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(t(1, 0), 0.1 + 0.2);
  EXPECT_DOUBLE_EQ(t(1, 1), 0.5);
}

TEST(ExplainRollout, TwoTokensByHand) {
  // P = [[1, 0], [0.5, 0.5]]: A = rows_normalised(P + I) = [[1, 0], [0.25, 0.75]]; two such
  // layers give A·A = [[1, 0], [0.25 + 0.75·0.25, 0.75²]] = [[1, 0], [0.4375, 0.5625]].
  const matrix p{2, 2, {1.0, 0.0, 0.5, 0.5}};
  const matrix one = explain::attention_rollout({{p}});
  EXPECT_DOUBLE_EQ(one(1, 0), 0.25);
  EXPECT_DOUBLE_EQ(one(1, 1), 0.75);
  const matrix two = explain::attention_rollout({{p}, {p, p}});
  EXPECT_DOUBLE_EQ(two(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(two(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(two(1, 0), 0.4375);
  EXPECT_DOUBLE_EQ(two(1, 1), 0.5625);
}

// Random row-stochastic causal weights, 3 layers of 4 heads, T = 7: the rollout against its
// definition written another way. Rows of the head average sum to 1, so rows_normalised(P + I)
// = (P + I)/2; and the product is accumulated from the first layer up, R_l = A_l·R_{l-1}, with
// each row of R_l computed as a combination of R_{l-1}'s rows.
TEST(ExplainRollout, MatchesAnIndependentComputation) {
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const int64_t L = 3, H = 4, T = 7;
  std::vector<std::vector<matrix>> layers(L);
  for (auto& heads : layers)
    for (int64_t h = 0; h < H; ++h) {
      matrix p{T, T, std::vector<double>(T * T, 0.0)};
      for (int64_t i = 0; i < T; ++i) {
        double sum = 0;
        for (int64_t j = 0; j <= i; ++j) sum += p.values[i * T + j] = u(rng);
        for (int64_t j = 0; j <= i; ++j) p.values[i * T + j] /= sum;
      }
      heads.push_back(p);
    }
  std::vector<std::vector<double>> r(T, std::vector<double>(T, 0.0));
  for (int64_t i = 0; i < T; ++i) r[i][i] = 1.0;
  for (const auto& heads : layers) {
    std::vector<std::vector<double>> next(T, std::vector<double>(T, 0.0));
    for (int64_t i = 0; i < T; ++i)
      for (int64_t k = 0; k < T; ++k) {
        double mean = 0;
        for (const matrix& p : heads) mean += p(i, k) / H;
        const double a = 0.5 * mean + (i == k ? 0.5 : 0.0);
        for (int64_t j = 0; j < T; ++j) next[i][j] += a * r[k][j];
      }
    r = next;
  }
  const matrix rollout = explain::attention_rollout(layers);
  for (int64_t i = 0; i < T; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < T; ++j) {
      EXPECT_NEAR(rollout(i, j), r[i][j], 1e-12) << i << ", " << j;
      sum += rollout(i, j);
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
}

// A map of 5 byte tokens, one of them cut out of a two-byte character.
explain::attention_map byte_map() {
  explain::attention_map map;
  map.title = "bytes";
  map.tokens = {"caf", "\xC3", "\xA9", " ", "\"q\"\\"};
  map.ids = {1, 2, 3, 4, 5};
  map.causal = true;
  map.model_layers = 1;
  map.model_heads = 1;
  matrix p{5, 5, std::vector<double>(25, 0.0)};
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j <= i; ++j) p.values[i * 5 + j] = 1.0 / double(i + 1);
  explain::head_trace steps;
  steps.weights = p;
  map.heads.push_back({0, 0, steps});
  map.rollout = explain::attention_rollout({{p}});
  return map;
}

TEST(ExplainJson, TokensAreTheirOwnTextAndNotDisplayLabels) {
  const nlohmann::json j = nlohmann::json::parse(explain::render_json(byte_map()));
  // Valid UTF-8 as it is; a byte that is no character alone as U+FFFD (ids keep the token).
  EXPECT_EQ(j["tokens"], nlohmann::json({"caf", "\uFFFD", "\uFFFD", " ", "\"q\"\\"}));
  EXPECT_EQ(j["ids"], nlohmann::json({1, 2, 3, 4, 5}));
  EXPECT_EQ(j["heads"][0]["weights"][1][1], 0.5);
  EXPECT_FALSE(j["heads"][0].contains("steps"));
  EXPECT_EQ(j["rollout"]["weights"].size(), 5u);
  EXPECT_NE(j["rollout"]["rule"].get<std::string>().find("add the identity"), std::string::npos);
}

TEST(ExplainJson, ANonFiniteValueIsRefusedNotWrittenAsNull) {
  explain::attention_map map = byte_map();
  map.heads[0].steps.weights.values[0] = INFINITY;
  EXPECT_THROW(explain::render_json(map), error);
}

TEST(ExplainSummary, WithoutWordsEachTokensMostAttendedToken) {
  explain::attention_map map = byte_map();
  const std::string text = explain::render_summary(map);
  // Display labels here: the space as ␣, the lone bytes as \xNN.
  EXPECT_NE(text.find("5 tokens; the model has 1 layer × 1 head, causal"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\\xC3"), std::string::npos) << text;
  EXPECT_NE(text.find("\u2423"), std::string::npos) << text;
  EXPECT_NE(text.find("  caf      caf 1.00"), std::string::npos) << text;
}

}  // namespace
}  // namespace qkv
