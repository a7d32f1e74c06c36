// What the two strategies of the fused forward (wide blocks: fused_forward_tile.hpp; narrow
// blocks: fused_forward_narrow.hpp) share about one task's rows: which (head, query) a row is,
// the causal key limits, the explicit mask, and where a finished row goes. Scalar code, compiled
// for the baseline in every translation unit (included before any target pragma).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "fused_forward_plan.hpp"

namespace qkv::detail {

struct task_rows {
  static constexpr float minus_inf = -std::numeric_limits<float>::infinity();

  const attention_params& p;
  const fused_task& t;
  int64_t group = p.Hq / p.Hkv, rows = t.r1 - t.r0;
  // Causal masks: key j is visible to query i iff j <= i + offset.
  bool causal = p.causal != causal_mode::none;
  int64_t offset = p.causal == causal_mode::bottom_right ? p.Nk - p.Nq : 0;

  int64_t head(int64_t ri) const { return t.hk * group + (t.r0 + ri) % group; }
  int64_t query(int64_t ri) const { return (t.r0 + ri) / group; }
  const float* q_row(int64_t ri) const {
    return p.q + t.b * p.q_stride[0] + head(ri) * p.q_stride[1] + query(ri) * p.q_stride[2];
  }
  // Keys past the block's last query's causal limit are never read.
  int64_t key_end() const { return causal ? std::min(t.k1, query(rows - 1) + offset + 1) : t.k1; }
  // Whether the causal rule hides some key of tile [j0, j0 + nk) from some row of the block.
  bool causal_partial(int64_t j0, int64_t nk) const {
    return causal && j0 + nk - 1 > query(0) + offset;
  }
  // How many leading keys of the tile row ri sees under the causal rule.
  int64_t causal_visible(int64_t ri, int64_t j0, int64_t nk) const {
    return causal ? std::clamp<int64_t>(query(ri) + offset - j0 + 1, 0, nk) : nk;
  }

  // Adds the explicit mask of row ri to its scores s[jj·step] (boolean: -inf where hidden; float:
  // its value), or with s == nullptr only tells whether any key of the tile is visible to it.
  bool apply_mask(int64_t ri, int64_t j0, int64_t nk, float* s, int64_t step) const {
    const mask_ref& m = p.mask;
    const int64_t base =
        t.b * m.stride[0] + head(ri) * m.stride[1] + query(ri) * m.stride[2] + j0 * m.stride[3];
    const int64_t ms = m.stride[3];
    if (m.kind == mask_kind::boolean) {
      const uint8_t* mk = static_cast<const uint8_t*>(m.data) + base;
      for (int64_t jj = 0; jj < nk; ++jj) {
        if (!s && mk[jj * ms]) return true;
        if (s && !mk[jj * ms]) s[jj * step] = minus_inf;
      }
    } else {
      const float* mk = static_cast<const float*>(m.data) + base;
      for (int64_t jj = 0; jj < nk; ++jj) {
        if (!s && mk[jj * ms] > minus_inf) return true;
        if (s) s[jj * step] += mk[jj * ms];
      }
    }
    return false;
  }
  // Whether the explicit mask (with the causal rule) hides every key of the tile from every row:
  // such tiles are skipped before any product.
  bool tile_hidden(int64_t j0, int64_t nk) const {
    if (p.mask.kind == mask_kind::none) return false;
    for (int64_t ri = 0; ri < rows; ++ri) {
      const int64_t n = causal_visible(ri, j0, nk);
      if (n > 0 && apply_mask(ri, j0, n, nullptr, 0)) return false;
    }
    return true;
  }

  // Row ri is done: O = o / l and lse = m + log(l) (o[c·step] unnormalised); a row with no
  // visible key (l = 0) gets O = 0 and lse = -inf. To the final O and lse, or to the partial
  // result of a key split.
  void finish(int64_t ri, const float* o, int64_t step, float m, float l, fused_sink sink,
              int64_t dvp) const {
    const bool empty = l == 0.0f;
    const float inv = empty ? 0.0f : 1.0f / l;
    const float lse = empty ? minus_inf : m + std::log(l);
    if (sink.part_o) {
      for (int64_t c = 0; c < p.dv; ++c) sink.part_o[ri * dvp + c] = o[c * step] * inv;
      sink.part_lse[ri] = lse;
      return;
    }
    const int64_t h = head(ri), i = query(ri);
    float* out = p.o + t.b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
    for (int64_t c = 0; c < p.dv; ++c) out[c * p.o_stride[3]] = o[c * step] * inv;
    if (p.lse) p.lse[t.b * p.lse_stride[0] + h * p.lse_stride[1] + i * p.lse_stride[2]] = lse;
  }
};

}  // namespace qkv::detail
