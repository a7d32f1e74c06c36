// The fused forward's driver: SIMD target, block sizes from the cache sizes, OpenMP over
// batch x kv heads x row blocks (x key splits for decode shapes), and the logsumexp merge of
// key splits (flash-decoding). The tile computation itself: fused_forward_tile.hpp.
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "fused_forward_plan.hpp"
#include "qkv/error.hpp"
#include "qkv/fused.hpp"
#include "qkv/merge.hpp"
#include "qkv/threads.hpp"
#include "simd_dispatch.hpp"

namespace qkv {
namespace {

using detail::fused_blocks;
using detail::fused_task;

int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

// Br x Bc tiles whose per-thread working set (Q block, K/V tile, S of a row group, O) fills at
// most half of the L2 cache, so that it stays there while K and V stream from memory. A large
// block computes a tile one 6-row group at a time (fused_forward_tile.hpp), so Bc is bounded by
// the L2, not the L1: long tiles amortise each row's softmax bookkeeping (maximum, sum, rescale
// of O) and each micro-kernel call's set-up; 512 keys measured 1.09x 128 at d = 64 (Ice Lake,
// AVX-512) and shrinks to 256 at d = 128 by this budget. Larger Br amortises reading each K/V
// tile into L2. Br is a multiple of the 6-row micro-tile. Small blocks keep 128-key tiles:
// decode splits its keys into ranges of whole tiles across the threads.
fused_blocks choose_blocks(const attention_params& p, int64_t rows_total, int64_t panel) {
  fused_blocks bk;
  bk.d_pad = round_up(p.d, 8);
  bk.dvp = round_up(p.dv, panel);
  long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l2 <= 0) l2 = 512 * 1024;
  const int64_t budget = l2 / 2 / static_cast<int64_t>(sizeof(float));
  bk.in_place = rows_total <= 8 && p.k_stride[3] == 1 && p.v_stride[3] == 1;
  // A window narrower than a tile (Mistral's 512 keys): a row group's band then straddles two
  // 512-key tiles nearly always, and pays each tile's bookkeeping for half a tile of work;
  // 1024-key tiles hold it whole half of the time. Their working set takes a shorter block.
  const bool narrow_window =
      p.window_left >= 0 && p.window_right >= 0 && p.window_left + p.window_right < 1024;
  bk.Bc = bk.in_place ? 128 : narrow_window ? 1024 : 512;
  bk.Br = 192;
  while (narrow_window && bk.scratch_floats() > budget && bk.Br > 48) bk.Br = bk.Br / 2 / 6 * 6;
  while (bk.scratch_floats() > budget && bk.Bc > panel) bk.Bc /= 2;
  while (bk.scratch_floats() > budget && bk.Br > 6) bk.Br = std::max<int64_t>(6, bk.Br / 2 / 6 * 6);
  // In place, the block's rows are padded to the dot-product kernel's groups (up to 4, or 8).
  bk.Br = bk.in_place ? round_up(rows_total, 4) : std::min(bk.Br, rows_total);
  return bk;
}

// n floats from a 64-byte boundary (a cache line): the micro-kernels' 512-bit loads and stores of
// the packed tiles, S and O would otherwise each straddle two lines (std::vector's storage is
// 16-byte aligned), which costs two L1 accesses per load. Buffers of several MiB (the K and V
// packed once per call: 32 MiB at H = 8, N = 8192, d = 64) sit on 2 MiB pages where the kernel
// offers them: each 4 KiB page's first touch is a page fault, and 8192 of them per call took
// about 5% of a windowed row's time (which packs as much as a full row for an eighth of the work).
// Even on 2 MiB pages, the kernel zeroes every fresh page at its first touch: another 6% of that
// row. So the largest buffer released, of 4 to 128 MiB, is kept for the next call that fits in
// it (a model's layers call with the same shapes over and over); the others are freed.
struct float_block {
  float* data = nullptr;
  size_t bytes = 0;
};

class aligned_floats {
 public:
  // Uninitialised: every float is written before it is read (the packing, the task's set-up).
  explicit aligned_floats(int64_t n) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 16)) * sizeof(float);
    {
      std::lock_guard<std::mutex> lock(spare_mutex);
      if (bytes >= min_kept && spare.bytes >= bytes) {
        std::swap(mine_, spare);
        return;
      }
    }
    constexpr size_t huge = size_t{2} << 20;
    const size_t align = bytes >= 2 * huge ? huge : 64;
    mine_.bytes = (bytes + align - 1) / align * align;
    mine_.data = static_cast<float*>(std::aligned_alloc(align, mine_.bytes));
    if (!mine_.data) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (align == huge) madvise(mine_.data, mine_.bytes, MADV_HUGEPAGE);  // advice: may fail
