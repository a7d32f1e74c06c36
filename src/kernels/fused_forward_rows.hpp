// What the fused forward knows about one task's rows: which (head, query) a row is, the keys its
// block may see (visibility.hpp), the score modifiers, the masks and the NaN rule applied to a
// tile's raw scores, and where a finished row goes. Scalar code, compiled for the baseline in
// every translation unit (included before any target pragma).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "fused_forward_plan.hpp"
#include "visibility.hpp"

namespace qkv::detail {

struct task_rows {
  static constexpr float minus_inf = -std::numeric_limits<float>::infinity();

  const attention_params& p;
  const fused_task& t;
  int64_t group = p.Hq / p.Hkv, rows = t.r1 - t.r0;
  visibility vis{p};

  int64_t head(int64_t ri) const { return t.hk * group + (t.r0 + ri) % group; }
  int64_t query(int64_t ri) const { return (t.r0 + ri) / group; }
  // Where row ri of q starts, in elements.
  int64_t query_at(int64_t ri) const {
    return t.b * p.q_stride[0] + head(ri) * p.q_stride[1] + query(ri) * p.q_stride[2];
  }
  // scale·q of row ri into dst[0, d), each element widened from q's storage type.
  void scaled_query(int64_t ri, float* dst) const {
    simd::widen_row(static_cast<const char*>(p.q) + query_at(ri) * size_in_bytes(p.q_type),
                    p.q_type, p.d, p.q_stride[3], p.scale, dst);
  }

  // The task's keys that some row of the block may see: the tiles outside are never read.
  key_band keys() const {
    const key_band band = vis.band(query(0), query(rows - 1) + 1);
    const int64_t lo = std::max(band.lo, t.k0);
    return {lo, std::max(lo, std::min(band.hi, t.k1))};
  }
  // Row ri's band within the tile [j0, j0 + nk), in tile columns.
  key_band tile_band(int64_t ri, int64_t j0, int64_t nk) const {
    const key_band band = vis.band(query(ri));
    const int64_t lo = std::clamp<int64_t>(band.lo - j0, 0, nk);
    return {lo, std::clamp<int64_t>(band.hi - j0, lo, nk)};
  }

  // The keys of the tile that any of rows [ri, ri + count) may see, in tile columns.
  key_band group_band(int64_t ri, int64_t count, int64_t j0, int64_t nk) const {
    const key_band first = tile_band(ri, j0, nk), last = tile_band(ri + count - 1, j0, nk);
    return {first.lo, std::max(first.lo, last.hi)};
  }

  // Whether the explicit mask hides every key of the tile that the bands leave to some row:
  // such tiles are skipped before any product.
  bool tile_hidden(int64_t j0, int64_t nk) const {
    for (int64_t ri = 0; ri < rows; ++ri) {
      const key_band band = tile_band(ri, j0, nk);
      const mask_row mask(p, t.b, head(ri), query(ri));
      for (int64_t jj = band.lo; jj < band.hi; ++jj)
        if (mask.bias(j0 + jj) != minus_inf) return false;
    }
    return true;
  }

  // Turns row ri's raw scores of the tile (scale·q·k, s at tile column 0) into the softmax's
  // input over the columns [c0, c1) it reads, which hold the row's band: softcap, ALiBi, the mask
  // added, -inf outside the band (past nk included). Returns whether a float mask entry in the
  // band is NaN or +inf (the NaN rule). The caller checks the raw scores in the band first (a
  // NaN or Inf in q or k, or fp32 overflow).
  bool prepare_row(int64_t ri, int64_t j0, int64_t nk, int64_t c0, int64_t c1, float* s) const {
    const key_band band = tile_band(ri, j0, nk);
    bool poisoned = false;
    int64_t jj = 0;
    const int64_t h = head(ri), i = query(ri);
    if (p.softcap != 0.0f)
      for (jj = band.lo; jj < band.hi; ++jj) s[jj] = softcapped(s[jj], p.softcap);
    if (p.alibi_slopes) {
      const float slope = p.alibi_slopes[h];
      for (jj = band.lo; jj < band.hi; ++jj)
        s[jj] -= slope * static_cast<float>(vis.distance(i, j0 + jj));
    }
    if (p.mask.kind != mask_kind::none) {
      const mask_row mask(p, t.b, h, i);
      for (jj = band.lo; jj < band.hi; ++jj) {
        const float bias = mask.bias(j0 + jj);
        poisoned |= std::isnan(bias) || bias == -minus_inf;
        s[jj] += bias;
      }
    }
    std::fill(s + c0, s + std::max(c0, band.lo), minus_inf);
    std::fill(s + std::min(band.hi, c1), s + c1, minus_inf);
    return poisoned;
  }

  // The online softmax's starting state of row ri: the sink as a logit already seen
  // (m = sink, l = exp(sink - m) = 1), or nothing (m = -inf, l = 0). A key split's task starts
  // empty: the merge counts the sink once.
  void start(int64_t ri, const task_output& out, float& m, float& l) const {
    const bool with_sink = p.sinks && !out.part_o;
    m = with_sink ? p.sinks[head(ri)] : minus_inf;
    l = with_sink ? 1.0f : 0.0f;
  }

  // Row ri is done: O = o / l, m and log l, lse = m + log(l) (o[c·step] unnormalised); a row
  // with no visible key and no sink (l = 0) gets O = 0, m = log l = lse = -inf. A poisoned row
  // gets NaN everywhere: the NaN rule on its scores, or an O that is not finite (a NaN or Inf in
  // a visible value row), which the caller checks with its vectors.
  // To the final O and statistics, or to the partial result of a key split.
  void finish(int64_t ri, const float* o, int64_t step, float m, float l, bool poisoned,
              task_output dest, int64_t dvp) const {
    const bool empty = l == 0.0f;
    const float inv = empty ? 0.0f : 1.0f / l;
    float log_sum = empty ? minus_inf : std::log(l);
    if (poisoned || modifiers_poison(p, head(ri)))
      m = log_sum = std::numeric_limits<float>::quiet_NaN();
    const bool nan = std::isnan(m);
    const auto value = [&](int64_t c) { return nan ? m : o[c * step] * inv; };
    if (dest.part_o) {
      for (int64_t c = 0; c < p.dv; ++c) dest.part_o[ri * dvp + c] = value(c);
      dest.part_max[ri] = m;
      dest.part_log_sum[ri] = log_sum;
      return;
    }
    const int64_t h = head(ri), i = query(ri);
    float* out = p.o + t.b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
    if (!nan && step == 1 && p.o_stride[3] == 1) {
      for (int64_t c = 0; c < p.dv; ++c) out[c] = o[c] * inv;  // the same products, vectorised
    } else {
      for (int64_t c = 0; c < p.dv; ++c) out[c * p.o_stride[3]] = value(c);
    }
    const int64_t at = t.b * p.lse_stride[0] + h * p.lse_stride[1] + i * p.lse_stride[2];
    if (p.lse) p.lse[at] = m + log_sum;
    if (p.row_max) p.row_max[at] = m;
    if (p.row_log_sum) p.row_log_sum[at] = log_sum;
  }
};

}  // namespace qkv::detail
