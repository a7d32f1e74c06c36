// The plan of one fused forward call shared by its parts: block sizes, the tasks threads run,
// and the task function compiled once per SIMD target (fused_forward_avx512.cpp,
// fused_forward_avx2.cpp, fused_forward_portable.cpp), of which fused_forward.cpp picks one at run
// time.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>

#include "qkv/attention_params.hpp"
#include "simd/elements.hpp"

namespace qkv::detail {

// The micro-kernels' panel width for a vector of `width` floats in a file of `registers`:
// four vectors with 32 registers (64 floats for AVX-512), two with 16 (16 floats for AVX2 and
// portable). K^T and V tiles are packed in panels this wide.
constexpr int64_t fused_panel_width(int64_t width, int registers) {
  return (registers == 32 ? 4 : 2) * width;
}

// Block sizes and scratch layout of one call, chosen in fused_forward.cpp.
struct fused_blocks {
  int64_t Br = 0;     // rows per block
  int64_t Bc = 0;     // keys per tile, a multiple of the panel width
  int64_t dvp = 0;    // dv rounded up to the panel width: the width of the O accumulator rows
  int64_t d_pad = 0;  // d rounded up to 8: the row length of the packed Q block
  // Blocks of at most 8 rows (decode, GQA groups, small prefill) read K and V in place, packing
  // nothing (it would cost more than the products): Q·K^T by the dot-product kernel, P·V by a
  // micro-kernel that reads V's rows in place (docs/kernels.md).
  bool in_place = false;
  // Floats of one packed tile: K^T panels [Bc/NR][d_pad][NR], then V panels [dvp/NR][Bc][NR].
  int64_t kv_tile_floats() const { return (d_pad + dvp) * Bc; }
  // Rows of the S/P tile: a large block computes it one micro-tile row group at a time (at most
  // 6 rows), a small block whole (at most 8 rows).
  int64_t s_rows() const { return std::min<int64_t>(Br, 16); }
  // n floats rounded up to whole 64-byte cache lines: the scratch's parts each start on one.
  static int64_t lines(int64_t n) { return (n + 15) / 16 * 16; }
  // Floats of per-thread scratch: Q block, packed K/V tile, S/P tile, O, m, l, alpha, poisoned.
  int64_t scratch_floats() const {
    return lines(Br * d_pad) + kv_tile_floats() + lines(s_rows() * Bc) + lines(Br * dvp) +
           4 * lines(Br);
  }
};

// Where packed K^T and V panels are: K^T as [keys/NR][d_pad][NR] from kt, V as
// [dvp/NR][keys][NR] from v (keys: the panels' length). One tile (fused_blocks::kv_tile_floats,
// keys = Bc), or every key of a kv head packed once for all its row blocks (keys = Nk rounded up
// to NR), where a tile may then start at any multiple of NR: the band of a row block under a
// window then fits in one tile instead of straddling two.
// A kv head's keys are packed in chunks of Bc keys by the first task that needs each (ready[c]:
// 0 not packed, 1 being packed, 2 packed), right before its first use, so that it is read from
// the cache it was written to (packing every key first, before any product, wrote and read back
// the whole buffer through memory: 32 MiB at H = 8, N = 8192, d = 64).
struct packed_kv {
  float* kt;
  float* v;
  int64_t keys;
  std::atomic<uint8_t>* ready = nullptr;  // per chunk of the head; null for one tile
  // The panels from key j (a multiple of NR), in the same layout.
  packed_kv from(int64_t j, const fused_blocks& bk, int64_t NR) const {
    return {kt + j * bk.d_pad, v + j * NR, keys, ready};
  }
  static packed_kv at(float* base, int64_t keys, const fused_blocks& bk) {
    return {base, base + keys * bk.d_pad, keys};
  }
  // Runs pack() if chunk c is not packed yet and no other task packs it; waits for the task that
  // does. The release store publishes the packed floats to the acquire loads.
  template <typename F>
  void pack_once(int64_t c, F&& pack) const {
    std::atomic<uint8_t>& state = ready[c];
    if (state.load(std::memory_order_acquire) == 2) return;
    uint8_t expected = 0;
    if (state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
      pack();
      state.store(2, std::memory_order_release);
      return;
    }
    while (state.load(std::memory_order_acquire) != 2) std::this_thread::yield();
  }
};

// Rows [r0, r1) of kv head (b, hk) against keys [k0, k1) (k0 a multiple of Bc). kv: every key
// of (b, hk) packed once for all its row blocks (packed_kv), or kv.kt null when the task packs
// its own tiles (a single row block: decode, small prefill).
struct fused_task {
  int64_t b, hk, r0, r1, k0, k1;
  packed_kv kv = {nullptr, nullptr, 0};
};

// Where a task's normalised output rows go: the final O and statistics (part_o == nullptr), or
// a partial result [rows, dvp] with its row maxima and log sums [rows] each, merged later by
// logsumexp (key splits).
struct task_output {
  float* part_o = nullptr;
  float* part_max = nullptr;
  float* part_log_sum = nullptr;
};

// The entry point of one SIMD target, compiled once per storage type of K and V (indexed by
// dtype: f32, f16, bf16): run a task.
struct fused_forward_target {
  using task_fn = void (*)(const attention_params&, const fused_blocks&, const fused_task&,
                           float* scratch, task_output out);
  task_fn task[3];
  int64_t panel;  // fused_panel_width of the target's vectors
};

extern const fused_forward_target fused_forward_portable;
extern const fused_forward_target fused_forward_avx2;
extern const fused_forward_target fused_forward_avx512;

}  // namespace qkv::detail
