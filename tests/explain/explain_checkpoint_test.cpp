// `qkv explain --checkpoint C --text T` on a tiny untrained GPT saved by the trainer: the per-head
// weights against an independent float64 softmax of the model's own Q·K^T, the word table's
// aggregation by hand, and the error cases (exit 2, no partial output files).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "qkv/explain/checkpoint_trace.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/train/trainer.hpp"
#include "support/cli.hpp"

namespace qkv {
namespace {

using rows_t = std::vector<std::vector<double>>;

constexpr const char* sentence = "jane visits africa";

// A 2-layer, 2-head model (E = 16, context 32) initialised from a fixed seed, saved as a
// checkpoint: no training step is needed to have distinct heads.
class ExplainCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    train::train_config c;
    c.model = {0, 32, 16, 2, 2, 0.0f};
    c.seed = 5;
    std::string corpus;
    for (int i = 0; i < 40; ++i) corpus += "jane visits africa. jim sees tea! ";
    train::trainer(c, corpus).save(checkpoint());
  }
  std::string checkpoint() const { return dir.file("model.safetensors"); }
  testing::temp_dir dir;
};

// P = softmax_rows(Q·K^T / sqrt(d)) with key j hidden from query i when j > i, in float64 from
// the model's own projections of head h: independent of the reference kernel.
rows_t causal_weights(const tensor& q, const tensor& k, int64_t h) {
  const int64_t T = q.size(1), d = q.size(2);
  rows_t p(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(T), 0.0));
  for (int64_t i = 0; i < T; ++i) {
    std::vector<double> s(static_cast<size_t>(i + 1));
    double top = -INFINITY, sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
      for (int64_t c = 0; c < d; ++c)
        s[j] += double(q[(h * T + i) * d + c]) * k[(h * T + j) * d + c];
      s[j] /= std::sqrt(double(d));
      top = std::max(top, s[j]);
    }
    for (int64_t j = 0; j <= i; ++j) sum += std::exp(s[j] - top);
    for (int64_t j = 0; j <= i; ++j) p[i][j] = std::exp(s[j] - top) / sum;
  }
  return p;
}

// Head weights from the JSON: "steps" for one head, "heads"[h]."steps" for several; masked
// entries (null) read as 0.
rows_t json_weights(const nlohmann::json& steps) {
  rows_t r;
  for (const auto& row : steps.at("weights")) {
    r.emplace_back();
    for (const auto& v : row) r.back().push_back(v.is_null() ? 0.0 : v.get<double>());
  }
  return r;
}

// max|diff| <= 1e-5·max(1, max|expected|) (DESIGN section 3), and every row sums to 1.
void expect_weights(const rows_t& actual, const rows_t& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  double worst = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(actual[i].size(), expected[i].size());
    double sum = 0;
    for (size_t j = 0; j < expected[i].size(); ++j) {
      worst = std::max(worst, std::abs(actual[i][j] - expected[i][j]));
      sum += actual[i][j];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << i;
  }
  EXPECT_LE(worst, 1e-5);
}

nn::gpt_attention_heads model_heads(const std::string& path, int64_t layer) {
  const train::trained_model m = train::load_trained_model(path);
  return m.model->attention_heads(m.vocab.encode(sentence, "text"), layer);
}

