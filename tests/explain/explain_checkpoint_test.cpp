// `qkv explain --checkpoint C --text T` on a tiny untrained GPT saved by the trainer: every
// layer's and head's weights against an independent float64 softmax of the model's own Q·K^T,
// the word table's aggregation by hand, the learner's summary, and the error cases (exit 2, no
// partial output files).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qkv/io/safetensors.hpp"
#include "qkv/train/trainer.hpp"
#include "support/cli.hpp"
#include "support/doc_example.hpp"

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

// A head's weights from the JSON (a hidden key's weight is 0).
rows_t json_weights(const nlohmann::json& head) {
  return head.at("weights").get<rows_t>();
}

// max|diff| <= 1e-5·max(1, max|expected|) (docs/contracts.md section 3), and every row sums to 1.
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

TEST_F(ExplainCheckpoint, every_layer_and_head_matches_the_model) {
  const testing::cli_result r = testing::run_qkv(
      {"explain", "--checkpoint", checkpoint(), "--text", sentence, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("schema_version"), 1);
  ASSERT_EQ(j.at("tokens").size(), 18u);
  EXPECT_EQ(j.at("tokens")[4], " ");  // the token's own text; "␣" is the terminal's display
  EXPECT_EQ(j.at("ids").size(), 18u);
  EXPECT_TRUE(j.at("causal").get<bool>());
  EXPECT_EQ(j.at("model"), nlohmann::json({{"layers", 2}, {"heads", 2}}));
  ASSERT_EQ(j.at("heads").size(), 4u);
  for (int64_t l = 0; l < 2; ++l) {
    const nn::gpt_attention_heads m = model_heads(checkpoint(), l);
    for (int64_t h = 0; h < 2; ++h) {
      const nlohmann::json& head = j.at("heads")[l * 2 + h];
      EXPECT_EQ(head.at("layer"), l);
      EXPECT_EQ(head.at("head"), h);
      EXPECT_FALSE(head.contains("steps"));  // the walkthrough only with --verbose
      expect_weights(json_weights(head), causal_weights(m.q, m.k, h));
    }
  }
  // The two heads differ (the selection is not a copy of one head).
  EXPECT_NE(json_weights(j.at("heads")[0]), json_weights(j.at("heads")[1]));
  EXPECT_NE(j.at("word_rule").get<std::string>().find("averaged over its own (query) tokens"),
            std::string::npos);
  EXPECT_FALSE(j.contains("steps"));
  EXPECT_FALSE(j.contains("summary"));
}

// Layer 0's Q and K straight from the checkpoint's tensors, in float64: x_t = wte[id_t] + wpe[t],
// h = LayerNorm(x) (eps 1e-5, ln_1), Q = h·W_q^T + b_q, K = h·W_k^T + b_k (in_proj rows 0..E,
// E..2E): the projections the walkthrough shows are the model's.
TEST_F(ExplainCheckpoint, layer_0_projections_match_the_checkpoint_tensors) {
  const testing::cli_result r =
      testing::run_qkv({"explain", "--checkpoint", checkpoint(), "--text", sentence, "--layer", "0",
                        "--format", "json", "--verbose"});
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
  ASSERT_EQ(j.at("heads").size(), 1u);
  const nlohmann::json& head = j.at("heads")[0];
  EXPECT_EQ(head.at("layer"), 1);
  EXPECT_EQ(head.at("head"), 1);
  const nn::gpt_attention_heads m = model_heads(checkpoint(), 1);
  const rows_t p = causal_weights(m.q, m.k, 1);
  expect_weights(json_weights(head), p);

  // The word table from the expected weights: "jane" = characters 0-3, "visits" 5-10,
  // "africa" 12-17. Causal, so "jane" gives all its weight except to itself to nothing.
  const auto block = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    double s = 0;
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t k = j0; k < j1; ++k) s += p[i][k];
    return s / double(i1 - i0);
  };
  EXPECT_EQ(j.at("words"), nlohmann::json::parse(R"([{"text": "jane", "first": 0, "last": 4},
      {"text": "visits", "first": 5, "last": 11}, {"text": "africa", "first": 12, "last": 18}])"));
  const int64_t span[3][2] = {{0, 4}, {5, 11}, {12, 18}};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      EXPECT_NEAR(head.at("word_weights")[a][b].get<double>(),
                  block(span[a][0], span[a][1], span[b][0], span[b][1]), 1e-5);
  EXPECT_NEAR(head.at("word_weights")[0][0].get<double>(), 1.0, 1e-5);
  EXPECT_EQ(head.at("word_most_attended")[0], nlohmann::json::parse(R"({"query": 0, "key": 0,
      "weight": )" + head.at("word_weights")[0][0].dump() + "}"));
}

