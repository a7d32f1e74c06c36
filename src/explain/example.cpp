// Explain specs (known keys only, every number a finite float32) and the compiled-in "Write a
// poem" example (example.hpp).
#include "qkv/explain/example.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <nlohmann/json.hpp>

#include "io/strict_json.hpp"
#include "qkv/error.hpp"
#include "write_a_poem.hpp"

namespace qkv::explain {
namespace {

// The keys a spec may hold: the inputs; the text shown; a layout the reader checks; and
// results recorded beside the inputs by the tool that made the file, which qkv does not read.
// clang-format off
constexpr const char* known_keys[] = {
    "tokens", "encodings", "W_q_weight", "W_k_weight", "W_v_weight", "scale",  // inputs
    "title", "description", "weight_layout_note",                              // text
    "d_model", "row_dim", "col_dim",                                           // layout
    "fp32", "float64", "check_against_lesson"};                               // recorded
// clang-format on

bool is_known(const std::string& key) {
  return std::find(std::begin(known_keys), std::end(known_keys), key) != std::end(known_keys);
}

std::string known_key_list() {
  std::string list;
  for (const char* k : known_keys) list += (list.empty() ? "" : ", ") + std::string(k);
  return list;
}

// A JSON number that a float32 holds: finite and within ±FLT_MAX.
float finite_float(const nlohmann::json& value, const std::string& where) {
  if (!value.is_number()) throw error(where, "expected a number, got " + value.dump());
  const double v = value.get<double>();
  if (!std::isfinite(v) || std::abs(v) > FLT_MAX)
    throw error(where + " = " + value.dump() +
                ": not a finite float32 (the largest magnitude is about 3.4e38)");
  return static_cast<float>(v);
}

tensor matrix_from_json(const nlohmann::json& spec, const char* key) {
  if (!spec.contains(key)) throw error(key, "missing");
  const nlohmann::json& rows = spec.at(key);
  if (!rows.is_array() || rows.empty() || !rows[0].is_array() || rows[0].empty())
    throw error(key, "expected a non-empty list of rows");
  const int64_t n = static_cast<int64_t>(rows.size()), m = static_cast<int64_t>(rows[0].size());
  tensor t({n, m});
  for (int64_t i = 0; i < n; ++i) {
    if (!rows[i].is_array() || rows[i].size() != rows[0].size())
      throw error(key, "row " + std::to_string(i) + " has " + std::to_string(rows[i].size()) +
                           " numbers, row 0 has " + std::to_string(m));
    for (int64_t j = 0; j < m; ++j)
      t[i * m + j] = finite_float(
          rows[i][j], std::string(key) + "[" + std::to_string(i) + "][" + std::to_string(j) + "]");
  }
  return t;
}

// d_model, row_dim and col_dim, when given, must describe the layout qkv reads: rows are
// tokens (row_dim 0), columns features (col_dim 1), d_model the columns of the encodings.
void check_layout(const nlohmann::json& spec, const tensor& x) {
  const auto expect = [&](const char* key, int64_t value, const char* meaning) {
    if (spec.contains(key) &&
        (!spec.at(key).is_number_integer() || spec.at(key).get<int64_t>() != value))
      throw error(std::string(key) + " = " + spec.at(key).dump() + ": expected " +
                  std::to_string(value) + " (" + meaning + ")");
  };
  expect("row_dim", 0, "one row per token");
  expect("col_dim", 1, "one column per feature");
  expect("d_model", x.size(1), "the columns of encodings");
}

}  // namespace

float checked_scale(double scale, const std::string& what) {
  if (!std::isfinite(scale) || scale <= 0 || scale > FLT_MAX)
    throw error(what + " = " + std::to_string(scale) + ": must be a finite float32 > 0");
  return static_cast<float>(scale);
}

example parse_example(const std::string& json_text, const std::string& source) {
  try {
    const nlohmann::json spec = io::parse_json_strictly(json_text);
    if (!spec.is_object()) throw error("expected a JSON object");
    for (const auto& [key, value] : spec.items())
      if (!is_known(key))
        throw error("unknown key '" + key + "' (a spec may hold " + known_key_list() + ")");
    example in;
    const auto string_of = [&](const char* key) {
      if (!spec.contains(key)) return std::string();
      if (!spec.at(key).is_string()) throw error(key, "expected a string");
      return spec.at(key).get<std::string>();
    };
    in.title = string_of("title");
    if (in.title.empty()) in.title = string_of("description");
    if (spec.contains("tokens")) {
      if (!spec.at("tokens").is_array()) throw error("tokens", "expected a list of strings");
      for (const auto& token : spec.at("tokens")) {
        if (!token.is_string()) throw error("tokens", "expected a list of strings");
        in.tokens += token.get<std::string>() + " ";
      }
    }
    in.x = matrix_from_json(spec, "encodings");
    in.wq = matrix_from_json(spec, "W_q_weight");
    in.wk = matrix_from_json(spec, "W_k_weight");
    in.wv = matrix_from_json(spec, "W_v_weight");
    check_layout(spec, in.x);
    if (spec.contains("scale")) {
      if (!spec.at("scale").is_number()) throw error("scale", "expected a number");
      in.scale = checked_scale(spec.at("scale").get<double>(), "scale");
    }
    return in;
  } catch (const nlohmann::json::exception& e) {
    throw error(source + ": not a valid explain spec (" + e.what() + ")");
  } catch (const error& e) {
    throw error(source + ": " + e.what());
  }
}

example write_a_poem() {
  example in = parse_example(write_a_poem_json, "the embedded example");
  in.title =
      "Example: \"Write a poem\" (StatQuest, Attention in Transformers; weights from PyTorch, "
      "torch.manual_seed(42))";
  return in;
}

}  // namespace qkv::explain