TEST_F(ExplainCheckpoint, every_head_of_layer_0_matches_the_model) {
  const testing::cli_result r = testing::run_qkv(
      {"explain", "--checkpoint", checkpoint(), "--text", sentence, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.at("tokens").size(), 18u);
  EXPECT_EQ(j.at("tokens")[4], "\u2423");  // the space after "jane", visible
  EXPECT_TRUE(j.at("causal").get<bool>());
  const nn::gpt_attention_heads m = model_heads(checkpoint(), 0);
  ASSERT_EQ(j.at("heads").size(), 2u);
  for (int64_t h = 0; h < 2; ++h)
    expect_weights(json_weights(j.at("heads")[h].at("steps")), causal_weights(m.q, m.k, h));
  // The two heads differ (the selection is not a copy of one head).
  EXPECT_NE(json_weights(j.at("heads")[0].at("steps")), json_weights(j.at("heads")[1].at("steps")));
  EXPECT_NE(j.at("word_rule").get<std::string>().find("averaged over its own (query) characters"),
            std::string::npos);
}

// Layer 0's Q and K straight from the checkpoint's tensors, in float64: x_t = wte[id_t] + wpe[t],
// h = LayerNorm(x) (eps 1e-5, ln_1), Q = h·W_q^T + b_q, K = h·W_k^T + b_k (in_proj rows 0..E,
// E..2E): the projections the walkthrough shows are the model's.
TEST_F(ExplainCheckpoint, layer_0_projections_match_the_checkpoint_tensors) {
  const testing::cli_result r = testing::run_qkv(
      {"explain", "--checkpoint", checkpoint(), "--text", sentence, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const io::named_tensors w = io::read_safetensors(checkpoint());
  const auto& wte = w.at("model.wte.weight");
  const auto& wpe = w.at("model.wpe.weight");
  const auto& gamma = w.at("model.h.0.ln_1.weight");
  const auto& beta = w.at("model.h.0.ln_1.bias");
  const auto& in_w = w.at("model.h.0.attn.in_proj_weight");
  const auto& in_b = w.at("model.h.0.attn.in_proj_bias");
  const int64_t E = 16, hd = 8;
  const std::vector<int32_t> ids =
      train::load_trained_model(checkpoint()).vocab.encode(sentence, "text");
  for (int64_t t = 0; t < static_cast<int64_t>(ids.size()); ++t) {
    std::vector<double> x(E), h(E);
    double mean = 0, var = 0;
    for (int64_t e = 0; e < E; ++e) mean += x[e] = double(wte[ids[t] * E + e]) + wpe[t * E + e];
    mean /= E;
    for (int64_t e = 0; e < E; ++e) var += (x[e] - mean) * (x[e] - mean) / E;
    for (int64_t e = 0; e < E; ++e)
      h[e] = (x[e] - mean) / std::sqrt(var + 1e-5) * gamma[e] + beta[e];
    for (const auto& [step, row0] : {std::pair{"Q", int64_t{0}}, std::pair{"K", E}})
      for (int64_t o = 0; o < E; ++o) {
        double expected = in_b[row0 + o];
        for (int64_t e = 0; e < E; ++e) expected += double(in_w[(row0 + o) * E + e]) * h[e];
        const double actual = j.at("heads")[o / hd].at("steps").at(step)[t][o % hd].get<double>();
        EXPECT_NEAR(actual, expected, 1e-5 * std::max(1.0, std::abs(expected)))
            << step << " token " << t << " feature " << o;
      }
  }
}

TEST_F(ExplainCheckpoint, one_head_of_layer_1_and_its_word_table) {
  const testing::cli_result r =
      testing::run_qkv({"explain", "--checkpoint", checkpoint(), "--text", sentence, "--layer", "1",
                        "--head", "1", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j.contains("heads"));
  const nn::gpt_attention_heads m = model_heads(checkpoint(), 1);
  const rows_t p = causal_weights(m.q, m.k, 1);
  expect_weights(json_weights(j.at("steps")), p);

  // The word table from the expected weights: "jane" = characters 0-3, "visits" 5-10,
  // "africa" 12-17. Causal, so "jane" gives all its weight except to itself to nothing.
  const auto block = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    double s = 0;
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t k = j0; k < j1; ++k) s += p[i][k];
    return s / double(i1 - i0);
  };
  const nlohmann::json& table = j.at("word_tables").at(0);
  EXPECT_EQ(table.at("words"), nlohmann::json({"jane", "visits", "africa"}));
  const int64_t span[3][2] = {{0, 4}, {5, 11}, {12, 18}};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      EXPECT_NEAR(table.at("weights")[a][b].get<double>(),
                  block(span[a][0], span[a][1], span[b][0], span[b][1]), 1e-5);
  EXPECT_NEAR(table.at("weights")[0][0].get<double>(), 1.0, 1e-5);
  EXPECT_EQ(table.at("summary")[0].at("key"), "jane");
}

TEST(ExplainWordTable, aggregates_by_hand) {
  // "ab c": a query word's row is the mean over its characters of the sum over the key word's
  // characters; the space (index 2) belongs to no word.
  const explain::matrix p{4,
                          4,
                          {0.5, 0.5, 0.0, 0.0,  //
                           0.2, 0.6, 0.2, 0.0,  //
                           0.1, 0.1, 0.8, 0.0,  //
                           0.1, 0.2, 0.2, 0.5}};
  const explain::word_table t = explain::aggregate_words(p, "ab c");
  ASSERT_EQ(t.words, (std::vector<std::string>{"ab", "c"}));
  EXPECT_DOUBLE_EQ(t.weights(0, 0), (0.5 + 0.5 + 0.2 + 0.6) / 2);  // 0.9
  EXPECT_DOUBLE_EQ(t.weights(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(t.weights(1, 0), 0.1 + 0.2);
  EXPECT_DOUBLE_EQ(t.weights(1, 1), 0.5);
  const std::string text = explain::render_word_tables({t});
  EXPECT_NE(
      text.find("for the word \"ab\", the most related word is \"ab\", with probability 0.900"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("for the word \"c\", the most related word is \"c\", with probability 0.500"),
            std::string::npos)
      << text;
}

TEST_F(ExplainCheckpoint, text_output_labels_characters_and_says_how_words_are_aggregated) {
  const testing::cli_result r = testing::run_qkv(
      {"explain", "--checkpoint", checkpoint(), "--text", sentence, "--head", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\u2423"), std::string::npos);
  EXPECT_NE(r.out.find(explain::word_table_rule), std::string::npos);
  EXPECT_NE(r.out.find("for the word \"jane\", the most related word is \"jane\""),
            std::string::npos);
}

TEST_F(ExplainCheckpoint, svg_and_html_render_with_a_checkpoint) {
  const testing::cli_result r =
      testing::run_qkv({"explain", "--checkpoint", checkpoint(), "--text", sentence, "--svg",
                        dir.file("a.svg"), "--html", dir.file("a.html")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(testing::file_exists(dir.file("a.svg")));
  EXPECT_TRUE(testing::file_exists(dir.file("a.html")));
}

TEST_F(ExplainCheckpoint, bad_input_exits_2_naming_the_argument_without_output_files) {
  {
    std::FILE* f = std::fopen(dir.file("corrupt.safetensors").c_str(), "wb");
    std::fputs("not a checkpoint", f);
    std::fclose(f);
  }
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--checkpoint", dir.file("missing.safetensors"), "--text", sentence}, "--checkpoint"},
      {{"--checkpoint", dir.file("corrupt.safetensors"), "--text", sentence}, "--checkpoint"},
      {{"--checkpoint", checkpoint(), "--text", sentence, "--layer", "2"}, "--layer"},
      {{"--checkpoint", checkpoint(), "--text", sentence, "--layer", "-1"}, "--layer"},
      {{"--checkpoint", checkpoint(), "--text", sentence, "--head", "2"}, "2 heads"},
      {{"--checkpoint", checkpoint(), "--text", ""}, "--text"},
      {{"--checkpoint", checkpoint(), "--text", "jane visits Zanzibar"}, "--text"},
      {{"--checkpoint", checkpoint(), "--text", std::string(33, 'a')}, "context"},
      {{"--checkpoint", checkpoint(), "--text", sentence, "--x", "x.npy"}, "--x"},
      {{"--checkpoint", checkpoint(), "--text", sentence, "--causal"}, "--causal"},
      {{"--text", sentence}, "--checkpoint"},
  };
  for (const auto& [args, named] : cases) {
    std::vector<std::string> all = {"explain"};
    all.insert(all.end(), args.begin(), args.end());
    for (const char* flag : {"--svg", "--html"})
      all.insert(all.end(), {flag, dir.file(std::string("out") + flag)});
    const testing::cli_result r = testing::run_qkv(all);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(named), std::string::npos) << r.err;
    EXPECT_FALSE(testing::file_exists(dir.file("out--svg")));
    EXPECT_FALSE(testing::file_exists(dir.file("out--html")));
  }
}

}  // namespace
}  // namespace qkv
