// Loading the PyTorch golden cases (tests/data/golden, schema in its README) and comparing
// results with docs/contracts.md section 3's tolerances.
#pragma once

#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <ostream>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qkv/attention.hpp"
#include "qkv/tensor.hpp"

namespace qkv::testing {

std::string data_path(const std::string& relative);

struct golden_case {
  std::string id, kind, category;
  std::string file;  // the case's JSON file
  // The parsed file, read on first use and shared by copies made after that.
  const nlohmann::json& data() const;

  bool has_input(const std::string& name) const;
  tensor input(const std::string& name) const;
  bool_tensor input_bool(const std::string& name) const;
  bool has_expected(const std::string& name) const;
  tensor expected(const std::string& name) const;
  // The inputs, weights and params as sdpa options (scale, causal, mask), for sdpa cases.
  sdpa_options sdpa_options_for() const;
  // The "weights" object under PyTorch's state_dict names (the golden MHA files spell
  // out_proj_weight/out_proj_bias with an underscore where the state_dict has a dot).
  std::map<std::string, tensor> state_dict() const;

 private:
  mutable std::shared_ptr<const nlohmann::json> json_;
};

// gtest prints a case as its id (in test listings and failure messages).
inline void PrintTo(const golden_case& c, std::ostream* os) {
  *os << c.id;
}

// Every golden case of the given kind ("sdpa", "sdpa_grad", "mha", ...), sorted by id.
std::vector<golden_case> load_golden(const std::string& kind);
// The cases of several kinds, in the order given.
std::vector<golden_case> load_golden(std::initializer_list<const char*> kinds);

// A gtest name from any text: every character that is not a letter or digit becomes '_'.
std::string test_name(std::string text);
// gtest's parameter-name generator for suites over golden cases: the case id.
inline std::string golden_case_name(const ::testing::TestParamInfo<golden_case>& info) {
  return test_name(info.param.id);
}

// A float tensor from a golden TENSOR object (non-finite values are strings).
tensor tensor_from_json(const nlohmann::json& t);
bool_tensor bool_tensor_from_json(const nlohmann::json& t);

// max |a - b| over all elements, where equal infinities and NaN-vs-NaN count as 0 and any other
// mismatch of non-finite values as +inf.
double max_abs_diff(const tensor& a, const tensor& b);
double max_abs(const tensor& a);
// docs/contracts.md section 3's bound: base · max(1, max|expected|), or base · max|expected| (no
// floor of 1) for category g_tiny.
double golden_tolerance(const golden_case& c, const tensor& expected, double base);
// PyTorch leaves rows with no visible key NaN; our contract gives 0 there.
tensor nan_to_zero(tensor t);

// Writes a golden tensor to a .npy file (float as <f4, bool as |b1).
void write_golden_npy(const nlohmann::json& t, const std::string& path);
// Writes the case's inputs among `names` (those it has) to `dir`/<name>.npy and returns the qkv
// flags that pass them: "--<name with '-' for '_'>" and the path, for each.
std::vector<std::string> golden_input_flags(const golden_case& c, const std::string& dir,
                                            const std::vector<std::string>& names);
// The same for every input of the case.
std::vector<std::string> golden_input_flags(const golden_case& c, const std::string& dir);

}  // namespace qkv::testing
