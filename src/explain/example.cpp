// Explain specs and the compiled-in "Write a poem" example (example.hpp).
#include "qkv/explain/example.hpp"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/strict_json.hpp"
#include "qkv/error.hpp"
#include "write_a_poem.hpp"

namespace qkv::explain {
namespace {

tensor matrix_from_json(const nlohmann::json& spec, const char* key) {
  const nlohmann::json& rows = spec.at(key);
  if (!rows.is_array() || rows.empty() || !rows[0].is_array() || rows[0].empty())
    throw error(std::string(key) + ": expected a non-empty list of rows");
  const int64_t n = static_cast<int64_t>(rows.size()), m = static_cast<int64_t>(rows[0].size());
  tensor t({n, m});
  for (int64_t i = 0; i < n; ++i) {
    if (rows[i].size() != rows[0].size())
      throw error(std::string(key) + ": row " + std::to_string(i) + " has " +
                  std::to_string(rows[i].size()) + " numbers, row 0 has " + std::to_string(m));
    for (int64_t j = 0; j < m; ++j) {
      // Checked as a double: a value beyond fp32 would become inf (and print as null).
      const nlohmann::json& v = rows[i][j];
      const double x = v.is_number() ? v.get<double>() : NAN;
      if (!(std::abs(x) <= std::numeric_limits<float>::max()))
        throw error(std::string(key) + ": entry [" + std::to_string(i) + "][" + std::to_string(j) +
                    "] = " + v.dump() + " is not a finite fp32 number");
      t[i * m + j] = static_cast<float>(x);
    }
  }
  return t;
}

}  // namespace

example parse_example(const std::string& json_text, const std::string& source) {
  try {
    const nlohmann::json spec = io::parse_json_strictly(json_text);
    if (!spec.is_object()) throw error("expected a JSON object");
    example in;
    in.title = spec.value("title", "");
    if (spec.contains("tokens"))
      for (const auto& token : spec.at("tokens")) in.tokens += token.get<std::string>() + " ";
    in.x = matrix_from_json(spec, "encodings");
    in.wq = matrix_from_json(spec, "W_q_weight");
    in.wk = matrix_from_json(spec, "W_k_weight");
    in.wv = matrix_from_json(spec, "W_v_weight");
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
