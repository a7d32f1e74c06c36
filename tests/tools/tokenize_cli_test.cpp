// `qkv tokenize` with GPT-2's tokenizer files in a model folder: ids on one line, --decode back
// to the text, and refusals naming the argument.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/cli.hpp"
#include "support/gpt3_encoder.hpp"

namespace qkv::testing {
namespace {

TEST(TokenizeCli, EncodesAndDecodes) {
  const temp_dir tmp;
  ASSERT_TRUE(copy_gpt2_tokenizer_files(tmp.path()));
  cli_result r = run_qkv({"tokenize", "--model", tmp.path(), "--text", "Hello world"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "15496 995\n");
  r = run_qkv({"tokenize", "--model", tmp.path(), "--decode", "15496 995 50256"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello world<|endoftext|>\n");
  r = run_qkv({"tokenize", "--model", tmp.path(), "--text", ""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "\n");
}

TEST(TokenizeCli, RefusesBadIdsAndMissingFiles) {
  const temp_dir tmp;
  ASSERT_TRUE(copy_gpt2_tokenizer_files(tmp.path()));
  const std::vector<std::string> base{"tokenize", "--model", tmp.path(), "--decode", "1"};
  expect_refused(base, "--decode", "12 x", {"--decode", "'x'"}, {});
  expect_refused(base, "--decode", "50257", {"--decode", "id 50257", "[0, 50257)"}, {});
  expect_refused(base, "--decode", "-3", {"--decode", "id -3"}, {});
  expect_refused(base, "--model", tmp.file("none"), {"--model", "vocab.json"}, {});
  std::vector<std::string> neither{"tokenize", "--model", tmp.path()};
  const cli_result r = run_qkv(neither);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--text or --decode"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qkv::testing
