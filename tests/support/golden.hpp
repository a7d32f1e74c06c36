// Loading the PyTorch golden cases (tests/data/golden, schema in its README) and comparing
// results with DESIGN section 3's tolerances.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qkv/attention.hpp"
#include "qkv/tensor.hpp"

namespace qkv::testing {

std::string data_path(const std::string& relative);

struct golden_case {
  std::string id, kind, category;
  nlohmann::json json;

  bool has_input(const std::string& name) const;
  tensor input(const std::string& name) const;
  bool_tensor input_bool(const std::string& name) const;
  bool has_expected(const std::string& name) const;
  tensor expected(const std::string& name) const;
  // The inputs, weights and params as sdpa options (scale, causal, mask), for sdpa cases.
  sdpa_options sdpa_options_for() const;
};

// Every golden case of the given kind ("sdpa", "sdpa_grad", "mha", ...), sorted by id.
std::vector<golden_case> load_golden(const std::string& kind);

// A float tensor from a golden TENSOR object (non-finite values are strings).
tensor tensor_from_json(const nlohmann::json& t);
bool_tensor bool_tensor_from_json(const nlohmann::json& t);

// max |a - b| over all elements, where equal infinities and NaN-vs-NaN count as 0 and any other
// mismatch of non-finite values as +inf.
double max_abs_diff(const tensor& a, const tensor& b);
double max_abs(const tensor& a);

// Writes a golden tensor to a .npy file (float as <f4, bool as |b1).
void write_golden_npy(const nlohmann::json& t, const std::string& path);

}  // namespace qkv::testing
