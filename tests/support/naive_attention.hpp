// The naive fp32 composition of attention (scores, softmax, product, all in float): the yardstick
// of DESIGN section 3's fused tolerance, e_naive = its error against the float64 reference.
#pragma once

#include "qkv/attention.hpp"

namespace qkv::testing {

// O and lse as a plain fp32 implementation computes them; rows with no visible key: 0, -inf.
sdpa_result sdpa_forward_naive_fp32(const tensor& q, const tensor& k, const tensor& v,
                                    const sdpa_options& options);

}  // namespace qkv::testing
