// The StatQuest "Write a poem" example (tests/data/examples/statquest_write_a_poem.json): its
// encodings, weights and PyTorch's fp32/float64 intermediates, as tensors for the tests.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "qkv/tensor.hpp"
#include "support/golden.hpp"

namespace qkv::testing {

inline nlohmann::json load_write_a_poem() {
  std::ifstream in(data_path("examples/statquest_write_a_poem.json"));
  return nlohmann::json::parse(in);
}

// A list of rows [[..], [..]] as a [rows, cols] tensor.
inline tensor matrix_from_json(const nlohmann::json& rows) {
  const int64_t n = static_cast<int64_t>(rows.size()), m = static_cast<int64_t>(rows.at(0).size());
  tensor t({n, m});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) t[i * m + j] = rows.at(i).at(j).get<float>();
  return t;
}

}  // namespace qkv::testing
