// `qkv logits` on the golden GPT-2 folders (ids from .npy, <i8 and <i4; text through GPT-2's
// tokenizer), and its refusals: exit 2, no output file, a message naming the argument.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qkv/io/npy.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/models/gpt2.hpp"
#include "qkv/text/gpt2_tokenizer.hpp"
#include "support/cli.hpp"
#include "support/golden.hpp"
#include "support/gpt3_encoder.hpp"

namespace qkv::testing {
namespace {

namespace fs = std::filesystem;

// A 1-D integer .npy file (descr "<i8" or "<i4").
void write_ids(const std::string& path, const std::vector<int64_t>& ids, const std::string& descr) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" +
                       std::to_string(ids.size()) + ",), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  for (const int64_t id : ids) {
    if (descr == "<i8") {
      out.write(reinterpret_cast<const char*>(&id), 8);
    } else {
      const auto v = static_cast<int32_t>(id);
      out.write(reinterpret_cast<const char*>(&v), 4);
    }
  }
}

std::string golden_folder(const std::string& name) {
  return data_path("golden/gpt2/" + name);
}

// A copy of the E = 32 folder (vocab 50257) with GPT-2's tokenizer files beside it.
void copy_folder_with_tokenizer(const std::string& to) {
  fs::copy(golden_folder("gpt2_tiny_E32_H2_L2"), to);
  ASSERT_TRUE(copy_gpt2_tokenizer_files(to));
}

TEST(LogitsCli, MatchesEveryGoldenFolderWithI8AndI4Ids) {
  for (const std::string name : {"gpt2_tiny_E24_H3_L1_prefixed_f16", "gpt2_tiny_E32_H2_L2"}) {
    const std::string dir = golden_folder(name);
    const nlohmann::json c = nlohmann::json::parse(std::ifstream(dir + "/case.json"));
    const tensor logits = io::read_npy_float(dir + "/expected_logits_float64.npy");
    const tensor attention = io::read_npy_float(dir + "/expected_attention_float64.npy");
    const temp_dir tmp;
    write_ids(tmp.file("ids4.npy"), io::read_npy_ids(dir + "/input_ids.npy"), "<i4");
    for (const std::string& ids : {dir + "/input_ids.npy", tmp.file("ids4.npy")}) {
      const cli_result r = run_qkv({"logits", "--model", dir, "--ids", ids, "-o", tmp.file("l.npy"),
                                    "--attention", tmp.file("a.npy")});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_LE(max_abs_diff(io::read_npy_float(tmp.file("l.npy")), logits),
                c["tolerance"]["logits_relative"].get<double>() * std::max(1.0, max_abs(logits)))
          << name;
      EXPECT_LE(max_abs_diff(io::read_npy_float(tmp.file("a.npy")), attention),
                c["tolerance"]["attention_absolute"].get<double>())
          << name;
    }
  }
}

TEST(LogitsCli, TextGoesThroughTheFoldersTokenizer) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  copy_folder_with_tokenizer(dir);
  write_ids(tmp.file("ids.npy"), {15496, 995}, "<i8");  // "Hello world"
  ASSERT_EQ(run_qkv({"logits", "--model", dir, "--text", "Hello world", "-o", tmp.file("t.npy")})
                .exit_code,
            0);
  ASSERT_EQ(
      run_qkv({"logits", "--model", dir, "--ids", tmp.file("ids.npy"), "-o", tmp.file("i.npy")})
          .exit_code,
      0);
  const tensor by_text = io::read_npy_float(tmp.file("t.npy"));
  EXPECT_EQ(by_text.shape(), (shape_t{2, 50257}));
  EXPECT_EQ(max_abs_diff(by_text, io::read_npy_float(tmp.file("i.npy"))), 0.0);
}

