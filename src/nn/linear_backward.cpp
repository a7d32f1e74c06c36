// Backward of nn.Linear, y = x·W^T + b with x flattened to [M,in]:
//   ∂L/∂W = dy^T·x [out,in],  ∂L/∂b = Σ_m dy[m,:],  ∂L/∂x = dy·W [M,in]  (two sgemms).
#include "qkv/error.hpp"
#include "qkv/gemm.hpp"
#include "qkv/nn/linear.hpp"

namespace qkv::nn {

tensor linear::backward(const tensor& x, const tensor& dy, linear_grads& grads) const {
  const int64_t in = in_features(), out = out_features();
  if (x.rank() < 1 || x.size(-1) != in || dy.numel() * in != x.numel() * out || dy.size(-1) != out)
    throw error("linear backward: expected x [..., " + std::to_string(in) + "] and dy [..., " +
                std::to_string(out) + "] with the same leading axes, got x " +
                to_string(x.shape()) + ", dy " + to_string(dy.shape()));
  QKV_ASSERT(grads.weight.shape() == weight_.shape() &&
             grads.bias.has_value() == bias_.has_value());
  tensor dx(x.shape());
  const int64_t M = x.numel() / in;
  if (M == 0) return dx;
  // dW += dy^T·x: [out,M]·[M,in].
  sgemm(gemm_op::transpose, gemm_op::none, out, in, M, 1.0f, dy.data(), out, x.data(), in, 1.0f,
        grads.weight.data(), in);
  // dx = dy·W: [M,out]·[out,in].
  sgemm(gemm_op::none, gemm_op::none, M, in, out, 1.0f, dy.data(), out, weight_.data(), in, 0.0f,
        dx.data(), in);
  if (grads.bias) {
    float* db = grads.bias->data();
    const float* d = dy.data();
    for (int64_t r = 0; r < M; ++r)
#pragma omp simd
      for (int64_t o = 0; o < out; ++o) db[o] += d[r * out + o];
  }
  return dx;
}

linear_grads linear::make_grads() const {
  linear_grads g{tensor(weight_.shape()), std::nullopt};
  if (bias_) g.bias = tensor(bias_->shape());
  return g;
}

std::vector<parameter> linear::parameters(const std::string& prefix, linear_grads& grads) {
  std::vector<parameter> params{{prefix + "weight", &weight_, &grads.weight, true}};
  if (bias_) params.push_back({prefix + "bias", &*bias_, &*grads.bias, false});
  return params;
}

}  // namespace qkv::nn
