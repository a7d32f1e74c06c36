// The corpus: fortune files (without .dat/.u8), vocabulary, held-out split and batches; the
// SVG loss plot.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "qkv/error.hpp"
#include "qkv/train/corpus.hpp"
#include "qkv/train/loss_plot.hpp"

namespace qkv::train {
namespace {

namespace fs = std::filesystem;

TEST(Corpus, FortuneFilesSkipIndexesAndLinks) {
  const fs::path dir = fs::temp_directory_path() / "qkv_corpus_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "b") << "second\n%\n";
  std::ofstream(dir / "a") << "first\n%\n";
  std::ofstream(dir / "a.dat") << "index";
  fs::create_symlink(dir / "a", dir / "a.u8");
  const std::vector<std::string> files = fortune_files(dir.string());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(read_text_files(files), "first\n%\nsecond\n%\n");
  fs::remove_all(dir);
  try {
    fortune_files(dir.string());
    FAIL() << "expected qkv::error";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("apt-get install fortunes"), std::string::npos);
  }
}

TEST(Corpus, VocabularySplitAndBatches) {
  const vocabulary v("hello world");
  EXPECT_EQ(v.size(), 8);  // " dehlorw"
  const std::vector<int32_t> ids = v.encode("hello world", "text");
  EXPECT_EQ(v.decode(ids), "hello world");
  EXPECT_THROW(v.encode("hi!", "--prompt"), error);
  // Tokens are bytes: a refused byte is shown with the character it belongs to.
  try {
    v.encode("hello caf\xC3\xA9", "--prompt");
    FAIL() << "expected qkv::error";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("'c' (byte 0x63) at byte offset 6"), std::string::npos)
        << e.what();
  }
  try {
    vocabulary("caf").encode("caf\xC3\xA9", "--prompt");
    FAIL() << "expected qkv::error";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("byte 0xC3 of the character '\xC3\xA9' at byte offset 3"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(vocabulary::from_symbols(v.symbols()).encode("old", "x"), v.encode("old", "x"));

  std::vector<int32_t> tokens(100);
  for (int32_t i = 0; i < 100; ++i) tokens[static_cast<size_t>(i)] = i;
  const token_split s = split_tokens(tokens, 0.1);
  EXPECT_EQ(s.train.size(), 90u);
  EXPECT_EQ(s.held_out.front(), 90);
  const batch b = sample_batch(tokens, 3, 5, 1, 7);
  for (size_t i = 0; i < b.x.size(); ++i) EXPECT_EQ(b.y[i], b.x[i] + 1);  // targets are next tokens
  for (int t = 1; t < 5; ++t) EXPECT_EQ(b.x[static_cast<size_t>(t)], b.x[0] + t);
  EXPECT_EQ(sample_batch(tokens, 3, 5, 1, 7).x, b.x);  // a function of (seed, step)
  EXPECT_NE(sample_batch(tokens, 3, 5, 1, 8).x, b.x);
  EXPECT_THROW(sample_batch(tokens, 1, 99, 1, 0), error);
}

TEST(LossPlot, SvgHasBothSeries) {
  const std::string svg = loss_plot_svg({{1, 4.0}, {2, 3.0}, {3, 2.5}}, {{3, 2.7}}, "a <title>");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 10, true);
  EXPECT_NE(svg.find("a &lt;title&gt;"), std::string::npos);
  EXPECT_NE(svg.find("held-out"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(LossPlot, RoundTicksAndADistinctHeldOutCurve) {
  // Steps up to 704 and losses up to 2.865: ticks every 200 steps and every 1 nat (the first
  // of 1, 2, 5 times a power of ten at least a fifth of the range), the axes ending at 800 and 3
  // (not at 704 and 2.865 split in fifths).
  const std::string svg =
      loss_plot_svg({{1, 2.865}, {352, 1.5}, {704, 1.2}}, {{352, 1.6}, {704, 1.25}}, "t");
  for (const char* label : {">0<", ">200<", ">400<", ">600<", ">800<", ">1<", ">2<", ">3<"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  for (const char* odd : {">704<", ">2.865<", ">140.8<", ">0.573<", ">1000<", ">4<"})
    EXPECT_EQ(svg.find(odd), std::string::npos) << odd;
  // Losses up to 0.9551: ticks every 0.2.
  const std::string small = loss_plot_svg({{1, 0.9551}, {10, 0.5}}, {}, "t");
  for (const char* label : {">0.2<", ">0.8<", ">1<"})
    EXPECT_NE(small.find(label), std::string::npos) << label;
  EXPECT_EQ(small.find(">0.9551<"), std::string::npos);
  // The held-out curve: dashed, thicker, with a marker per point, drawn after (over) training.
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  size_t circles = 0;
  for (size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1))
    ++circles;
  EXPECT_EQ(circles, 2u);
  EXPECT_LT(svg.find("#7aa6d6"), svg.find("#c0392b"));
}

}  // namespace
}  // namespace qkv::train
