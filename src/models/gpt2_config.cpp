// config.json of a Hugging Face GPT-2 folder: the keys GPT2Config writes, checked one by one, so
// that a folder of another architecture or with options that change the math is refused rather
// than run wrongly.
#include <cmath>
#include <nlohmann/json.hpp>

#include "qkv/error.hpp"
#include "qkv/models/gpt2.hpp"

namespace qkv::models {
namespace {

using json = nlohmann::json;

[[noreturn]] void refuse(const std::string& source, const std::string& key,
                         const std::string& why) {
  throw error("'" + source + "': " + key + ": " + why);
}

int64_t positive_int(const json& j, const std::string& source, const std::string& key) {
  if (!j.contains(key)) refuse(source, key, "missing");
  const json& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    refuse(source, key, "must be a positive integer, got " + v.dump());
  return v.get<int64_t>();
}

// A boolean option that defaults to `fallback` when absent.
bool flag(const json& j, const std::string& source, const std::string& key, bool fallback) {
  if (!j.contains(key)) return fallback;
  if (!j.at(key).is_boolean())
    refuse(source, key, "must be true or false, got " + j.at(key).dump());
  return j.at(key).get<bool>();
}

// transformers' ACT2FN names of the activations the library has.
nn::activation activation_of(const std::string& name, const std::string& source) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return nn::activation::gelu_tanh;
  if (name == "gelu") return nn::activation::gelu;
  if (name == "relu") return nn::activation::relu;
  refuse(source, "activation_function",
         "'" + name + "' is not supported (gelu_new, gelu_pytorch_tanh, gelu, relu are)");
}

}  // namespace

gpt2_config parse_gpt2_config(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw error("'" + source + "': not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw error("'" + source + "': expected a JSON object, got " + j.type_name());
  if (!j.contains("model_type") || !j.at("model_type").is_string())
    refuse(source, "model_type", "missing (a GPT-2 folder says \"gpt2\")");
  if (j.at("model_type") != "gpt2")
    refuse(source, "model_type", "expected \"gpt2\", got " + j.at("model_type").dump());

  gpt2_config c;
  c.vocab = positive_int(j, source, "vocab_size");
  c.positions = positive_int(j, source, "n_positions");
  c.embed = positive_int(j, source, "n_embd");
  c.heads = positive_int(j, source, "n_head");
  c.layers = positive_int(j, source, "n_layer");
  if (c.embed % c.heads != 0)
    refuse(source, "n_head",
           "must divide n_embd = " + std::to_string(c.embed) + ", got " + std::to_string(c.heads));
  c.inner = j.contains("n_inner") && !j.at("n_inner").is_null() ? positive_int(j, source, "n_inner")
                                                                : 4 * c.embed;
  if (j.contains("layer_norm_epsilon")) {
    const json& e = j.at("layer_norm_epsilon");
    if (!e.is_number() || !(e.get<double>() > 0.0) || !std::isfinite(e.get<double>()))
      refuse(source, "layer_norm_epsilon", "must be a finite number > 0, got " + e.dump());
    c.layer_norm_eps = e.get<float>();
  }
  if (j.contains("activation_function")) {
    if (!j.at("activation_function").is_string())
      refuse(source, "activation_function",
             "must be a string, got " + j.at("activation_function").dump());
    c.act = activation_of(j.at("activation_function").get<std::string>(), source);
  }
  if (!flag(j, source, "scale_attn_weights", true))
    refuse(source, "scale_attn_weights", "false (unscaled scores) is not supported");
  if (flag(j, source, "scale_attn_by_inverse_layer_idx", false))
    refuse(source, "scale_attn_by_inverse_layer_idx", "true is not supported");
  if (flag(j, source, "add_cross_attention", false))
    refuse(source, "add_cross_attention", "true is not supported (decoder-only GPT-2 is)");
  c.tied_head = flag(j, source, "tie_word_embeddings", true);
  return c;
}

}  // namespace qkv::models
