// The corpus: fortune files (without .dat/.u8), vocabulary, held-out split and batches; the
// checkpoint integer packing; the SVG loss plot.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "qkv/error.hpp"
#include "qkv/train/checkpoint.hpp"
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

TEST(Checkpoint, IntegersPackExactly) {
  const uint64_t value = 0xfedcba9876543210ULL;
  io::named_tensors t{{"n", tensor({4}, pack_u64(value))}};
  EXPECT_EQ(unpack_u64(t, "n"), value);
  t["bad"] = tensor({4}, 0.5f);
  EXPECT_THROW(unpack_u64(t, "bad"), error);
  EXPECT_THROW(unpack_u64(t, "missing"), error);
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

}  // namespace
}  // namespace qkv::train
