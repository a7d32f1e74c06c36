// The logsumexp merge of partial attention results (include/qkv/merge.hpp).
// Legend: B batch, H heads, N query rows, dv value head dim; c indexes value channels.
#include "qkv/merge.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace qkv {
namespace {

constexpr double minus_infinity = -std::numeric_limits<double>::infinity();
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// The merged statistics of n partials (m_s, log l_s): m = max m_s, log l = log sum_s
// exp((m_s - m) + log l_s), and each partial's weight w_s = exp((m_s - m) + (log l_s - log l)).
// Every m_s = -inf: m = log l = -inf, w = 0. A NaN among them: NaN statistics and weights.
struct merged {
  double max = minus_infinity, log_sum = minus_infinity;
};
merged merge_stats(int64_t n, const double* m, const double* log_sum, double* w) {
  merged r;
  for (int64_t s = 0; s < n; ++s) {
    if (std::isnan(m[s]) || std::isnan(log_sum[s])) {
      std::fill(w, w + n, nan);
      return {nan, nan};
    }
    r.max = std::max(r.max, m[s]);
  }
  std::fill(w, w + n, 0.0);
  if (r.max == minus_infinity) return r;
  double sum = 0.0;
  for (int64_t s = 0; s < n; ++s)
    if (m[s] != minus_infinity) sum += w[s] = std::exp((m[s] - r.max) + log_sum[s]);
  r.log_sum = std::log(sum);
  for (int64_t s = 0; s < n; ++s) w[s] /= sum;
  return r;
}

float* row_at(float* base, const int64_t* stride, int64_t b, int64_t h, int64_t i) {
  return base + b * stride[0] + h * stride[1] + i * stride[2];
}

// acc's row (b, h, i) merged with one more partial (m, log l, O at o[c·step]; O null: zero).
void merge_into(const partial_result_ref& acc, int64_t b, int64_t h, int64_t i, double m,
                double log_sum, const float* o, int64_t step, int64_t dv) {
  float& acc_max = *row_at(acc.row_max, acc.row_stride, b, h, i);
  float& acc_log_sum = *row_at(acc.row_log_sum, acc.row_stride, b, h, i);
  if (m == minus_infinity && !std::isnan(log_sum)) return;  // saw no key: adds nothing
  const double ms[2] = {acc_max, m}, ls[2] = {acc_log_sum, log_sum};
  double w[2];
  const merged r = merge_stats(2, ms, ls, w);
  acc_max = static_cast<float>(r.max);
  acc_log_sum = static_cast<float>(r.log_sum);
  float* out = row_at(acc.o, acc.o_stride, b, h, i);
  for (int64_t c = 0; c < dv; ++c) {
    float& x = out[c * acc.o_stride[3]];
    // An empty acc's O (0 by contract) has weight 0; w·0 stays 0 unless w is NaN.
    x = static_cast<float>(w[0] * x + (o ? w[1] * o[c * step] : w[1] * 0.0));
  }
}

}  // namespace

void merge_partial(const partial_result_ref& acc, const partial_result_ref& part, int64_t B,
                   int64_t H, int64_t N, int64_t dv) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i)
        merge_into(acc, b, h, i, *row_at(part.row_max, part.row_stride, b, h, i),
                   *row_at(part.row_log_sum, part.row_stride, b, h, i),
                   row_at(part.o, part.o_stride, b, h, i), part.o_stride[3], dv);
}

void merge_sinks(const partial_result_ref& acc, const float* sinks, int64_t B, int64_t H, int64_t N,
                 int64_t dv) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i) merge_into(acc, b, h, i, sinks[h], 0.0, nullptr, 0, dv);
}

void merge_row(const split_parts& parts, float sink, int64_t dv, const row_out& out) {
  const int64_t n = parts.count + 1;  // the sink last, as a partial with O = 0
  std::vector<double> m(static_cast<size_t>(n)), ls(static_cast<size_t>(n)),
      w(static_cast<size_t>(n));
  for (int64_t s = 0; s < parts.count; ++s) {
    m[s] = parts.max[s * parts.stride];
    ls[s] = parts.log_sum[s * parts.stride];
  }
  m[parts.count] = sink;
  ls[parts.count] = sink == -std::numeric_limits<float>::infinity() ? minus_infinity : 0.0;
  const merged r = merge_stats(n, m.data(), ls.data(), w.data());
  for (int64_t c = 0; c < dv; ++c) {
    double x = std::isnan(r.max) ? nan : 0.0;
    for (int64_t s = 0; s < parts.count; ++s)
      if (m[s] != minus_infinity) x += w[s] * parts.o[s * parts.stride + c];
    out.o[c * out.o_step] = static_cast<float>(x);
  }
  if (out.lse) *out.lse = static_cast<float>(r.max + r.log_sum);
  if (out.row_max) *out.row_max = static_cast<float>(r.max);
  if (out.row_log_sum) *out.row_log_sum = static_cast<float>(r.log_sum);
}

}  // namespace qkv
