// GPT-2 from Hugging Face folders: the golden folders' logits and attention (an independent
// float64 implementation) at each case's tolerances, cached decoding against full forward passes,
// BF16 weights, and the refusals of what does not fit.
#include "qkv/models/gpt2.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "qkv/io/safetensors.hpp"
#include "support/golden.hpp"

namespace qkv::testing {
namespace {

namespace fs = std::filesystem;
using models::gpt2;

std::vector<std::string> gpt2_folders() {
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(data_path("golden/gpt2")))
    if (e.is_directory()) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

class Gpt2Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Gpt2Golden, LogitsAndAttentionMatchTheFloat64Implementation) {
  const std::string dir = GetParam();
  const nlohmann::json c = read_json(dir + "/case.json");
  const gpt2 m = gpt2::load(dir);
  const std::vector<int64_t> ids = io::read_npy_ids(dir + "/input_ids.npy");
  const tensor logits = io::read_npy_float(dir + "/expected_logits_float64.npy");
  const tensor attention = io::read_npy_float(dir + "/expected_attention_float64.npy");
  const models::gpt2_output out = m.forward(ids, true);
  ASSERT_EQ(out.logits.shape(), logits.shape());
  ASSERT_EQ(out.attention->shape(), attention.shape());
  const double logits_tol =
      c["tolerance"]["logits_relative"].get<double>() * std::max(1.0, max_abs(logits));
  EXPECT_LE(max_abs_diff(out.logits, logits), logits_tol);
  EXPECT_LE(max_abs_diff(*out.attention, attention),
            c["tolerance"]["attention_absolute"].get<double>());
  // Without the weights the fused attention runs: the same logits.
  EXPECT_LE(max_abs_diff(m.forward(ids).logits, logits), logits_tol);
}

INSTANTIATE_TEST_SUITE_P(Folders, Gpt2Golden, ::testing::ValuesIn(gpt2_folders()),
                         [](const auto& info) {
                           return test_name(fs::path(info.param).filename().string());
                         });

TEST(Gpt2, DecodeStepsGiveTheRowsOfTheFullForward) {
  for (const std::string& dir : gpt2_folders()) {
    const gpt2 m = gpt2::load(dir);
    const std::vector<int64_t> ids = io::read_npy_ids(dir + "/input_ids.npy");
    const tensor full = m.forward(ids).logits;
    const int64_t V = m.config().vocab;
    models::gpt2_cache cache;
    for (size_t t = 0; t < ids.size(); ++t) {
      const std::vector<float> row = m.decode_step(ids[t], cache);
      const tensor expected({V},
                            std::vector<float>(full.data() + t * V, full.data() + (t + 1) * V));
      EXPECT_LE(max_abs_diff(tensor({V}, row), expected), 2e-5 * std::max(1.0, max_abs(expected)))
          << dir << " position " << t;
    }
  }
}

// Decoding through an f16 or bf16 KV cache: every block's cache holds that type, and the logits
// stay those of the full forward within the rounding of K and V (a decode's exact check against
// the full pass on the same rounded K and V is the layer's: tests/nn/kv_cache_dtype_test.cpp).
TEST(Gpt2, DecodeStepsThroughA16BitCache) {
  for (const std::string& dir : gpt2_folders()) {
    const gpt2 m = gpt2::load(dir);
    const std::vector<int64_t> ids = io::read_npy_ids(dir + "/input_ids.npy");
    const tensor full = m.forward(ids).logits;
    const int64_t V = m.config().vocab;
    for (const dtype type : {dtype::f16, dtype::bf16}) {
      models::gpt2_cache cache{.layers = {}, .kv_dtype = type};
      double diff = 0;
      for (size_t t = 0; t < ids.size(); ++t) {
        const std::vector<float> row = m.decode_step(ids[t], cache);
        const tensor expected({V},
                              std::vector<float>(full.data() + t * V, full.data() + (t + 1) * V));
        diff = std::max(diff, max_abs_diff(tensor({V}, row), expected));
      }
      for (const nn::kv_cache& layer : cache.layers) EXPECT_EQ(layer.type(), type) << dir;
      // bf16 keeps 8 significant bits: K and V within 2^-9 relative.
      EXPECT_LE(diff, 1e-2 * std::max(1.0, max_abs(full))) << dir << " " << to_string(type);
    }
  }
}

int64_t argmax(std::span<const float> v) {
  return std::max_element(v.begin(), v.end()) - v.begin();
}

TEST(Gpt2, GreedyGenerationThroughTheCacheEqualsFullForwardPasses) {
  for (const std::string& dir : gpt2_folders()) {
    const gpt2 m = gpt2::load(dir);
    std::vector<int64_t> by_forward{1, 2, 3}, by_cache = by_forward;
    const int64_t V = m.config().vocab, steps = std::min<int64_t>(m.config().positions - 3, 12);
    for (int64_t n = 0; n < steps; ++n) {
      const tensor logits = m.forward(by_forward).logits;
      by_forward.push_back(argmax({logits.data() + (logits.size(0) - 1) * V, size_t(V)}));
    }
    models::gpt2_cache cache;
    std::vector<float> logits;
    for (const int64_t id : by_cache) logits = m.decode_step(id, cache);
    for (int64_t n = 0; n < steps; ++n) {
      by_cache.push_back(argmax(logits));
      if (n + 1 < steps) logits = m.decode_step(by_cache.back(), cache);
    }
    EXPECT_EQ(by_cache, by_forward) << dir;
    while (cache.length() < m.config().positions) m.decode_step(0, cache);
    EXPECT_THROW(m.decode_step(0, cache), error);  // a full context
  }
}

// The refusal message of loading `tensors` with `config`, or "" when it loads.
std::string load_error(const models::gpt2_config& config, io::named_tensors tensors) {
  try {
    gpt2::from_tensors(config, std::move(tensors), "model.safetensors");
  } catch (const error& e) {
    return e.what();
  }
  return "";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The E = 32, 2-layer folder, whose sizes the refusal tests name.
std::string small_folder() {
  return data_path("golden/gpt2/gpt2_tiny_E32_H2_L2");
}

TEST(Gpt2, RefusesMissingOrMisshapedOrUnexpectedTensors) {
  const std::string dir = small_folder();
  const auto config = models::parse_gpt2_config(read_text(dir + "/config.json"), "config.json");
  const io::named_tensors good = io::read_safetensors(dir + "/model.safetensors");
  ASSERT_EQ(load_error(config, good), "");

  io::named_tensors missing = good;
  missing.erase("h.1.mlp.c_fc.bias");
  std::string e = load_error(config, missing);
  EXPECT_NE(e.find("missing tensor 'h.1.mlp.c_fc.bias' (expected shape [128])"), std::string::npos)
      << e;
  io::named_tensors transposed = good;
  transposed["h.0.attn.c_proj.weight"] = tensor({32, 33});
  e = load_error(config, transposed);
  EXPECT_NE(e.find("'h.0.attn.c_proj.weight' has shape [32, 33], expected [32, 32]"),
            std::string::npos)
      << e;
  io::named_tensors extra = good;
  extra["h.2.ln_1.weight"] = tensor({32});  // a block beyond n_layer
  e = load_error(config, extra);
  EXPECT_NE(e.find("unexpected tensor(s) 'h.2.ln_1.weight'"), std::string::npos) << e;
  models::gpt2_config bigger = config;
  bigger.vocab = 50258;
  e = load_error(bigger, good);
  EXPECT_NE(e.find("'wte.weight' has shape [50257, 32], expected [50258, 32]"), std::string::npos)
      << e;
}

// `tensors` as the bytes of a .safetensors file of BF16 values (each fp32 rounded to the nearest
// bfloat16, ties to even: the dtype of many hub checkpoints); `rounded` receives the values it
// holds, as fp32.
std::string bf16_file(const io::named_tensors& tensors, io::named_tensors& rounded) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : tensors) {
    tensor r(t.shape());
    const size_t begin = data.size();
    for (int64_t i = 0; i < t.numel(); ++i) {
      uint32_t bits = 0;
      std::memcpy(&bits, &t[i], 4);
      const auto b = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
      data.append(reinterpret_cast<const char*>(&b), 2);
      const uint32_t back = uint32_t{b} << 16;
      std::memcpy(&r[i], &back, 4);
    }
    header[name] = {
        {"dtype", "BF16"}, {"shape", t.shape()}, {"data_offsets", {begin, data.size()}}};
    rounded.emplace(name, std::move(r));
  }
  const std::string h = header.dump();
  const uint64_t n = h.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + h + data;
}