#endif
  }
  ~aligned_floats() {
    if (mine_.bytes >= min_kept && mine_.bytes <= max_kept) {
      std::lock_guard<std::mutex> lock(spare_mutex);
      if (spare.bytes < mine_.bytes) std::swap(mine_, spare);
    }
    std::free(mine_.data);
  }
  aligned_floats(const aligned_floats&) = delete;
  aligned_floats& operator=(const aligned_floats&) = delete;
  float* data() {
    return mine_.data;
  }

 private:
  // The per-thread scratch (about 1 MiB) comes from the allocator's free lists anyway.
  static constexpr size_t min_kept = size_t{4} << 20, max_kept = size_t{128} << 20;
  static inline std::mutex spare_mutex;
  static inline float_block spare;  // the kept buffer, owned by no call
  float_block mine_;
};

const detail::fused_forward_target& target_kernels(simd_target target) {
  return *detail::for_simd_target(target, &detail::fused_forward_avx512,
                                  &detail::fused_forward_avx2, &detail::fused_forward_portable);
}

}  // namespace

bool simd_target_available(simd_target target) {
  // F16C converts f16 inputs in registers (every AVX2 CPU made has it).
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (target == simd_target::avx2) return avx2;
  if (target == simd_target::avx512) return avx2 && __builtin_cpu_supports("avx512f");
  return true;
}

simd_target resolve_simd_target(simd_target requested) {
  if (requested == simd_target::automatic) {
    if (const char* env = std::getenv("QKV_SIMD"); env && *env) {
      for (simd_target t : {simd_target::portable, simd_target::avx2, simd_target::avx512})
        if (std::string(env) == to_string(t)) return resolve_simd_target(t);
      throw error(std::string("QKV_SIMD: expected portable, avx2 or avx512, got '") + env + "'");
    }
    for (simd_target best : {simd_target::avx512, simd_target::avx2})
      if (simd_target_available(best)) return best;
    return simd_target::portable;
  }
  if (!simd_target_available(requested))
    throw error(std::string("simd target: this CPU cannot run ") + to_string(requested));
  return requested;
}

const char* to_string(simd_target target) {
  switch (target) {
    case simd_target::portable:
      return "portable";
    case simd_target::avx2:
      return "avx2";
    case simd_target::avx512:
      return "avx512";
    default:
      return "automatic";
  }
}

