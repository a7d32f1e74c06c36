// The element-wise pieces of the GPT model with their backward passes: layer normalisation over
// the last axis, the erf GELU and the embedding lookup. Private to src/nn/gpt*.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "qkv/tensor.hpp"

namespace qkv::nn::detail {

// LayerNorm (Ba et al. 2016) over rows of E: y = (x − μ)·r·w + b with r = 1/√(σ² + eps).
struct layer_norm_cache {
  std::vector<float> mean, rstd;  // per row
};
tensor layer_norm_forward(const tensor& x, const tensor& w, const tensor& b, float eps,
                          layer_norm_cache& cache);
// With x̂ = (x − μ)·r and g = dy ⊙ w: dw += Σ dy ⊙ x̂, db += Σ dy,
// dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)) per row.
tensor layer_norm_backward(const tensor& x, const tensor& dy, const tensor& w,
                           const layer_norm_cache& cache, tensor& dw, tensor& db);

// GELU(x) = x·Φ(x) (erf form, PyTorch's default), and dx = dy·(Φ(x) + x·φ(x)).
tensor gelu_forward(const tensor& x);
tensor gelu_backward(const tensor& x, const tensor& dy);

// x[b,t,:] = wte[idx[b,t],:] + wpe[t,:] for idx [B,T].
tensor embed(const std::vector<int32_t>& idx, int64_t B, int64_t T, const tensor& wte,
             const tensor& wpe);
// dwte[idx[b,t],:] += dx[b,t,:], dwpe[t,:] += dx[b,t,:] (rows in order: deterministic).
void embed_backward(const std::vector<int32_t>& idx, int64_t B, int64_t T, const tensor& dx,
                    tensor& dwte, tensor& dwpe);

// a + b, elementwise, same shapes.
tensor add(const tensor& a, const tensor& b);

}  // namespace qkv::nn::detail
