// The KV cache. Legend: B batch, Hq/Hkv query/kv heads, n new positions, Nk = length() cached
// keys, d key dim, dv value dim. The cached keys are passed to the kernel in place through
// attention_params strides (head stride capacity·d), so a step never copies the cache.
#include "qkv/nn/kv_cache.hpp"

#include <algorithm>

#include "qkv/error.hpp"
#include "qkv/fused.hpp"
#include "qkv/reference.hpp"

namespace qkv::nn {

kv_cache::kv_cache(int64_t B, int64_t Hkv, int64_t capacity, int64_t d, int64_t dv) {
  if (B < 1 || Hkv < 1 || capacity < 1 || d < 1 || dv < 1)
    throw error("kv_cache: B, Hkv, capacity, d and dv must be >= 1, got B = " + std::to_string(B) +
                ", Hkv = " + std::to_string(Hkv) + ", capacity = " + std::to_string(capacity) +
                ", d = " + std::to_string(d) + ", dv = " + std::to_string(dv));
  keys_ = tensor({B, Hkv, capacity, d});
  values_ = tensor({B, Hkv, capacity, dv});
}

void kv_cache::append(const tensor& k, const tensor& v) {
  const int64_t B = keys_.size(0), Hkv = keys_.size(1), cap = capacity();
  const int64_t d = keys_.size(3), dv = values_.size(3);
  const std::string shapes = " (k " + to_string(k.shape()) + ", v " + to_string(v.shape()) +
                             ", cache [B,Hkv,capacity,d] = " + to_string(keys_.shape()) + ")";
  if (k.rank() != 4 || k.size(0) != B || k.size(1) != Hkv || k.size(3) != d)
    throw error("k: expected [B,Hkv,n,d] matching the cache" + shapes);
  const int64_t n = k.size(2);
  if (v.shape() != shape_t{B, Hkv, n, dv})
    throw error("v: expected [B,Hkv,n,dv] = " + to_string({B, Hkv, n, dv}) + shapes);
  if (length_ + n > cap)
    throw error("kv_cache: full: cannot append " + std::to_string(n) + " position(s) to " +
                std::to_string(length_) + " of capacity " + std::to_string(cap) +
                " (make a larger cache or clear it)");
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hkv; ++h) {
      const int64_t src = (b * Hkv + h) * n, dst = (b * Hkv + h) * cap + length_;
      std::copy(k.data() + src * d, k.data() + (src + n) * d, keys_.data() + dst * d);
      std::copy(v.data() + src * dv, v.data() + (src + n) * dv, values_.data() + dst * dv);
    }
  length_ += n;
}

void kv_cache::truncate(int64_t length) {
  if (length < 0 || length > length_)
    throw error("length: must be in [0, " + std::to_string(length_) +
                "] (the cached positions), got " + std::to_string(length));
  length_ = length;
}

sdpa_result kv_cache::attend(const tensor& q, sdpa_impl impl, int threads) const {
  const int64_t B = keys_.size(0), Hkv = keys_.size(1), cap = capacity();
  const int64_t d = keys_.size(3), dv = values_.size(3);
  if (q.rank() != 4 || q.size(0) != B || q.size(3) != d || q.size(1) % Hkv != 0)
    throw error(
        "q: expected [B,Hq,n,d] with B = " + std::to_string(B) + ", d = " + std::to_string(d) +
        " and Hq a multiple of Hkv = " + std::to_string(Hkv) + ", got " + to_string(q.shape()));
  if (length_ == 0 || q.size(2) > length_)
    throw error("q: " + std::to_string(q.size(2)) + " queries but only " + std::to_string(length_) +
                " cached positions (append their keys first)");
  // Validate the options on a cache-free shape, then point the kernel at the cache in place.
  sdpa_options options;
  options.causal = causal_mode::bottom_right;
  options.impl = impl;
  options.threads = threads;
  const tensor probe_k({B, Hkv, 1, d}), probe_v({B, Hkv, 1, dv});
  attention_params p = make_attention_params(q, probe_k, probe_v, options);
  p.k = keys_.data();
  p.v = values_.data();
  p.Nk = length_;
  const int64_t k_stride[4] = {Hkv * cap * d, cap * d, d, 1};
  const int64_t v_stride[4] = {Hkv * cap * dv, cap * dv, dv, 1};
  std::copy(k_stride, k_stride + 4, p.k_stride);
  std::copy(v_stride, v_stride + 4, p.v_stride);

  const int64_t Hq = q.size(1), n = q.size(2);
  sdpa_result r{tensor({B, Hq, n, dv}), tensor({B, Hq, n})};
  p.o = r.out.data();
  p.lse = r.lse.data();
  const bool fused =
      impl == sdpa_impl::fused || (impl == sdpa_impl::auto_select && fused_kernel_available());
  if (fused)
    sdpa_forward_fused(p);
  else
    sdpa_forward_reference(p);
  return r;
}

}  // namespace qkv::nn