void sdpa_forward_fused(const attention_params& p, simd_target target) {
  const detail::fused_forward_target& kernels = target_kernels(target);
  // K and V share one storage type (the dispatcher checks it); Q is widened row by row.
  const int kv_type = static_cast<int>(p.k_type);
  const auto task = kernels.task[kv_type];
  const int threads = resolve_thread_count(p.threads);
  const int64_t group = p.Hq / p.Hkv, rows_total = group * p.Nq;
  const fused_blocks bk = choose_blocks(p, rows_total, kernels.panel);
  const int64_t n_rb = (rows_total + bk.Br - 1) / bk.Br, n_bh = p.B * p.Hkv, items = n_bh * n_rb;

  // Too few row blocks to occupy every thread (decode: Nq small, keys long): split the keys
  // into ranges of whole tiles, run them as separate tasks, merge by logsumexp.
  int64_t splits = 1;
  if (items < 4 * threads)
    splits = std::min((4 * threads + items - 1) / items, (p.Nk + 2 * bk.Bc - 1) / (2 * bk.Bc));
  splits = std::max<int64_t>(splits, 1);
  const int64_t split_keys = round_up((p.Nk + splits - 1) / splits, bk.Bc);
  splits = (p.Nk + split_keys - 1) / split_keys;
  const int64_t n_tasks = items * splits, part_floats = bk.Br * bk.dvp + 2 * bk.Br;
  std::vector<float> part(splits > 1 ? static_cast<size_t>(n_tasks * part_floats) : 0);
  const int64_t per_thread = bk.scratch_floats();  // whole lines
  aligned_floats scratch(threads * per_thread);
  const bool causal = p.causal != causal_mode::none;
  // With several row blocks per kv head, K and V are packed once for all of them (O(Nk·(d+dv))
  // memory) instead of once per row block and tile, each chunk of Bc keys by the first task that
  // needs it (detail::packed_kv).
  const bool prepack = n_rb > 1 && !bk.in_place;
  const int64_t n_tiles = (p.Nk + bk.Bc - 1) / bk.Bc, keys_pad = round_up(p.Nk, kernels.panel);
  const int64_t kv_per_head = keys_pad * (bk.d_pad + bk.dvp);
  aligned_floats kv(prepack ? n_bh * kv_per_head : 0);
  std::vector<std::atomic<uint8_t>> ready(prepack ? n_bh * n_tiles : 0);
  const auto head_kv = [&](int64_t bh) {
    detail::packed_kv head{nullptr, nullptr, 0};
    if (prepack) {
      head = detail::packed_kv::at(kv.data() + bh * kv_per_head, keys_pad, bk);
      head.ready = ready.data() + bh * n_tiles;
    }
    return head;
  };

  // A window bounded on both sides (by itself or with the causal mask) gives every row block a
  // short band of keys, about as long for all: then a thread takes runs of consecutive row blocks
  // of one head, whose bands overlap, so that most of each band (and the chunks that the thread
  // packed for it) is still in its L2. Guided: long runs first, then shorter ones to even out the
  // end. A windowed row (H = 8, N = 8192, window 512) ran 1.10x faster so than handed out a row
  // block at a time across the heads (Ice Lake, AVX-512, 1 thread).
  const bool banded = splits == 1 && p.window_left >= 0 && (p.window_right >= 0 || causal);
  const auto run_task = [&](int64_t idx, int64_t s, int64_t bh, int64_t rb, float* mine) {
    const fused_task t{bh / p.Hkv,     bh % p.Hkv,
                       rb * bk.Br,     std::min(rows_total, (rb + 1) * bk.Br),
                       s * split_keys, std::min(p.Nk, (s + 1) * split_keys),
                       head_kv(bh)};
    detail::task_output out;
    if (splits > 1) {
      out.part_o = part.data() + idx * part_floats;
      out.part_max = out.part_o + bk.Br * bk.dvp;
      out.part_log_sum = out.part_max + bk.Br;
    }
    task(p, bk, t, mine, out);
  };

#pragma omp parallel num_threads(threads)
  {
    float* mine = scratch.data() + omp_get_thread_num() * per_thread;
    if (banded) {
#pragma omp for schedule(guided, 4)
      for (int64_t idx = 0; idx < n_tasks; ++idx) run_task(idx, 0, idx / n_rb, idx % n_rb, mine);
    } else {
      // Under a causal mask the last row blocks see the most keys: hand them out first.
#pragma omp for schedule(dynamic, 1)
      for (int64_t idx = 0; idx < n_tasks; ++idx) {
        const int64_t s = idx % splits, bh = idx / splits % n_bh, rbi = idx / splits / n_bh;
        run_task(idx, s, bh, causal ? n_rb - 1 - rbi : rbi, mine);
      }
    }
    // Key splits: merge each row's partial results once all tasks are done (the barrier above),
    // in the same parallel region to spare a second fork and join.
    if (splits > 1) {
#pragma omp for schedule(static)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t bh = item % n_bh, rb = item / n_bh, b = bh / p.Hkv, hk = bh % p.Hkv;
        const int64_t task0 = (causal ? n_rb - 1 - rb : rb) * n_bh * splits + bh * splits;
        for (int64_t r = rb * bk.Br; r < std::min(rows_total, (rb + 1) * bk.Br); ++r) {
          const int64_t ri = r - rb * bk.Br, h = hk * group + r % group, i = r / group;
          const float* po = part.data() + task0 * part_floats;
          const int64_t at = b * p.lse_stride[0] + h * p.lse_stride[1] + i * p.lse_stride[2];
          const split_parts parts{splits, part_floats, po + ri * bk.dvp, po + bk.Br * bk.dvp + ri,
                                  po + bk.Br * bk.dvp + bk.Br + ri};
          const row_out dest{p.o + b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2],
                             p.o_stride[3], p.lse ? p.lse + at : nullptr,
                             p.row_max ? p.row_max + at : nullptr,
                             p.row_log_sum ? p.row_log_sum + at : nullptr};
          merge_row(parts, p.sinks ? p.sinks[h] : -std::numeric_limits<float>::infinity(), p.dv,
                    dest);
        }
      }
    }
  }
}

}  // namespace qkv
