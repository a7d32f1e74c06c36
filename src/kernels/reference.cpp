// The exact reference attention (float64 accumulation), forward and backward.
// Legend: B batch, Hq/Hkv query/kv heads, Nq queries, Nk keys, d head dim, dv value dim;
// i indexes queries, j keys, c head-dim channels. Equations: docs/contracts.md section 1.
#include "qkv/reference.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "dropout_lookup.hpp"
#include "qkv/half.hpp"
#include "visibility.hpp"

namespace qkv {
namespace {

constexpr double minus_infinity = -std::numeric_limits<double>::infinity();

// Row (b, h, i) of an input stored as `type`, read element by element, each widened exactly.
struct input_row {
  const void* data;
  dtype type;
  double operator[](int64_t n) const {
    switch (type) {
      case dtype::f16:
        return f16_to_float(static_cast<const uint16_t*>(data)[n]);
      case dtype::bf16:
        return bf16_to_float(static_cast<const uint16_t*>(data)[n]);
      default:
        return static_cast<const float*>(data)[n];
    }
  }
};
input_row at4(const void* base, dtype type, const int64_t* stride, int64_t b, int64_t h,
              int64_t i) {
  const int64_t offset = b * stride[0] + h * stride[1] + i * stride[2];
  return {static_cast<const char*>(base) + offset * size_in_bytes(type), type};
}
const float* at4(const float* base, const int64_t* stride, int64_t b, int64_t h, int64_t i) {
  return base + b * stride[0] + h * stride[1] + i * stride[2];
}
float* at4(float* base, const int64_t* stride, int64_t b, int64_t h, int64_t i) {
  return base + b * stride[0] + h * stride[1] + i * stride[2];
}

// The kv head that query head h reads (GQA: Hq/Hkv consecutive query heads share one).
int64_t kv_head(const attention_params& p, int64_t h) {
  return h / (p.Hq / p.Hkv);
}

// Row i's softmax statistics: lse = m + log l with m the largest score (sink included) and
// l = sum_j exp(S_ij - m) (+ exp(sink - m)). No visible key and no sink: m = log l = -inf.
struct row_stats {
  double max, log_sum;
  double lse() const { return max + log_sum; }
};

// Whether row (b, h, i) has a visible key whose inputs break the NaN rule (docs/contracts.md
// section 1 as docs/attention.md states it): a raw score that is not finite or overflows fp32
// (which a NaN or Inf in q or k gives), a value row that is not finite, a float mask entry that is
// NaN or +inf. `raw` holds the row's scale·q·k, `visible` which keys no rule hides.
bool row_poisoned(const attention_params& p, int64_t b, int64_t hk, const double* raw,
                  const double* masked, const uint8_t* visible) {
  constexpr double largest = std::numeric_limits<float>::max();
  for (int64_t j = 0; j < p.Nk; ++j) {
    if (!visible[j]) continue;  // hidden: what it holds does not matter
    if (!(std::fabs(raw[j]) <= largest) || std::isnan(masked[j]) || masked[j] == -minus_infinity)
      return true;
    const input_row v = at4(p.v, p.v_type, p.v_stride, b, hk, j);
    for (int64_t c = 0; c < p.dv; ++c)
      if (!std::isfinite(v[c * p.v_stride[3]])) return true;
  }
  return false;
}

// Passes 1-4 for one (b, h): scores, scaled, masked, probabilities (all [Nq,Nk], row-major),
// and each row's softmax statistics.
void probabilities(const attention_params& p, int64_t b, int64_t h, std::vector<double>& scores,
                   std::vector<double>& scaled, std::vector<double>& masked,
                   std::vector<double>& probs, std::vector<row_stats>& stats) {
  const int64_t Nq = p.Nq, Nk = p.Nk, hk = kv_head(p, h);
  const detail::visibility vis(p);
  // Pass 1: scores = Q·K^T, the dot product of every query with every key.
  for (int64_t i = 0; i < Nq; ++i) {
    const input_row q = at4(p.q, p.q_type, p.q_stride, b, h, i);
    for (int64_t j = 0; j < Nk; ++j) {
      const input_row k = at4(p.k, p.k_type, p.k_stride, b, hk, j);
      double dot = 0.0;
      for (int64_t c = 0; c < p.d; ++c) dot += q[c * p.q_stride[3]] * k[c * p.k_stride[3]];
      scores[i * Nk + j] = dot;
    }
  }
  // Pass 2: scaled = scale·Q·K^T.  Pass 3: S = softcap(scaled) - slope·|i + o - j| + bias, with
  // -inf where a rule hides the key (outside the band, a false boolean entry).
  const double slope = p.alibi_slopes ? p.alibi_slopes[h] : 0.0;
  std::vector<uint8_t> visible(static_cast<size_t>(Nq * Nk));
  for (int64_t i = 0; i < Nq; ++i) {
    const detail::key_band band = vis.band(i);
    const detail::mask_row mask(p, b, h, i);
    for (int64_t j = 0; j < Nk; ++j) {
      const double x = scaled[i * Nk + j] = p.scale * scores[i * Nk + j];
      const double bias = mask.bias(j);
      const bool hidden = j < band.lo || j >= band.hi || bias == minus_infinity;
      visible[i * Nk + j] = !hidden;
      masked[i * Nk + j] = hidden ? minus_infinity
                                  : detail::softcapped(x, p.softcap) -
                                        slope * static_cast<double>(vis.distance(i, j)) + bias;
    }
  }
  // Pass 4: P = softmax_rows(S) with the sink in the denominator, subtracting the row maximum
  // so that exp never overflows. No visible key: P = 0 (and lse = sink, or -inf without one).
  // A row the NaN rule poisons: P = NaN over its visible keys, NaN statistics.
  const double sink = p.sinks ? p.sinks[h] : minus_infinity;
  const bool head_poisoned = detail::modifiers_poison(p, h);
  for (int64_t i = 0; i < Nq; ++i) {
    const double* s = &masked[i * Nk];
    double* prob = &probs[i * Nk];
    double row_max = sink;
    for (int64_t j = 0; j < Nk; ++j) row_max = std::fmax(row_max, s[j]);
    const uint8_t* row_visible = &visible[i * Nk];
    if (head_poisoned || row_poisoned(p, b, hk, &scaled[i * Nk], s, row_visible)) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      for (int64_t j = 0; j < Nk; ++j) prob[j] = row_visible[j] ? nan : 0.0;
      stats[i] = {nan, nan};
      continue;
    }
    if (row_max == minus_infinity) {
      for (int64_t j = 0; j < Nk; ++j) prob[j] = 0.0;
      stats[i] = {minus_infinity, minus_infinity};
      continue;
    }
    double sum = std::exp(sink - row_max);
    for (int64_t j = 0; j < Nk; ++j) sum += prob[j] = std::exp(s[j] - row_max);
    for (int64_t j = 0; j < Nk; ++j) prob[j] /= sum;
    stats[i] = {row_max, std::log(sum)};
  }
}

// The dropout multipliers of one (b, h), [Nq,Nk]: M_ij/(1-p), M_ij = 1 when score (b,h,i,j) is
// kept (dropout_lookup.hpp), else 0; all 1 without dropout.
void dropout_multipliers(const attention_params& p, int64_t b, int64_t h,
                         std::vector<double>& keep) {
  const double scale = 1.0 / (1.0 - static_cast<double>(p.dropout_p));
  const uint64_t threshold = detail::dropout_threshold(p.dropout_p);
  for (int64_t i = 0; i < p.Nq; ++i) {
    const uint64_t key = detail::dropout_row_key(p.dropout_seed, b, h, i);
    for (int64_t j = 0; j < p.Nk; ++j)
      keep[i * p.Nk + j] = p.dropout_p == 0.0f                        ? 1.0
                           : detail::dropout_keeps(key, j, threshold) ? scale
                                                                      : 0.0;
  }
}

}  // namespace

