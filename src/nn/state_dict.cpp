// Strict state_dict loading: every expected name present with its shape, nothing left over.
#include "qkv/nn/state_dict.hpp"

#include "qkv/error.hpp"

namespace qkv::nn {

state_dict_reader::state_dict_reader(const state_dict& dict, std::string source)
    : dict_(dict), source_(std::move(source)) {}

void state_dict_reader::fail(const std::string& why) const {
  throw error("weights", (source_.empty() ? std::string() : "'" + source_ + "': ") + why);
}

const shape_t& state_dict_reader::shape_of(const std::string& name, size_t rank) const {
  const auto it = dict_.find(name);
  if (it == dict_.end()) fail("missing tensor '" + name + "'");
  if (it->second.shape().size() != rank)
    fail("tensor '" + name + "' has shape " + to_string(it->second.shape()) + ", expected rank " +
         std::to_string(rank));
  return it->second.shape();
}

tensor state_dict_reader::take(const std::string& name, const shape_t& shape) {
  const auto it = dict_.find(name);
  if (it == dict_.end())
    fail("missing tensor '" + name + "' (expected shape " + to_string(shape) + ")");
  if (it->second.shape() != shape)
    fail("tensor '" + name + "' has shape " + to_string(it->second.shape()) + ", expected " +
         to_string(shape));
  taken_.insert(name);
  return it->second;
}

std::optional<tensor> state_dict_reader::take_optional(const std::string& name,
                                                       const shape_t& shape) {
  if (!contains(name)) return std::nullopt;
  return take(name, shape);
}

void state_dict_reader::finish() const {
  std::string unexpected;
  for (const auto& [name, t] : dict_)
    if (!taken_.count(name)) unexpected += (unexpected.empty() ? "'" : ", '") + name + "'";
  if (!unexpected.empty()) fail("unexpected tensor(s) " + unexpected + " for this module");
}

}  // namespace qkv::nn
