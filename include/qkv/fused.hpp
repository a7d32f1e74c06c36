// The fused attention kernels, forward and backward (FlashAttention-2 on the CPU: tiled, online
// softmax, SIMD, threads), and the choice of its SIMD target. How it works: docs/kernels.md.
#pragma once

#include "qkv/attention_params.hpp"

namespace qkv {

// avx2: AVX2+FMA+F16C, 8-float vectors and 16 registers; avx512: AVX-512F (with AVX2+FMA+F16C),
// 16-float vectors and 32 registers.
enum class simd_target { automatic, portable, avx2, avx512 };

// Whether this CPU can run the target (automatic and portable: always).
bool simd_target_available(simd_target target);
const char* to_string(simd_target target);
// The concrete target to run: automatic becomes the QKV_SIMD environment variable's target when
// set (portable, avx2 or avx512: for comparisons), else the best this CPU has; a forced target
// the CPU lacks is a qkv::error.
simd_target resolve_simd_target(simd_target requested);

// The same contract as sdpa_forward_reference (docs/contracts.md section 1; p.o written, p.lse when
// non-null), within the fused tolerance of docs/contracts.md section 3. Uses
// resolve_thread_count(p.threads) threads. `target` forces a SIMD target (tests); throws qkv::error
// if the CPU lacks it.
void sdpa_forward_fused(const attention_params& p, simd_target target = simd_target::automatic);

// The fused backward (FlashAttention-2's): writes g.dq, g.dk, g.dv and (when non-null) g.dsinks,
// overwritten, not accumulated, in O(threads·N) memory, recomputing P tile by tile; every mask
// option and modifier; GQA (dK and dV summed over a group's query heads);
// resolve_thread_count(g.forward.threads) threads. It trusts the saved g.out, g.row_max and
// g.row_log_sum and never renormalises: P_ij = exp((S_ij - m_i) - log l_i) and
// D_i = rowsum(dO_i ∘ O_i). So K and V may be only a part of the keys: ring attention calls it
// on one K/V block at a time with the GLOBAL out and statistics (and the block's positions),
// sums dq over the blocks, keeps each block's dk and dv, and takes d sinks once
// (sdpa_sinks_backward). A row with m = -inf gets zero gradients, one with m = NaN (poisoned by
// the NaN rule) NaN. Inputs need unit stride along their last dimension (as sdpa_backward passes
// them); outputs may have any strides.
void sdpa_backward_fused(const attention_grad_params& g,
                         simd_target target = simd_target::automatic);

// g.dsinks[h] = -sum_{b,i} exp(sink_h - lse_i)·rowsum(dO_i ∘ O_i) over the given rows, from the
// saved out and statistics (0 without sinks): the sinks' gradient, which needs no key.
void sdpa_sinks_backward(const attention_grad_params& g);

}  // namespace qkv
