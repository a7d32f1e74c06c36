// The naive fp32 attention of naive_attention.hpp, written for plainness (contiguous tensors).
#include "support/naive_attention.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/dropout_lookup.hpp"
#include "kernels/mask_lookup.hpp"

namespace qkv::testing {

sdpa_result sdpa_forward_naive_fp32(const tensor& q, const tensor& k, const tensor& v,
                                    const sdpa_options& options) {
  const attention_params p = make_attention_params(q, k, v, options);
  sdpa_result r{tensor({p.B, p.Hq, p.Nq, p.dv}), tensor({p.B, p.Hq, p.Nq})};
  std::vector<float> s(static_cast<size_t>(p.Nk));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.Hq; ++h) {
      const int64_t hk = h / (p.Hq / p.Hkv);
      const float* kh = k.data() + (b * p.Hkv + hk) * p.Nk * p.d;
      const float* vh = v.data() + (b * p.Hkv + hk) * p.Nk * p.dv;
      for (int64_t i = 0; i < p.Nq; ++i) {
        const float* qi = q.data() + ((b * p.Hq + h) * p.Nq + i) * p.d;
        float* oi = r.out.data() + ((b * p.Hq + h) * p.Nq + i) * p.dv;
        // S = scale·Q·K^T + bias, then softmax with the row maximum subtracted, then P·V.
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < p.Nk; ++j) {
          float dot = 0.0f;
          for (int64_t c = 0; c < p.d; ++c) dot += qi[c] * kh[j * p.d + c];
          s[j] = p.scale * dot + static_cast<float>(detail::score_bias(p, b, h, i, j));
          mx = std::fmax(mx, s[j]);
        }
        if (mx == -std::numeric_limits<float>::infinity()) {
          r.lse.at({b, h, i}) = mx;
          continue;  // O stays 0
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < p.Nk; ++j) sum += s[j] = std::exp(s[j] - mx);
        for (int64_t j = 0; j < p.Nk; ++j) s[j] /= sum;
        detail::apply_attention_dropout(p, b, h, i, 0, p.Nk, s.data());  // Z = P ∘ M/(1-p)
        for (int64_t c = 0; c < p.dv; ++c) {
          float acc = 0.0f;
          for (int64_t j = 0; j < p.Nk; ++j) acc += s[j] * vh[j * p.dv + c];
          oi[c] = acc;
        }
        r.lse.at({b, h, i}) = mx + std::log(sum);
      }
    }
  return r;
}

}  // namespace qkv::testing
