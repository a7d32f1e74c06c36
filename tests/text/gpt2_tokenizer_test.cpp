// GPT-2's tokenizer against the reference (the npm package gpt-3-encoder, whose encode() runs in
// node) on a few hundred varied strings, the pre-tokenizer's pieces on chosen cases, and the
// byte-level round trip on invalid UTF-8.
#include "qkv/text/gpt2_tokenizer.hpp"

#include <gtest/gtest.h>

#include <random>

#include "qkv/error.hpp"
#include "support/cli.hpp"
#include "support/gpt3_encoder.hpp"

namespace qkv::testing {
namespace {

using text::gpt2_tokenizer;

// GPT-2's own files, from the reference package; nullptr (a failure recorded) without them.
const gpt2_tokenizer* gpt2() {
  static const std::unique_ptr<gpt2_tokenizer> tok = []() -> std::unique_ptr<gpt2_tokenizer> {
    const std::string dir = gpt3_encoder_dir();
    if (dir.empty()) return nullptr;
    return std::make_unique<gpt2_tokenizer>(
        gpt2_tokenizer::load(dir + "/encoder.json", dir + "/vocab.bpe"));
  }();
  return tok.get();
}

// Fragments of text the strings are built from: every class of the pre-tokenizer pattern and
// its edges. None holds U+0085, U+FEFF or U+001C..U+001F, where JavaScript's \s and Unicode's
// White_Space disagree.
const std::vector<std::string> fragments{"Hello",
                                         " world",
                                         "I'm",
                                         " you're",
                                         " we've",
                                         " they'll",
                                         " he'd",
                                         " it's",
                                         " don't",
                                         "'S",
                                         " 'tis",
                                         "''",
                                         "'x",
                                         "  ",
                                         "   ",
                                         "\t",
                                         "\t\t",
                                         "\n",
                                         "\n\n",
                                         " \n ",
                                         "\r\n",
                                         "\v\f",
                                         "0",
                                         "42",
                                         " 1234567",
                                         "3.14",
                                         "1,000,000",
                                         "½",
                                         "Ⅻ",
                                         "٣٤",
                                         "!",
                                         "?!",
                                         " ...",
                                         "--",
                                         "(a)",
                                         " [b]",
                                         "{c}",
                                         "\"q\"",
                                         "@#$%^&*",
                                         "~",
                                         "_x_",
                                         "café",
                                         " naïve",
                                         "Ångström",
                                         "e\xcc\x81",
                                         "Über",
                                         "Ελληνικά",
                                         " русский",
                                         "עברית",
                                         "العربية",
                                         "हिन्दी",
                                         "日本語",
                                         " 中文",
                                         "한국어",
                                         "ไทย",
                                         "😀",
                                         " 👍🏽",
                                         "👨‍👩‍👧",
                                         "🇫🇷",
                                         "\xe2\x80\x8b",
                                         "a\xe2\x80\x8c"
                                         "b",
                                         "\xe2\x80\x8d",
                                         "\xc2\xa0",
                                         "\xe3\x80\x80",
                                         "\xe2\x80\xa8",
                                         "x\xe2\x80\x83y",
                                         "\x01",
                                         "\x7f",
                                         "https://example.com/a?b=c",
                                         " snake_case",
                                         "CamelCase",
                                         "ALLCAPS",
                                         "mixed123abc",
                                         " $5.99",
                                         "e=mc²",
                                         "∑∫√",
                                         "→",
                                         "—",
                                         "…"};

std::vector<std::string> test_strings() {
  std::vector<std::string> texts{"",
                                 "Hello world",
                                 "jane visits africa",
                                 "I've  got   three\tspaces\n\nand newlines  ",
                                 "   leading and trailing   ",
                                 "It's 2024; we're at 99.9% of 1,234 ops!",
                                 "\n",
                                 " ",
                                 "a  b   c    d",
                                 "end with space ",
                                 "Tabs\t\tand\t spaces \t mixed"};
  for (const std::string& f : fragments) texts.push_back(f);
  std::mt19937 rng(2024);
  std::uniform_int_distribution<size_t> pick(0, fragments.size() - 1), count(1, 8);
  while (texts.size() < 400) {
    std::string s;
    for (size_t n = count(rng); n > 0; --n) s += fragments[pick(rng)];
    texts.push_back(s);
  }
  return texts;
}

TEST(Gpt2Tokenizer, EncodeMatchesTheReferenceOnVariedText) {
  const gpt2_tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 50257);
  const std::vector<std::string> texts = test_strings();
  const auto expected = gpt3_encoder_ids(texts);
  ASSERT_EQ(expected.size(), texts.size());
  int mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int64_t> ids = tok->encode(texts[i]);
    if (ids != expected[i] && ++mismatches <= 5)
      ADD_FAILURE() << "text #" << i << " '" << texts[i] << "': ids differ from gpt-3-encoder's";
    EXPECT_EQ(tok->decode(ids), texts[i]) << "text #" << i;
  }
  EXPECT_EQ(mismatches, 0) << "of " << texts.size() << " texts";
}