// BF16 weights load as the fp32 values they stand for: the same logits as those values in F32.
TEST(Gpt2, Bf16WeightsGiveTheLogitsOfTheirFp32Values) {
  const std::string dir = small_folder();
  const auto config = models::parse_gpt2_config(read_text(dir + "/config.json"), "config.json");
  io::named_tensors rounded;
  const std::string bytes = bf16_file(io::read_safetensors(dir + "/model.safetensors"), rounded);
  const gpt2 from_bf16 =
      gpt2::from_tensors(config, io::parse_safetensors(bytes, "bf16"), "model.safetensors");
  const gpt2 from_f32 = gpt2::from_tensors(config, rounded, "model.safetensors");
  const std::vector<int64_t> ids = io::read_npy_ids(dir + "/input_ids.npy");
  const tensor logits = from_bf16.forward(ids).logits;
  EXPECT_EQ(max_abs_diff(logits, from_f32.forward(ids).logits), 0.0);
  // Rounding the weights to 8 significant bits (relative error up to 2^-9) moves the logits by
  // about 0.7 % of their largest (measured), within ten such roundings.
  const tensor golden = io::read_npy_float(dir + "/expected_logits_float64.npy");
  EXPECT_GT(max_abs_diff(logits, golden), 0.0);
  EXPECT_LE(max_abs_diff(logits, golden), 10 * 0x1p-9 * max_abs(golden));
}