void sdpa_forward_reference(const attention_params& p, attention_observer* observer) {
  const int64_t Nq = p.Nq, Nk = p.Nk;
  const size_t n_scores = static_cast<size_t>(Nq * Nk);
  std::vector<double> scores(n_scores), scaled(n_scores), masked(n_scores), probs(n_scores);
  std::vector<double> keep(n_scores), weights(n_scores);
  std::vector<row_stats> stats(static_cast<size_t>(Nq));
  std::vector<double> out(static_cast<size_t>(Nq * p.dv));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h) {
      probabilities(p, b, h, scores, scaled, masked, probs, stats);
      // Pass 5: Z = P ∘ M/(1-p), the dropped-out weights (Z = P without dropout); lse stays
      // that of the un-dropped scores.
      dropout_multipliers(p, b, h, keep);
      for (size_t x = 0; x < n_scores; ++x) weights[x] = probs[x] * keep[x];
      // Pass 6: O = Z·V, each output row the weighted sum of the value rows (NaN for a row
      // the NaN rule poisons, even without a visible key).
      const int64_t hk = kv_head(p, h);
      for (int64_t i = 0; i < Nq; ++i)
        for (int64_t c = 0; c < p.dv; ++c) {
          double acc = std::isnan(stats[i].max) ? stats[i].max : 0.0;
          for (int64_t j = 0; j < Nk; ++j)
            acc +=
                weights[i * Nk + j] * at4(p.v, p.v_type, p.v_stride, b, hk, j)[c * p.v_stride[3]];
          out[i * p.dv + c] = acc;
        }
      const int64_t at = b * p.lse_stride[0] + h * p.lse_stride[1];
      for (int64_t i = 0; i < Nq; ++i) {
        float* o = at4(p.o, p.o_stride, b, h, i);
        for (int64_t c = 0; c < p.dv; ++c)
          o[c * p.o_stride[3]] = static_cast<float>(out[i * p.dv + c]);
        const int64_t x = at + i * p.lse_stride[2];
        if (p.lse) p.lse[x] = static_cast<float>(stats[i].lse());
        if (p.row_max) p.row_max[x] = static_cast<float>(stats[i].max);
        if (p.row_log_sum) p.row_log_sum[x] = static_cast<float>(stats[i].log_sum);
      }
      if (observer) {
        observer->on_step(attention_step::scores, b, h, scores.data(), Nq, Nk);
        observer->on_step(attention_step::scaled, b, h, scaled.data(), Nq, Nk);
        observer->on_step(attention_step::masked, b, h, masked.data(), Nq, Nk);
        observer->on_step(attention_step::probabilities, b, h, probs.data(), Nq, Nk);
        if (p.dropout_p != 0.0f)
          observer->on_step(attention_step::dropped, b, h, weights.data(), Nq, Nk);
        observer->on_step(attention_step::output, b, h, out.data(), Nq, p.dv);
      }
    }
}

