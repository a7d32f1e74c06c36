// Backward of nn.Linear, y = x·W^T + b with x flattened to [M,in]:
//   ∂L/∂W = dy^T·x [out,in],  ∂L/∂b = Σ_m dy[m,:],  ∂L/∂x = dy·W [M,in]  (two sgemms).
#include "elementwise.hpp"
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
  tensor dx(x.shape());
  const int64_t M = x.numel() / in;
  if (M == 0) return dx;
  accumulate_grads(x.data(), dy.data(), M, out, grads);
  input_grad_into(dy.data(), M, out, dx.data());
  return dx;
}

void linear::input_grad_into(const float* dy, int64_t M, int64_t ldy, float* dx) const {
  const int64_t in = in_features(), out = out_features();
  QKV_ASSERT(ldy >= out);
  // dx = dy·W: [M,out]·[out,in].
  sgemm(gemm_op::none, gemm_op::none, M, in, out, 1.0f, dy, ldy, weight_.data(), in, 0.0f, dx, in);
}

void linear::accumulate_grads(const float* x, const float* dy, int64_t M, int64_t ldy,
                              linear_grads& grads) const {
  const int64_t in = in_features(), out = out_features();
  QKV_ASSERT(grads.weight.shape() == weight_.shape() &&
             grads.bias.has_value() == bias_.has_value() && ldy >= out);
  // dW += dy^T·x: [out,M]·[M,in].
  sgemm(gemm_op::transpose, gemm_op::none, out, in, M, 1.0f, dy, ldy, x, in, 1.0f,
        grads.weight.data(), in);
  if (grads.bias) detail::add_column_sums(grads.bias->data(), dy, M, out, ldy);
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