TEST(Gpt2, RefusesConfigsThatDoNotFit) {
  const std::string text = read_text(small_folder() + "/config.json");
  const auto refusal = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = nlohmann::json::parse(text);
    if (value.is_discarded())
      j.erase(key);
    else
      j[key] = value;
    try {
      models::parse_gpt2_config(j.dump(), "config.json");
    } catch (const error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const nlohmann::json erase = nlohmann::json::value_t::discarded;
  EXPECT_NE(refusal("model_type", "bert").find("model_type: expected \"gpt2\""), std::string::npos);
  EXPECT_NE(refusal("model_type", erase).find("model_type: missing"), std::string::npos);
  EXPECT_NE(refusal("activation_function", "swish").find("'swish' is not supported"),
            std::string::npos);
  EXPECT_NE(refusal("n_head", 3).find("n_head: must divide n_embd = 32"), std::string::npos);
  EXPECT_NE(refusal("n_layer", 0).find("n_layer: must be a positive integer"), std::string::npos);
  EXPECT_NE(refusal("n_embd", "32").find("n_embd: must be a positive integer"), std::string::npos);
  EXPECT_NE(refusal("layer_norm_epsilon", -1).find("layer_norm_epsilon"), std::string::npos);
  EXPECT_NE(refusal("scale_attn_weights", false).find("scale_attn_weights"), std::string::npos);
  EXPECT_NE(refusal("add_cross_attention", true).find("add_cross_attention"), std::string::npos);
  EXPECT_EQ(refusal("n_inner", nullptr), "");
  EXPECT_EQ(models::parse_gpt2_config(text, "c").inner, 4 * 32);
  EXPECT_EQ(models::parse_gpt2_config(text, "c").act, nn::activation::gelu_tanh);
  try {
    models::parse_gpt2_config("{\"n_embd\": 3", "config.json");
    ADD_FAILURE() << "a truncated config.json was accepted";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("'config.json': not valid JSON"), std::string::npos);
  }
}

TEST(Gpt2, RefusesIdsOutOfRangeAndSequencesLongerThanThePositions) {
  const std::string dir = gpt2_folders().front();
  const gpt2 m = gpt2::load(dir);
  const std::vector<int64_t> too_long(static_cast<size_t>(m.config().positions) + 1, 0);
  EXPECT_THROW(m.forward(too_long), error);
  EXPECT_THROW(m.forward(std::vector<int64_t>{}), error);
  const std::vector<int64_t> bad{0, m.config().vocab};
  EXPECT_THROW(m.forward(bad), error);
  const std::vector<int64_t> negative{-1};
  EXPECT_THROW(m.forward(negative), error);
  EXPECT_THROW(gpt2::load(dir + "/no-such-folder"), error);
}

}  // namespace
}  // namespace qkv::testing