TEST(Gpt2Tokenizer, KnownIds) {
  const gpt2_tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int64_t>{15496, 995}));
  EXPECT_EQ(tok->decode(std::vector<int64_t>{50256}), "<|endoftext|>");
  EXPECT_THROW(tok->decode(std::vector<int64_t>{50257}), error);
  EXPECT_THROW(tok->decode(std::vector<int64_t>{-1}), error);
}

TEST(Gpt2Tokenizer, InvalidUtf8RoundTripsByteForByte) {
  const gpt2_tokenizer* tok = gpt2();
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255), length(1, 40);
  std::vector<std::string> texts{"\xff",           "\xc3",
                                 "a\xe2\x82",      "\xed\xa0\x80",
                                 "\xc0\xaf",       "\xf4\x90\x80\x80",
                                 "ok \x80\x80 ok", std::string("\0x\0", 3)};
  for (int n = 0; n < 200; ++n) {
    std::string s;
    for (int k = length(rng); k > 0; --k) s.push_back(static_cast<char>(byte(rng)));
    texts.push_back(s);
  }
  for (const std::string& s : texts) EXPECT_EQ(tok->decode(tok->encode(s)), s);
}

std::vector<std::string> pieces(std::string_view s) {
  const auto v = text::gpt2_pretokenize(s);
  return {v.begin(), v.end()};
}

TEST(Gpt2Pretokenize, PiecesFollowThePatternsAlternatives) {
  using v = std::vector<std::string>;
  EXPECT_EQ(pieces("I've  got 12 apples!!"), (v{"I", "'ve", " ", " got", " 12", " apples", "!!"}));
  // A space run before a word leaves its last space to \s+ alone (the run's end is no U+0020).
  EXPECT_EQ(pieces("a   \n\nb  "), (v{"a", "   \n", "\n", "b", "  "}));
  EXPECT_EQ(pieces("x \tfoo"), (v{"x", " ", "\t", "foo"}));
  EXPECT_EQ(pieces("''s 'LL"), (v{"''", "s", " '", "LL"}));
  EXPECT_EQ(pieces("日本 語"), (v{"日本", " 語"}));
  EXPECT_EQ(pieces("x²3"), (v{"x", "²3"}));  // ² is a number (No)
  // U+0085 is White_Space; U+FEFF and U+001C are neither space, letter nor number.
  EXPECT_EQ(pieces("a\xc2\x85\xc2\x85"
                   "b"),
            (v{"a", "\xc2\x85", "\xc2\x85", "b"}));
  EXPECT_EQ(pieces("a\xef\xbb\xbf\x1c"
                   "b"),
            (v{"a", "\xef\xbb\xbf\x1c", "b"}));
  EXPECT_EQ(pieces("\xff\xfe ab"), (v{"\xff\xfe", " ab"}));
  EXPECT_TRUE(pieces("").empty());
}

TEST(Gpt2Tokenizer, RefusesMalformedFiles) {
  const auto refusal = [](std::string_view vocab, std::string_view merges) {
    try {
      gpt2_tokenizer::parse(vocab, merges, "vocab.json", "merges.txt");
    } catch (const error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(refusal("{\"a\": ", "").find("'vocab.json': not valid JSON"), std::string::npos);
  EXPECT_NE(refusal("{\"a\": 0}", "").find("no token for byte 0"), std::string::npos);
  EXPECT_NE(refusal("[1]", "").find("expected a JSON object"), std::string::npos);
}

}  // namespace
}  // namespace qkv::testing
