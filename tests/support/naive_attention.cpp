// The naive fp32 attention of naive_attention.hpp, written for plainness (contiguous tensors).
#include "support/naive_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/dropout_lookup.hpp"
#include "kernels/visibility.hpp"

namespace qkv::testing {
namespace {

constexpr float minus_inf = -std::numeric_limits<float>::infinity();

// P of one (b, h) [Nq,Nk] in fp32: S = softcap(scale·q·k) - slope·|i + o - j| + bias, -inf where
// hidden, softmax with the row maximum subtracted and the sink in the denominator; lse [Nq].
// With a softcap, cap = 1 - tanh^2 (the softcap's derivative) [Nq,Nk].
void naive_probabilities(const attention_params& p, const tensor& q, const tensor& k, int64_t b,
                         int64_t h, std::vector<float>& P, std::vector<float>& cap,
                         std::vector<float>& lse) {
  const detail::visibility vis(p);
  const int64_t hk = h / (p.Hq / p.Hkv);
  const float* kh = k.data() + (b * p.Hkv + hk) * p.Nk * p.d;
  const float sink = p.sinks ? p.sinks[h] : minus_inf;
  for (int64_t i = 0; i < p.Nq; ++i) {
    const float* qi = q.data() + ((b * p.Hq + h) * p.Nq + i) * p.d;
    const detail::key_band band = vis.band(i);
    const detail::mask_row mask(p, b, h, i);
    float* s = &P[i * p.Nk];
    float mx = sink;
    for (int64_t j = 0; j < p.Nk; ++j) {
      float dot = 0.0f;
      for (int64_t c = 0; c < p.d; ++c) dot += qi[c] * kh[j * p.d + c];
      float x = p.scale * dot;
      if (p.softcap != 0.0f) {
        const float t = std::tanh(x / p.softcap);
        x = p.softcap * t;
        cap[i * p.Nk + j] = 1.0f - t * t;
      }
      if (p.alibi_slopes) x -= p.alibi_slopes[h] * static_cast<float>(vis.distance(i, j));
      s[j] = j < band.lo || j >= band.hi ? minus_inf : x + mask.bias(j);
      mx = std::fmax(mx, s[j]);
    }
    if (mx == minus_inf) {
      std::fill(s, s + p.Nk, 0.0f);
      lse[i] = minus_inf;
      continue;
    }
    float sum = std::exp(sink - mx);
    for (int64_t j = 0; j < p.Nk; ++j) sum += s[j] = std::exp(s[j] - mx);
    for (int64_t j = 0; j < p.Nk; ++j) s[j] /= sum;
    lse[i] = mx + std::log(sum);
  }
}

}  // namespace

sdpa_result sdpa_forward_naive_fp32(const tensor& q, const tensor& k, const tensor& v,
                                    const sdpa_options& options) {
  const attention_params p = make_attention_params(q, k, v, options);
  sdpa_result r{tensor({p.B, p.Hq, p.Nq, p.dv}), tensor({p.B, p.Hq, p.Nq}), {}, {}};
  std::vector<float> P(static_cast<size_t>(p.Nq * p.Nk)), cap(P.size());
  std::vector<float> lse(static_cast<size_t>(p.Nq));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h) {
      naive_probabilities(p, q, k, b, h, P, cap, lse);
      const float* vh = v.data() + (b * p.Hkv + h / (p.Hq / p.Hkv)) * p.Nk * p.dv;
      for (int64_t i = 0; i < p.Nq; ++i) {
        float* s = &P[i * p.Nk];
        detail::apply_attention_dropout(p, b, h, i, 0, p.Nk, s);  // Z = P ∘ M/(1-p)
        float* oi = r.out.data() + ((b * p.Hq + h) * p.Nq + i) * p.dv;
        for (int64_t c = 0; c < p.dv; ++c) {
          float acc = 0.0f;
          for (int64_t j = 0; j < p.Nk; ++j) acc += s[j] * vh[j * p.dv + c];
          oi[c] = acc;
        }
        r.lse.at({b, h, i}) = lse[i];
      }
    }
  return r;
}

sdpa_gradients sdpa_backward_naive_fp32(const tensor& q, const tensor& k, const tensor& v,
                                        const tensor& dout, const sdpa_options& options) {
  const attention_params p = make_attention_params(q, k, v, options);
  const int64_t Nq = p.Nq, Nk = p.Nk, d = p.d, dv = p.dv, group = p.Hq / p.Hkv;
  sdpa_gradients g{tensor(q.shape()), tensor(k.shape()), tensor(v.shape()),
                   p.sinks ? tensor({p.Hq}) : tensor()};
  std::vector<float> P(static_cast<size_t>(Nq * Nk)), Z(P.size()), dS(P.size()), cap(P.size());
  std::vector<float> lse(static_cast<size_t>(Nq));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h) {
      // Row-major [N,C] matrices of this (b, h) and its kv head.
      const int64_t hk = h / group, bh = b * p.Hq + h, bk = b * p.Hkv + hk;
      const float* Q = q.data() + bh * Nq * d;
      const float* dO = dout.data() + bh * Nq * dv;
      const float* K = k.data() + bk * Nk * d;
      const float* V = v.data() + bk * Nk * dv;
      float* dQ = g.dq.data() + bh * Nq * d;
      float* dK = g.dk.data() + bk * Nk * d;
      float* dV = g.dv.data() + bk * Nk * dv;
      naive_probabilities(p, q, k, b, h, P, cap, lse);
      for (int64_t i = 0; i < Nq; ++i) {  // Z = P ∘ M/(1-p), the weights O = Z·V used
        std::copy_n(&P[i * Nk], Nk, &Z[i * Nk]);
        detail::apply_attention_dropout(p, b, h, i, 0, Nk, &Z[i * Nk]);
      }
      // dV += Z^T·dO, dP = (dO·V^T) ∘ M/(1-p), dS = P ∘ (dP - D) (through the softcap),
      // d sink -= exp(sink - lse)·D.
      for (int64_t i = 0; i < Nq; ++i) {
        float D = 0.0f;
        for (int64_t j = 0; j < Nk; ++j) {
          float dz = 0.0f;
          for (int64_t c = 0; c < dv; ++c) {
            dV[j * dv + c] += Z[i * Nk + j] * dO[i * dv + c];
            dz += dO[i * dv + c] * V[j * dv + c];
          }
          dS[i * Nk + j] = dz;
        }
        detail::apply_attention_dropout(p, b, h, i, 0, Nk, &dS[i * Nk]);
        for (int64_t j = 0; j < Nk; ++j) D += P[i * Nk + j] * dS[i * Nk + j];
        for (int64_t j = 0; j < Nk; ++j) {
          dS[i * Nk + j] = P[i * Nk + j] * (dS[i * Nk + j] - D);
          if (p.softcap != 0.0f) dS[i * Nk + j] *= cap[i * Nk + j];
        }
        if (p.sinks) g.dsinks[h] -= std::exp(p.sinks[h] - lse[i]) * D;
      }
      for (int64_t i = 0; i < Nq; ++i)  // dQ = scale·dS·K, dK += scale·dS^T·Q
        for (int64_t j = 0; j < Nk; ++j)
          for (int64_t c = 0; c < d; ++c) {
            dQ[i * d + c] += p.scale * dS[i * Nk + j] * K[j * d + c];
            dK[j * d + c] += p.scale * dS[i * Nk + j] * Q[i * d + c];
          }
    }
  return g;
}

}  // namespace qkv::testing
