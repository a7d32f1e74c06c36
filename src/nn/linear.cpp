// nn.Linear on qkv::sgemm: the input's leading axes are flattened into M rows, so one call
// computes Y[M,out] = X[M,in]·W^T (W stays in PyTorch's [out,in] layout, read transposed).
#include "qkv/nn/linear.hpp"

#include <algorithm>
#include <cmath>

#include "qkv/error.hpp"
#include "qkv/gemm.hpp"
#include "qkv/nn/init.hpp"

namespace qkv::nn {

linear::linear(tensor weight, std::optional<tensor> bias)
    : weight_(std::move(weight)), bias_(std::move(bias)) {
  if (weight_.rank() != 2 || weight_.numel() == 0)
    throw error("linear",
                "weight must be [out,in] with out, in >= 1, got " + to_string(weight_.shape()));
  if (bias_ && bias_->shape() != shape_t{weight_.size(0)})
    throw error("linear", "bias must be [out] = [" + std::to_string(weight_.size(0)) + "], got " +
                              to_string(bias_->shape()));
}

linear::linear(int64_t in_features, int64_t out_features, bool bias, std::mt19937_64& rng) {
  const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in_features)));
  weight_ = uniform_tensor({out_features, in_features}, bound, rng);
  if (bias) bias_ = uniform_tensor({out_features}, bound, rng);
}

linear linear::load(state_dict_reader& reader, const std::string& prefix, int64_t out_features,
                    int64_t in_features) {
  tensor w = reader.take(prefix + "weight", {out_features, in_features});
  return linear(std::move(w), reader.take_optional(prefix + "bias", {out_features}));
}

void linear::save(state_dict& dict, const std::string& prefix) const {
  dict[prefix + "weight"] = weight_;
  if (bias_) dict[prefix + "bias"] = *bias_;
}

tensor linear::forward(const tensor& x, const std::string& argument) const {
  const int64_t in = in_features(), out = out_features();
  if (x.rank() < 1 || x.size(-1) != in)
    throw error(argument, "expected [..., " + std::to_string(in) + "] (in_features of a " +
                              to_string(weight_.shape()) + " weight), got " + to_string(x.shape()));
  shape_t y_shape = x.shape();
  y_shape.back() = out;
  tensor y(y_shape);
  const int64_t M = x.numel() / in;
  if (M == 0) return y;
  // Y[m,:] = b, then Y = 1·X·W^T + 1·Y: the bias rides in sgemm's C, no extra pass over Y.
  if (bias_)
    for (int64_t m = 0; m < M; ++m) std::copy_n(bias_->data(), out, y.data() + m * out);
  sgemm(gemm_op::none, gemm_op::transpose, M, out, in, 1.0f, x.data(), in, weight_.data(), in,
        bias_ ? 1.0f : 0.0f, y.data(), out);
  return y;
}

}  // namespace qkv::nn