TEST(LogitsCli, RefusesBadInputWithoutWritingAnything) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  copy_folder_with_tokenizer(dir);
  const std::string out = tmp.file("out.npy"), att = tmp.file("att.npy");
  write_ids(tmp.file("ok.npy"), {1, 2, 3}, "<i8");
  const std::vector<std::string> base{
      "logits", "--model", dir, "--ids", tmp.file("ok.npy"), "-o", out, "--attention", att};

  write_ids(tmp.file("range.npy"), {1, 50257}, "<i8");
  expect_refused(base, "--ids", tmp.file("range.npy"),
                 {"--ids", "id 50257 at position 1", "[0, 50257)"}, {out, att});
  write_ids(tmp.file("negative.npy"), {-1}, "<i4");
  expect_refused(base, "--ids", tmp.file("negative.npy"), {"--ids", "id -1"}, {out, att});
  write_ids(tmp.file("long.npy"), std::vector<int64_t>(65, 1), "<i8");
  expect_refused(base, "--ids", tmp.file("long.npy"), {"--ids", "65 tokens", "n_positions = 64"},
                 {out, att});
  io::write_npy(tmp.file("float.npy"), tensor({2}, {1.0f, 2.0f}));
  expect_refused(base, "--ids", tmp.file("float.npy"), {"--ids", "<i8 or <i4"}, {out, att});

  std::vector<std::string> text = base;
  text[3] = "--text";
  std::string long_text;
  for (int i = 0; i < 70; ++i) long_text += " word";
  expect_refused(text, "--text", long_text, {"--text", "70 tokens", "n_positions = 64"},
                 {out, att});
  expect_refused(text, "--text", "", {"--text", "0 tokens"}, {out, att});
  std::vector<std::string> both = base;
  both.insert(both.end(), {"--text", "hi"});
  expect_refused(both, "--model", dir, {"--text"}, {out, att});

  // The folder itself: a missing file, a corrupt config.json, a mis-shaped tensor.
  const std::string bad = tmp.file("bad");
  fs::copy(dir, bad);
  fs::remove(bad + "/model.safetensors");
  expect_refused(base, "--model", bad, {"--model", "model.safetensors"}, {out, att});
  fs::remove(bad + "/config.json");
  expect_refused(base, "--model", bad, {"--model", "config.json"}, {out, att});
  std::ofstream(bad + "/config.json") << "{\"model_type\": \"gpt2\", \"n_embd\": ";
  expect_refused(base, "--model", bad, {"--model", "config.json", "not valid JSON"}, {out, att});
  fs::copy_file(dir + "/config.json", bad + "/config.json", fs::copy_options::overwrite_existing);
  io::named_tensors w = io::read_safetensors(dir + "/model.safetensors");
  w["h.1.mlp.c_proj.weight"] = tensor({32, 128});  // transposed
  io::write_safetensors(bad + "/model.safetensors", w);
  expect_refused(base, "--model", bad,
                 {"--model", "'h.1.mlp.c_proj.weight' has shape [32, 128], expected [128, 32]"},
                 {out, att});
  fs::remove(dir + "/merges.txt");
  expect_refused(text, "--text", "hello", {"--model", "merges.txt"}, {out, att});
}

