// The plan of one fused forward call shared by its parts: block sizes, the tasks threads run,
// and the task function compiled once per SIMD target (fused_forward_avx2.cpp,
// fused_forward_portable.cpp), of which fused_forward.cpp picks one at run time.
#pragma once

#include <cstdint>

#include "qkv/attention_params.hpp"

namespace qkv::detail {

// Block sizes and scratch layout of one call, chosen in fused_forward.cpp.
struct fused_blocks {
  int64_t Br = 0;         // rows per block
  int64_t Bc = 0;         // keys per tile, a multiple of 16
  int64_t dvp = 0;        // dv rounded up to 16: the width of the O accumulator rows
  int64_t d_pad = 0;      // d rounded up to 8: the row length of the packed Q block
  bool v_direct = false;  // V rows are read in place (unit channel stride, dv % 16 == 0)
  // The two tile products by OpenBLAS sgemm instead of the micro-kernels: faster for blocks of
  // at most 8 rows (decode), where packing K^T costs more than the products (docs/kernels.md).
  bool blas_tiles = false;
  // Floats of per-thread scratch: Q block, K^T tile, S/P tile, O, V tile, m, l.
  int64_t scratch_floats() const {
    return Br * d_pad + d_pad * Bc + Br * Bc + Br * dvp + Bc * dvp + 2 * Br;
  }
};

// Rows [r0, r1) of kv head (b, hk) against keys [k0, k1).
struct fused_task {
  int64_t b, hk, r0, r1, k0, k1;
};

// Where a task's normalised output rows go: the final O and lse (part_o == nullptr), or a
// partial result [rows, dvp] and its lse [rows], merged later by logsumexp (key splits).
struct fused_sink {
  float* part_o = nullptr;
  float* part_lse = nullptr;
};

using fused_task_fn = void (*)(const attention_params&, const fused_blocks&, const fused_task&,
                               float* scratch, fused_sink sink);

void fused_task_portable(const attention_params& p, const fused_blocks& bk, const fused_task& t,
                         float* scratch, fused_sink sink);
void fused_task_avx2(const attention_params& p, const fused_blocks& bk, const fused_task& t,
                     float* scratch, fused_sink sink);

}  // namespace qkv::detail
