// Explain specs and the compiled-in "Write a poem" example (example.hpp).
#include "qkv/explain/example.hpp"

#include <nlohmann/json.hpp>

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
    for (int64_t j = 0; j < m; ++j) t[i * m + j] = rows[i][j].get<float>();
  }
  return t;
}

}  // namespace

example parse_example(const std::string& json_text, const std::string& source) {
  try {
    const nlohmann::json spec = nlohmann::json::parse(json_text);
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
