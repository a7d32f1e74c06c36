// The fused kernels called directly, with a forced SIMD target and thread count, as the tests
// that cover every target this CPU runs need them (the public API picks the best target).
#pragma once

#include <vector>

#include "qkv/attention.hpp"
#include "qkv/fused.hpp"

namespace qkv::testing {

// portable, and avx2 where the CPU has it.
std::vector<simd_target> runnable_targets();

// O, lse and the row statistics of sdpa_forward_fused (O starts as NaN, so that a row the kernel
// forgets shows).
sdpa_result fused_forward_on(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                             const sdpa_options& options, simd_target target, int threads);

// The gradients of sdpa_backward_fused from `forward`'s O and row statistics (dsinks with sinks).
sdpa_gradients fused_backward_on(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                                 const sdpa_result& forward, const tensor& dout,
                                 const sdpa_options& options, simd_target target, int threads);

}  // namespace qkv::testing
