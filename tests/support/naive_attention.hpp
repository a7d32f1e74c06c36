// The naive fp32 composition of attention (scores, softmax, products, all in float, no blocking):
// the yardstick of docs/contracts.md section 3's fused tolerance, e_naive = its error against the
// float64 reference. Every mask, modifier and dropout option of sdpa_options.
#pragma once

#include "qkv/attention.hpp"

namespace qkv::testing {

// O and lse as a plain fp32 implementation computes them; rows with no visible key: 0, and
// -inf (or the sink).
sdpa_result sdpa_forward_naive_fp32(const tensor& q, const tensor& k, const tensor& v,
                                    const sdpa_options& options);

// The gradients of L = sum(O * dout) likewise (dsinks with sinks).
sdpa_gradients sdpa_backward_naive_fp32(const tensor& q, const tensor& k, const tensor& v,
                                        const tensor& dout, const sdpa_options& options);

}  // namespace qkv::testing
