// `qkv explain`'s terminal walkthrough of the embedded "Write a poem" example: every printed
// number equals the example file's fp32 value to every printed digit, each row of percentages
// sums to 100% as printed, and colour appears only when asked for.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>

#include "qkv/explain/render_text.hpp"
#include "support/cli.hpp"
#include "support/write_a_poem.hpp"

namespace qkv {
namespace {

using words = std::vector<std::string>;

std::vector<words> split_lines(const std::string& text) {
  std::vector<words> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    words w;
    for (std::string f; fields >> f;) w.push_back(f);
    lines.push_back(w);
  }
  return lines;
}

std::string printed(double v, int decimals, const char* suffix = "") {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f%s", decimals, v, suffix);
  return buffer;
}

// Finds, from line `from` on, the table rows "token v0 v1 ..." of `expected` (fp32 values printed
// to `decimals`, times `factor`), one after another; returns the line after the last.
size_t expect_table(const std::vector<words>& lines, size_t from, const char* step,
                    const words& tokens, const nlohmann::json& expected, int decimals,
                    double factor = 1.0, const char* suffix = "") {
  for (size_t i = 0; i < tokens.size(); ++i) {
    words row{tokens[i]};
    for (const auto& v : expected.at(i))
      row.push_back(printed(factor * v.get<float>(), decimals, suffix));
    while (from < lines.size() && lines[from] != row) ++from;
    if (from == lines.size()) {
      ADD_FAILURE() << step << ": row '" << ::testing::PrintToString(row) << "' not printed";
      return lines.size();
    }
    ++from;
  }
  return from;
}

TEST(ExplainText, DefaultWalkthroughPrintsTheExampleFilesNumbers) {
  const testing::cli_result r = testing::run_qkv({"explain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "colour codes without a terminal";
  const nlohmann::json poem = testing::load_write_a_poem();
  const nlohmann::json& fp32 = poem["fp32"];
  const words tokens = poem["tokens"].get<words>();
  const std::vector<words> lines = split_lines(r.out);

  size_t at = expect_table(lines, 0, "X", tokens, poem["encodings"], 4);
  at = expect_table(lines, at, "Q", tokens, fp32["q"], 4);
  at = expect_table(lines, at, "K", tokens, fp32["k"], 4);
  at = expect_table(lines, at, "V", tokens, fp32["v"], 4);
  // The first query's dot products, one pair a line, end in the computed value (-0.6523 for
  // Write·poem, where the lesson prints -0.61).
  for (size_t j = 0; j < tokens.size(); ++j) {
    const std::string pair = "q(Write)·k(" + tokens[j] + ")";
    while (at < lines.size() && (lines[at].empty() || lines[at][0] != pair)) ++at;
    ASSERT_LT(at, lines.size()) << pair << " not narrated";
    EXPECT_EQ(lines[at].back(), printed(fp32["sims"][0][j].get<float>(), 4)) << pair;
  }
  at = expect_table(lines, at, "scores", tokens, fp32["sims"], 4);
  at = expect_table(lines, at, "scaled", tokens, fp32["scaled"], 4);
  at = expect_table(lines, at, "weights", tokens, fp32["percents"], 1, 100.0, "%");
  at = expect_table(lines, at, "output", tokens, fp32["out"], 4);
  // The lesson's figures: Write attends 36% / 40% / 24% (rounded), its output starts 1.01.
  EXPECT_NE(r.out.find("35.7%  40.1%  24.2%"), std::string::npos);
  EXPECT_NE(r.out.find("= [1.0100, 1.0641]"), std::string::npos);
  // The summary: query -> most attended key (weight).
  const std::vector<words> summary = {{"Write", "->", "a", "(40.1%)"},
                                      {"a", "->", "a", "(60.5%)"},
                                      {"poem", "->", "poem", "(89.6%)"}};
  for (const words& s : summary) {
    while (at < lines.size() && lines[at] != s) ++at;
    EXPECT_LT(at, lines.size()) << ::testing::PrintToString(s) << " missing from the summary";
  }
}

// Every row of the printed percentage table sums to 100% up to the rounding of its cells.
void expect_rows_sum_to_100(const std::string& out, size_t n) {
  size_t rows = 0;
  for (const words& line : split_lines(out)) {
    if (line.size() != n + 1 || (line[1].back() != '%' && line[1] != "×")) continue;
    double sum = 0;
    for (size_t j = 1; j <= n; ++j) sum += line[j] == "×" ? 0.0 : std::stod(line[j]);
    EXPECT_NEAR(sum, 100.0, 0.05 * static_cast<double>(n)) << ::testing::PrintToString(line);
    ++rows;
  }
  EXPECT_EQ(rows, n);
}

TEST(ExplainText, PercentagesSumTo100AsPrinted) {
  for (const char* causal : {"", "--causal"}) {
    std::vector<std::string> args = {"explain"};
    if (*causal) args.push_back(causal);
    const testing::cli_result r = testing::run_qkv(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_rows_sum_to_100(r.out, 3);
  }
}

TEST(ExplainText, CausalMarksTheHiddenCells) {
  const testing::cli_result r = testing::run_qkv({"explain", "--causal"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Write  100.0%      ×      ×"), std::string::npos) << r.out;
}

TEST(ExplainText, ColourOnlyWhenAsked) {
  const nlohmann::json poem = testing::load_write_a_poem();
  const explain::attention_trace t = explain::trace_self_attention(
      nn::self_attention(testing::matrix_from_json(poem["W_q_weight"]),
                         testing::matrix_from_json(poem["W_k_weight"]),
                         testing::matrix_from_json(poem["W_v_weight"])),
      testing::matrix_from_json(poem["encodings"]), {"Write", "a", "poem"}, false);
  EXPECT_EQ(explain::render_text(t).find('\x1b'), std::string::npos);
  const std::string coloured = explain::render_text(t, {.colour = true});
  EXPECT_NE(coloured.find("\x1b[48;2;"), std::string::npos) << "no heatmap background";
}

}  // namespace
}  // namespace qkv
