// Named parameters as PyTorch's module.state_dict() names them, and the strict loading that
// checks every name and shape (load_state_dict(strict=True)), saying which one is wrong.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include "qkv/tensor.hpp"

namespace qkv::nn {

using state_dict = std::map<std::string, tensor>;

// Hands out the tensors of a state_dict one name at a time. `source` (a file name, or empty)
// and the module name prefix every error message.
class state_dict_reader {
 public:
  state_dict_reader(const state_dict& dict, std::string source);

  bool contains(const std::string& name) const { return dict_.count(name) != 0; }
  // The tensor `name`, which must exist and have `shape`; throws qkv::error otherwise.
  tensor take(const std::string& name, const shape_t& shape);
  // Like take, but a missing tensor gives nullopt (e.g. a layer built without bias).
  std::optional<tensor> take_optional(const std::string& name, const shape_t& shape);
  // The shape of `name`, which must exist and have rank `rank` (to infer sizes before take).
  const shape_t& shape_of(const std::string& name, size_t rank) const;
  // Throws naming the tensors that were never taken (unexpected keys).
  void finish() const;

  [[noreturn]] void fail(const std::string& why) const;

 private:
  const state_dict& dict_;
  std::string source_;
  std::set<std::string> taken_;
};

}  // namespace qkv::nn