// `qkv generate --model` (generate_model.cpp) shares the folder loading: greedy sampling through
// the KV cache prints what greedy decoding by full forward passes of the library gives.
TEST(GenerateModelCli, GreedyTokensEqualFullForwardPassesAndBadFoldersAreRefused) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  copy_folder_with_tokenizer(dir);
  const std::string prompt = "jane visits africa";
  const cli_result r = run_qkv(
      {"generate", "--model", dir, "--prompt", prompt, "--tokens", "6", "--temperature", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto m = models::gpt2::load(dir);
  const auto tok = text::gpt2_tokenizer::load(dir + "/vocab.json", dir + "/merges.txt");
  std::vector<int64_t> ids = tok.encode(prompt);
  const size_t prompt_tokens = ids.size();
  const int64_t V = m.config().vocab;
  for (int n = 0; n < 6; ++n) {
    const tensor logits = m.forward(ids).logits;
    const float* last = logits.data() + (logits.size(0) - 1) * V;
    ids.push_back(std::max_element(last, last + V) - last);
  }
  const std::vector<int64_t> generated(ids.begin() + static_cast<long>(prompt_tokens), ids.end());
  EXPECT_EQ(r.out, prompt + tok.decode(generated) + "\n");

  fs::remove(dir + "/vocab.json");
  expect_refused({"generate", "--model", dir, "--tokens", "2"}, "--prompt", "hi",
                 {"--model", "vocab.json"}, {});
  expect_refused({"generate", "--model", dir, "--checkpoint", "c.safetensors"}, "--prompt", "hi",
                 {"--checkpoint or --model"}, {});
}

// Sampling: top-k 1 is greedy at any temperature; a seed gives the same text again and another
// seed another. Past n_positions (64 here) the cache restarts on the last half of the window:
// greedy decoding by full forward passes over that window gives the same tokens.
TEST(GenerateModelCli, TopKTemperatureSeedAndTheWindowRestart) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  copy_folder_with_tokenizer(dir);
  const auto generate = [&](const std::string& prompt, const std::vector<std::string>& more) {
    std::vector<std::string> args{"generate", "--model", dir, "--prompt", prompt, "--threads", "1"};
    args.insert(args.end(), more.begin(), more.end());
    const cli_result r = run_qkv(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  const std::string short_prompt = "jane visits africa";
  const std::string greedy = generate(short_prompt, {"--tokens", "8", "--temperature", "0"});
  EXPECT_EQ(generate(short_prompt, {"--tokens", "8", "--temperature", "5", "--top-k", "1"}),
            greedy);
  const std::vector<std::string> seed1{"--tokens", "8", "--temperature", "1", "--seed", "1"};
  const std::string sampled = generate(short_prompt, seed1);
  EXPECT_EQ(generate(short_prompt, seed1), sampled);
  EXPECT_NE(generate(short_prompt, {"--tokens", "8", "--temperature", "1", "--seed", "2"}),
            sampled);
  EXPECT_NE(sampled, greedy);

  // A prompt of 60 tokens: the 5th generated token no longer fits the 64 positions.
  std::string prompt;
  for (int i = 0; i < 12; ++i) prompt += " jane visits africa";
  const auto m = models::gpt2::load(dir);
  const auto tok = text::gpt2_tokenizer::load(dir + "/vocab.json", dir + "/merges.txt");
  std::vector<int64_t> ids = tok.encode(prompt);
  ASSERT_EQ(ids.size(), 60u);
  const size_t context = 64;
  ASSERT_EQ(m.config().positions, static_cast<int64_t>(context));
  const int64_t V = m.config().vocab, tokens = 8;
  size_t start = 0;
  for (int64_t n = 0; n < tokens; ++n) {
    if (ids.size() - start > context) start = ids.size() - context / 2;
    const tensor logits = m.forward({ids.data() + start, ids.size() - start}).logits;
    const float* last = logits.data() + (logits.size(0) - 1) * V;
    ids.push_back(std::max_element(last, last + V) - last);
  }
  ASSERT_GT(start, 0u);  // the window did restart
  const std::vector<int64_t> generated(ids.end() - tokens, ids.end());
  EXPECT_EQ(generate(prompt, {"--tokens", std::to_string(tokens), "--temperature", "0"}),
            prompt + tok.decode(generated) + "\n");

  const std::vector<std::string> sampling{
      "generate", "--model", dir, "--prompt", "hi", "--tokens", "2", "--temperature", "1"};
  expect_refused(sampling, "--temperature", "-1", {"--temperature", ">= 0"}, {});
  expect_refused(sampling, "--top-k", "-2", {"--top-k", ">= 0"}, {});
}

// --kv-dtype f16 or bf16: the greedy tokens are those of greedy decoding through a cache of that
// type by the library (so the flag reaches the cache); f32 is the default; another name exits 2
// naming the flag.
TEST(GenerateModelCli, KvDtypeChoosesWhatTheCacheStores) {
  const temp_dir tmp;
  const std::string dir = tmp.file("gpt2");
  copy_folder_with_tokenizer(dir);
  const std::string prompt = "jane visits africa";
  const std::vector<std::string> greedy{"generate",      "--model", dir,        "--prompt", prompt,
                                        "--temperature", "0",       "--tokens", "6"};
  const auto m = models::gpt2::load(dir);
  const auto tok = text::gpt2_tokenizer::load(dir + "/vocab.json", dir + "/merges.txt");
  const int64_t V = m.config().vocab;
  for (const dtype type : {dtype::f16, dtype::bf16}) {
    std::vector<std::string> args = greedy;
    args.insert(args.end(), {"--kv-dtype", to_string(type)});
    const cli_result r = run_qkv(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    models::gpt2_cache cache{.layers = {}, .kv_dtype = type};
    std::vector<int64_t> ids = tok.encode(prompt);
    std::vector<float> logits;
    for (const int64_t id : ids) logits = m.decode_step(id, cache);
    std::vector<int64_t> generated;
    for (int n = 0; n < 6; ++n) {
      generated.push_back(std::max_element(logits.begin(), logits.end()) - logits.begin());
      if (n < 5) logits = m.decode_step(generated.back(), cache);
    }
    ASSERT_EQ(static_cast<int64_t>(logits.size()), V);
    EXPECT_EQ(cache.layers.front().type(), type);
    EXPECT_EQ(r.out, prompt + tok.decode(generated) + "\n") << to_string(type);
  }
  std::vector<std::string> f32 = greedy;
  f32.insert(f32.end(), {"--kv-dtype", "f32"});
  EXPECT_EQ(run_qkv(f32).out, run_qkv(greedy).out);
  expect_refused(greedy, "--kv-dtype", "fp8", {"--kv-dtype", "f32, f16 or bf16", "'fp8'"}, {});
  expect_refused(greedy, "--kv-dtype", "F16", {"--kv-dtype", "'F16'"}, {});
}

// GPT-2's tokenizer files go only into folders of GPT-2's vocabulary.
TEST(Gpt2TestFolders, TokenizerFilesGoOnlyBesideGpt2sVocabulary) {
  const temp_dir tmp;
  fs::copy(golden_folder("gpt2_tiny_E24_H3_L1_prefixed_f16"), tmp.file("v300"));
  EXPECT_NONFATAL_FAILURE(EXPECT_FALSE(copy_gpt2_tokenizer_files(tmp.file("v300"))),
                          "vocab_size 50257");
  EXPECT_FALSE(fs::exists(tmp.file("v300/vocab.json")));
}

}  // namespace
}  // namespace qkv::testing