// The default text is a learner's summary: compact, narrow, with the word table and each head's
// most attended word; --verbose adds every step.
TEST_F(ExplainCheckpoint, text_is_a_summary_and_verbose_adds_the_steps) {
  const testing::cli_result r =
      testing::run_qkv({"explain", "--checkpoint", checkpoint(), "--text", sentence});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t lines = 0, widest = 0;
  for (size_t at = 0; at < r.out.size();) {
    const size_t end = r.out.find('\n', at);
    const std::string line = r.out.substr(at, end - at);
    widest =
        std::max(widest, static_cast<size_t>(std::count_if(line.begin(), line.end(), [](char c) {
                   return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
                 })));
    ++lines;
    at = end + 1;
  }
  EXPECT_LE(lines, 60u) << r.out;
  EXPECT_LE(widest, 100u) << r.out;
  EXPECT_NE(r.out.find("layer 1, head 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Most attended word"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  jane     jane 1.00"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Attention rollout"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("dim 0"), std::string::npos);  // no Q/K/V dumps
  const testing::cli_result verbose = testing::run_qkv(
      {"explain", "--checkpoint", checkpoint(), "--text", sentence, "--head", "0", "--verbose"});
  ASSERT_EQ(verbose.exit_code, 0) << verbose.err;
  EXPECT_NE(verbose.out.find("dim 0"), std::string::npos);
  EXPECT_NE(verbose.out.find("\u2423"), std::string::npos);  // a space token, made visible
}

TEST_F(ExplainCheckpoint, svg_and_html_render_with_a_checkpoint) {
  const testing::cli_result r =
      testing::run_qkv({"explain", "--checkpoint", checkpoint(), "--text", sentence, "--svg",
                        dir.file("a.svg"), "--html", dir.file("a.html")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string svg = testing::read_text(dir.file("a.svg")),
                    html = testing::read_text(dir.file("a.html"));
  // The word tables come first in the SVG; 4 heads of 3 x 3 words, then of 18 x 18 characters.
  EXPECT_NE(svg.find(">Word tables</text>"), std::string::npos);
  size_t cells = 0;
  for (size_t at = svg.find("<rect class=\"cell"); at != std::string::npos;
       at = svg.find("<rect class=\"cell", at + 1))
    ++cells;
  EXPECT_EQ(cells, 4u * (3 * 3 + 18 * 18));
  EXPECT_NE(html.find("id=\"attention-data\""), std::string::npos);
  EXPECT_NE(html.find("Attention rollout"), std::string::npos);
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
      {{"--checkpoint", checkpoint(), "--text", sentence, "--scale", "2"}, "--scale"},
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

// docs/attention.md's checkpoint example, run as the doc gives it: every line the doc shows of
// the summary is in the output (the doc leaves lines out with "...").
TEST(ExplainDocs, TheCheckpointExampleOfAttentionMdIsTrue) {
  testing::temp_dir dir;
  {
    std::ofstream corpus(dir.file("corpus.txt"));
    for (int i = 0; i < 40; ++i) corpus << "jane visits africa. jim sees tea! ";
  }
  const testing::cli_result trained = testing::run_qkv({"train",
                                                        "--corpus",
                                                        dir.file("corpus.txt"),
                                                        "--layers",
                                                        "2",
                                                        "--heads",
                                                        "2",
                                                        "--embed",
                                                        "32",
                                                        "--context",
                                                        "64",
                                                        "--batch",
                                                        "8",
                                                        "--steps",
                                                        "200",
                                                        "--warmup",
                                                        "20",
                                                        "--eval-every",
                                                        "100",
                                                        "--checkpoint",
                                                        dir.file("tiny.safetensors")});
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const testing::cli_result r = testing::run_qkv(
      {"explain", "--checkpoint", dir.file("tiny.safetensors"), "--text", "jane visits africa"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string out = r.out;
  for (size_t at; (at = out.find(dir.file("tiny.safetensors"))) != std::string::npos;)
    out.replace(at, dir.file("tiny.safetensors").size(), "tiny.safetensors");
  EXPECT_GE(testing::expect_doc_output(
                "attention.md",
                "$ qkv explain --checkpoint tiny.safetensors --text \"jane visits africa\"", out),
            20);
}

}  // namespace
}  // namespace qkv
