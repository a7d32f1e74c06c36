// The files of `qkv explain`: the SVG heatmap is well-formed XML (checked by xmllint) with one
// cell per query-key pair; the HTML page is self-contained. And every bad input is refused with
// exit code 2, a message naming the argument, and no partial --svg/--html file.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "qkv/explain/render_svg.hpp"
#include "qkv/io/npy.hpp"
#include "support/cli.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The standard output of a shell command (xmllint), and whether it succeeded.
std::pair<bool, std::string> shell(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {false, ""};
  std::string out;
  char buffer[256];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  return {pclose(pipe) == 0, out};
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ExplainSvg, WellFormedWithOneCellPerQueryKeyPair) {
  testing::temp_dir dir;
  const std::string svg = dir.file("poem.svg");
  const testing::cli_result r = testing::run_qkv({"explain", "--causal", "--svg", svg});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto [well_formed, lint] = shell("xmllint --noout '" + svg + "' 2>&1");
  EXPECT_TRUE(well_formed) << lint;
  const auto [ok, cells] = shell(
      "xmllint --xpath \"count(//*[local-name()='rect'][contains(@class,'cell')])\" '" + svg + "'");
  ASSERT_TRUE(ok);
  EXPECT_EQ(std::stoi(cells), 9);
  const std::string text = slurp(svg);
  EXPECT_EQ(count(text, "class=\"cell masked\""), 3u);  // the causal mask hides 3 of 9 pairs
  EXPECT_NE(text.find("data-query=\"a\" data-key=\"Write\""), std::string::npos);
  EXPECT_NE(text.find(">63.9%</text>"), std::string::npos);
  EXPECT_NE(text.find(">poem</text>"), std::string::npos);
}

TEST(ExplainSvg, EscapesTokensAndDrawsEveryHead) {
  std::mt19937_64 rng(5);
  const tensor q = testing::random_tensor({3, 2, 4}, rng);
  const std::string svg =
      explain::render_svg(explain::trace_attention(q, q, q, {"<a>", "&b"}, false));
  EXPECT_NE(svg.find("&lt;a&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<a>"), std::string::npos);
  EXPECT_EQ(count(svg, "<rect class=\"cell"), 3u * 2 * 2);
}

TEST(ExplainHtml, SelfContainedPageWithEveryStep) {
  testing::temp_dir dir;
  const std::string html = dir.file("poem.html");
  const testing::cli_result r = testing::run_qkv({"explain", "--html", html, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.front(), '{');
  const std::string page = slurp(html);
  for (const char* needle : {"<!DOCTYPE html>", "Queries, keys and values", "Dot products",
                             "Softmax", "Output", "Summary", "40.1%", "1.0100"})
    EXPECT_NE(page.find(needle), std::string::npos) << needle;
  EXPECT_EQ(count(page, "<rect class=\"cell"), 9u);
  // Nothing is fetched from the network.
  for (const char* remote : {"src=\"http", "href=\"http", "@import", "url("})
    EXPECT_EQ(page.find(remote), std::string::npos) << remote;
}

struct bad_input {
  std::vector<std::string> args;
  std::string message;  // a part of the error message
};

TEST(ExplainCli, BadInputExitsWith2AndWritesNothing) {
  testing::temp_dir dir;
  std::mt19937_64 rng(1);
  io::write_npy(dir.file("x.npy"), testing::random_tensor({3, 4}, rng));
  io::write_npy(dir.file("x5.npy"), testing::random_tensor({3, 5}, rng));
  io::write_npy(dir.file("w.npy"), testing::random_tensor({2, 4}, rng));
  io::write_npy(dir.file("w3.npy"), testing::random_tensor({3, 4}, rng));
  std::ofstream(dir.file("bad.json")) << "{\"tokens\": [\"a\"], \"encodings\": [[1, 2]]}";
  const std::string x = dir.file("x.npy"), w = dir.file("w.npy");
  const std::vector<bad_input> cases = {
      {{"--x", x, "--wq", w, "--wv", w}, "--wk: missing"},
      {{"--x", dir.file("x5.npy"), "--wq", w, "--wk", w, "--wv", w}, "[3, 5]"},
      {{"--x", x, "--wq", w, "--wk", dir.file("w3.npy"), "--wv", w}, "--wk"},
      {{"--x", x, "--wq", w, "--wk", w, "--wv", w, "--tokens", "a b"}, "--tokens: 2"},
      {{"--x", dir.file("missing.npy"), "--wq", w, "--wk", w, "--wv", w}, "--x"},
      {{"--format", "yaml"}, "--format"},
      {{"--spec", dir.file("bad.json")}, "W_q_weight"},
      {{"--spec", dir.file("none.json")}, "--spec"},
  };
  for (const bad_input& c : cases) {
    std::vector<std::string> args = {"explain", "--svg", dir.file("out.svg"), "--html",
                                     dir.file("out.html")};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const testing::cli_result r = testing::run_qkv(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(c.args);
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(testing::file_exists(dir.file("out.svg")));
    EXPECT_FALSE(testing::file_exists(dir.file("out.html")));
  }
}

TEST(ExplainCli, SpecFileAndTokensFlag) {
  testing::temp_dir dir;
  std::ofstream(dir.file("spec.json"))
      << R"({"title": "two words", "tokens": ["hello", "world"], "encodings": [[1, 0], [0, 1]],
             "W_q_weight": [[1, 0], [0, 1]], "W_k_weight": [[1, 0], [0, 1]],
             "W_v_weight": [[2, 0], [0, 2]]})";
  testing::cli_result r = testing::run_qkv({"explain", "--spec", dir.file("spec.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("two words"), std::string::npos);
  // Q = K = I: scores I, scaled I/sqrt(2); "hello" attends e^0.7071/(e^0.7071 + 1) = 67.0%.
  EXPECT_NE(r.out.find("hello  67.0%  33.0%"), std::string::npos) << r.out;
  r = testing::run_qkv({"explain", "--spec", dir.file("spec.json"), "--tokens", "hi there"});
  EXPECT_NE(r.out.find("there  33.0%  67.0%"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace qkv
