// The files of `qkv explain`: the SVG heatmap is well-formed XML (checked by xmllint) with one
// cell per query-key pair; the HTML page is self-contained. And every bad input is refused with
// exit code 2, a message naming the argument, and no partial --svg/--html file.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "qkv/explain/render_svg.hpp"
#include "qkv/io/npy.hpp"
#include "support/cli.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

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
  const std::string text = testing::read_text(svg);
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
  const std::string page = testing::read_text(html);
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

// A spec's "scale" is used (and --scale overrides it); its description is the title; an
// unknown key, a number float32 cannot hold or inputs that overflow are refused, naming the key.
TEST(ExplainCli, SpecScaleDescriptionAndRefusals) {
  testing::temp_dir dir;
  const auto write =
      [&](const std::string& name, const std::string& extra) {
        std::ofstream(dir.file(name))
            << R"({"description": "two words, scaled", "tokens": ["hello", "world"],
               "encodings": [[1, 0], [0, 1]], "W_q_weight": [[1, 0], [0, 1]],
               "W_k_weight": [[1, 0], [0, 1]], "W_v_weight": [[2, 0], [0, 2]])"
            << extra << "}";
        return dir.file(name);
      };
  const std::string scaled = write("scaled.json", R"(, "scale": 1.0)");
  testing::cli_result r = testing::run_qkv({"explain", "--spec", scaled});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("two words, scaled"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(scaled), std::string::npos) << "the title is the description";
  // scale 1: "hello" attends e^1/(e^1 + 1) = 73.1% to itself.
  EXPECT_NE(r.out.find("hello  73.1%  26.9%"), std::string::npos) << r.out;
  r = testing::run_qkv({"explain", "--spec", scaled, "--scale", "2", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["scale"], 2.0);

  const std::vector<bad_input> cases = {
      {{"--spec", write("unknown.json", R"(, "colour": "red")")}, "unknown key 'colour'"},
      {{"--spec", write("huge.json", R"(, "scale": 1e40)")}, "scale"},
      {{"--spec", write("zero.json", R"(, "scale": 0)")}, "scale"},
      {{"--spec", scaled, "--scale", "-1"}, "--scale"},
      {{"--spec", write("layout.json", R"(, "d_model": 3)")}, "d_model"},
  };
  for (const bad_input& c : cases) {
    std::vector<std::string> args = {"explain", "--format", "json", "--html", dir.file("out.html")};
    args.insert(args.end(), c.args.begin(), c.args.end());
    r = testing::run_qkv(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(c.args);
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(testing::file_exists(dir.file("out.html")));
  }
  // Numbers float32 cannot hold, in a matrix; and inputs whose product overflows.
  std::ofstream(dir.file("e40.json"))
      << R"({"encodings": [[1, 1e40]], "W_q_weight": [[1, 0]], "W_k_weight": [[1, 0]],
             "W_v_weight": [[1, 0]]})";
  std::ofstream(dir.file("overflow.json"))
      << R"({"encodings": [[1e30, 1e30]], "W_q_weight": [[1e30, 0]], "W_k_weight": [[1, 0]],
             "W_v_weight": [[1, 0]]})";
  for (const auto& [file, message] :
       {std::pair{"e40.json", "encodings[0][1]"}, std::pair{"overflow.json", "non-finite"}}) {
    r = testing::run_qkv({"explain", "--spec", dir.file(file), "--format", "json"});
    EXPECT_EQ(r.exit_code, 2) << file;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("null"), std::string::npos) << r.out;
  }
}

// The bundled StatQuest spec has "scale" and notes beside its inputs: it runs as it is.
TEST(ExplainCli, BundledStatQuestSpecRuns) {
  const testing::cli_result r = testing::run_qkv(
      {"explain", "--spec", std::string(QKV_TEST_DATA) + "/examples/statquest_write_a_poem.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("StatQuest 'Attention in Transformers'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Write  35.7%  40.1%  24.2%"), std::string::npos) << r.out;
}

TEST(ExplainText, OneTokenIsSingular) {
  testing::temp_dir dir;
  std::ofstream(dir.file("one.json"))
      << R"({"tokens": ["solo"], "encodings": [[1, 2]], "W_q_weight": [[1, 0]],
             "W_k_weight": [[1, 0]], "W_v_weight": [[1, 0]]})";
  const testing::cli_result r = testing::run_qkv({"explain", "--spec", dir.file("one.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 token, d_k = 1, d_v = 1, 1 head"), std::string::npos) << r.out;
}

// Every caption of the causal heatmap is there in full, and the canvas is wide enough for it at
// 8 px a character (13 px system-ui averages about 7).
TEST(ExplainSvg, CausalCaptionFitsTheCanvas) {
  testing::temp_dir dir;
  const testing::cli_result r =
      testing::run_qkv({"explain", "--causal", "--svg", dir.file("c.svg")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string svg = testing::read_text(dir.file("c.svg"));
  const std::string caption = "× = hidden by the causal mask.";
  EXPECT_NE(svg.find(">" + caption + "</text>"), std::string::npos) << svg;
  const int width = std::stoi(svg.substr(svg.find("width=\"") + 7));
  for (size_t at = svg.find("<text x=\""); at != std::string::npos;
       at = svg.find("<text x=\"", at + 1)) {
    const size_t open = svg.find('>', at) + 1, close = svg.find("</text>", open);
    const std::string attributes = svg.substr(at, open - at),
                      content = svg.substr(open, close - open);
    if (attributes.find("text-anchor") != std::string::npos ||
        attributes.find("transform") != std::string::npos)
      continue;  // centred and right-aligned labels sit inside the grid
    const int x = std::stoi(svg.substr(at + 9));
    int64_t characters = 0;
    for (const char c : content) characters += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    EXPECT_LE(x + 7 * characters, width) << content;
  }
}

}  // namespace
}  // namespace qkv