void sdpa_backward_reference(const attention_grad_params& g) {
  const attention_params& p = g.forward;
  const int64_t Nq = p.Nq, Nk = p.Nk, d = p.d, dv = p.dv;
  const size_t n_scores = static_cast<size_t>(Nq * Nk);
  std::vector<double> scores(n_scores), scaled(n_scores), masked(n_scores), probs(n_scores);
  std::vector<double> dprobs(n_scores), dscores(n_scores), keep(n_scores);
  std::vector<row_stats> stats(static_cast<size_t>(Nq));
  std::vector<double> dsinks(static_cast<size_t>(p.Hq), 0.0);
  // dK and dV of one (b, kv head) accumulate over the query heads of its group in float64.
  std::vector<double> dk(static_cast<size_t>(Nk * d)), dvv(static_cast<size_t>(Nk * dv));
  const int64_t group = p.Hq / p.Hkv;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t hk = 0; hk < p.Hkv; ++hk) {
      std::fill(dk.begin(), dk.end(), 0.0);
      std::fill(dvv.begin(), dvv.end(), 0.0);
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        probabilities(p, b, h, scores, scaled, masked, probs, stats);
        dropout_multipliers(p, b, h, keep);
        // Pass 1: dV += Z^T·dO  (from O = Z·V, Z = P ∘ M/(1-p)).
        // Pass 2: dZ = dO·V^T, then dP = dZ ∘ M/(1-p)  (from Z = P ∘ M/(1-p)).
        for (int64_t i = 0; i < Nq; ++i) {
          const float* dout = at4(g.dout, g.dout_stride, b, h, i);
          for (int64_t j = 0; j < Nk; ++j) {
            const input_row v = at4(p.v, p.v_type, p.v_stride, b, hk, j);
            const double z = probs[i * Nk + j] * keep[i * Nk + j];
            double dz = 0.0;
            for (int64_t c = 0; c < dv; ++c) {
              const double dout_c = dout[c * g.dout_stride[3]];
              dvv[j * dv + c] += z * dout_c;
              dz += dout_c * v[c * p.v_stride[3]];
            }
            dprobs[i * Nk + j] = dz * keep[i * Nk + j];
          }
        }
        // Pass 3: the softmax backward, dS = P ∘ (dP - D) with D_i = sum_j P_ij·dP_ij (the
        // sink carries no value, so its own term is P_i,sink·(0 - D_i): d sink). A row with no
        // visible key has P = 0, hence dS = 0 and zero gradients.
        // Pass 4: through the softcap, d scaled = dS·(1 - tanh^2(scaled/c)); ALiBi and the mask
        // are constants.
        for (int64_t i = 0; i < Nq; ++i) {
          double D = 0.0;
          for (int64_t j = 0; j < Nk; ++j) D += probs[i * Nk + j] * dprobs[i * Nk + j];
          for (int64_t j = 0; j < Nk; ++j) {
            double ds = probs[i * Nk + j] * (dprobs[i * Nk + j] - D);
            if (p.softcap != 0.0f && ds != 0.0) {
              const double t = std::tanh(scaled[i * Nk + j] / p.softcap);
              ds *= 1.0 - t * t;
            }
            dscores[i * Nk + j] = ds;
          }
          if (p.sinks) dsinks[h] -= std::exp(p.sinks[h] - stats[i].lse()) * D;
        }
        // Pass 5: dQ = scale·dS·K and dK += scale·dS^T·Q  (from S = scale·Q·K^T + bias).
        for (int64_t i = 0; i < Nq; ++i) {
          const input_row q = at4(p.q, p.q_type, p.q_stride, b, h, i);
          float* dq = at4(g.dq, g.dq_stride, b, h, i);
          for (int64_t c = 0; c < d; ++c) {
            double acc = 0.0;
            for (int64_t j = 0; j < Nk; ++j)
              acc +=
                  dscores[i * Nk + j] * at4(p.k, p.k_type, p.k_stride, b, hk, j)[c * p.k_stride[3]];
            dq[c * g.dq_stride[3]] = static_cast<float>(p.scale * acc);
          }
          for (int64_t j = 0; j < Nk; ++j)
            for (int64_t c = 0; c < d; ++c)
              dk[j * d + c] += p.scale * dscores[i * Nk + j] * q[c * p.q_stride[3]];
        }
      }
      for (int64_t j = 0; j < Nk; ++j) {
        float* dk_out = at4(g.dk, g.dk_stride, b, hk, j);
        float* dv_out = at4(g.dv, g.dv_stride, b, hk, j);
        for (int64_t c = 0; c < d; ++c)
          dk_out[c * g.dk_stride[3]] = static_cast<float>(dk[j * d + c]);
        for (int64_t c = 0; c < dv; ++c)
          dv_out[c * g.dv_stride[3]] = static_cast<float>(dvv[j * dv + c]);
      }
    }
  if (g.dsinks)
    for (int64_t h = 0; h < p.Hq; ++h) g.dsinks[h] = p.sinks ? static_cast<float>(dsinks[h]) : 0.0f;
}

}  // namespace qkv
