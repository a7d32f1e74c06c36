// The exact reference attention (float64 accumulation), forward and backward.
// Legend: B batch, Hq/Hkv query/kv heads, Nq queries, Nk keys, d head dim, dv value dim;
// i indexes queries, j keys, c head-dim channels. Equations cite DESIGN.md section 2.
#include "qkv/reference.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "dropout_lookup.hpp"
#include "mask_lookup.hpp"

namespace qkv {
namespace {

constexpr double minus_infinity = -std::numeric_limits<double>::infinity();

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

// Passes 1-4 for one (b, h): scores, scaled, masked, probabilities (all [Nq,Nk], row-major),
// and the logsumexp of each masked row. Returns nothing; fills the vectors given.
void probabilities(const attention_params& p, int64_t b, int64_t h, std::vector<double>& scores,
                   std::vector<double>& scaled, std::vector<double>& masked,
                   std::vector<double>& probs, std::vector<double>& lse) {
  const int64_t Nq = p.Nq, Nk = p.Nk, hk = kv_head(p, h);
  // Pass 1: scores = Q·K^T, the dot product of every query with every key.
  for (int64_t i = 0; i < Nq; ++i) {
    const float* q = at4(p.q, p.q_stride, b, h, i);
    for (int64_t j = 0; j < Nk; ++j) {
      const float* k = at4(p.k, p.k_stride, b, hk, j);
      double dot = 0.0;
      for (int64_t c = 0; c < p.d; ++c)
        dot += static_cast<double>(q[c * p.q_stride[3]]) * k[c * p.k_stride[3]];
      scores[i * Nk + j] = dot;
    }
  }
  // Pass 2: scaled = scale·Q·K^T.  Pass 3: S = scaled + bias (-inf where the key is hidden).
  for (int64_t i = 0; i < Nq; ++i)
    for (int64_t j = 0; j < Nk; ++j) {
      scaled[i * Nk + j] = p.scale * scores[i * Nk + j];
      masked[i * Nk + j] = scaled[i * Nk + j] + detail::score_bias(p, b, h, i, j);
    }
  // Pass 4: P = softmax_rows(S), subtracting the row maximum so that exp never overflows;
  // lse = max + log(sum exp(S - max)). A row with no visible key: P = 0, lse = -inf.
  for (int64_t i = 0; i < Nq; ++i) {
    const double* s = &masked[i * Nk];
    double* prob = &probs[i * Nk];
    double row_max = minus_infinity;
    for (int64_t j = 0; j < Nk; ++j) row_max = std::fmax(row_max, s[j]);
    if (row_max == minus_infinity) {
      for (int64_t j = 0; j < Nk; ++j) prob[j] = 0.0;
      lse[i] = minus_infinity;
      continue;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < Nk; ++j) sum += prob[j] = std::exp(s[j] - row_max);
    for (int64_t j = 0; j < Nk; ++j) prob[j] /= sum;
    lse[i] = row_max + std::log(sum);
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
  std::vector<double> lse(static_cast<size_t>(Nq)), out(static_cast<size_t>(Nq * p.dv));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h) {
      probabilities(p, b, h, scores, scaled, masked, probs, lse);
      // Pass 5: Z = P ∘ M/(1-p), the dropped-out weights (Z = P without dropout); lse stays
      // that of the un-dropped scores.
      dropout_multipliers(p, b, h, keep);
      for (size_t x = 0; x < n_scores; ++x) weights[x] = probs[x] * keep[x];
      // Pass 6: O = Z·V, each output row the weighted sum of the value rows.
      const int64_t hk = kv_head(p, h);
      for (int64_t i = 0; i < Nq; ++i)
        for (int64_t c = 0; c < p.dv; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < Nk; ++j)
            acc += weights[i * Nk + j] * at4(p.v, p.v_stride, b, hk, j)[c * p.v_stride[3]];
          out[i * p.dv + c] = acc;
        }
      for (int64_t i = 0; i < Nq; ++i) {
        float* o = at4(p.o, p.o_stride, b, h, i);
        for (int64_t c = 0; c < p.dv; ++c)
          o[c * p.o_stride[3]] = static_cast<float>(out[i * p.dv + c]);
        if (p.lse)
          p.lse[b * p.lse_stride[0] + h * p.lse_stride[1] + i * p.lse_stride[2]] =
              static_cast<float>(lse[i]);
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
  std::vector<double> lse(static_cast<size_t>(Nq)), dprobs(n_scores), dscores(n_scores);
  std::vector<double> keep(n_scores);
  // dK and dV of one (b, kv head) accumulate over the query heads of its group in float64.
  std::vector<double> dk(static_cast<size_t>(Nk * d)), dvv(static_cast<size_t>(Nk * dv));
  const int64_t group = p.Hq / p.Hkv;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t hk = 0; hk < p.Hkv; ++hk) {
      std::fill(dk.begin(), dk.end(), 0.0);
      std::fill(dvv.begin(), dvv.end(), 0.0);
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        probabilities(p, b, h, scores, scaled, masked, probs, lse);
        dropout_multipliers(p, b, h, keep);
        // Pass 1: dV += Z^T·dO  (from O = Z·V, Z = P ∘ M/(1-p)).
        // Pass 2: dZ = dO·V^T, then dP = dZ ∘ M/(1-p)  (from Z = P ∘ M/(1-p)).
        for (int64_t i = 0; i < Nq; ++i) {
          const float* dout = at4(g.dout, g.dout_stride, b, h, i);
          for (int64_t j = 0; j < Nk; ++j) {
            const float* v = at4(p.v, p.v_stride, b, hk, j);
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
        // Pass 3: the softmax backward, dS = P ∘ (dP - D) with D_i = sum_j P_ij·dP_ij.
        // A row with no visible key has P = 0, hence dS = 0 and zero gradients.
        for (int64_t i = 0; i < Nq; ++i) {
          double D = 0.0;
          for (int64_t j = 0; j < Nk; ++j) D += probs[i * Nk + j] * dprobs[i * Nk + j];
          for (int64_t j = 0; j < Nk; ++j)
            dscores[i * Nk + j] = probs[i * Nk + j] * (dprobs[i * Nk + j] - D);
        }
        // Pass 4: dQ = scale·dS·K and dK += scale·dS^T·Q  (from S = scale·Q·K^T + bias).
        for (int64_t i = 0; i < Nq; ++i) {
          const float* q = at4(p.q, p.q_stride, b, h, i);
          float* dq = at4(g.dq, g.dq_stride, b, h, i);
          for (int64_t c = 0; c < d; ++c) {
            double acc = 0.0;
            for (int64_t j = 0; j < Nk; ++j)
              acc += dscores[i * Nk + j] * at4(p.k, p.k_stride, b, hk, j)[c * p.k_stride[3]];
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
}

}  // namespace qkv
