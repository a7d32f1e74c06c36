// The direct fused-kernel calls of fused_runs.hpp.
#include "support/fused_runs.hpp"

#include <cmath>

namespace qkv::testing {

std::vector<simd_target> runnable_targets() {
  std::vector<simd_target> targets = {simd_target::portable};
  for (simd_target t : {simd_target::avx2, simd_target::avx512})
    if (simd_target_available(t)) targets.push_back(t);
  return targets;
}

sdpa_result fused_forward_on(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                             const sdpa_options& options, simd_target target, int threads) {
  attention_params p = make_attention_params(q, k, v, options);
  const shape_t rows = {p.B, p.Hq, p.Nq};
  sdpa_result r{tensor({p.B, p.Hq, p.Nq, p.dv}, std::nanf("")), tensor(rows), tensor(rows),
                tensor(rows)};
  p.o = r.out.data();
  p.lse = r.lse.data();
  p.row_max = r.row_max.data();
  p.row_log_sum = r.row_log_sum.data();
  p.threads = threads;
  sdpa_forward_fused(p, target);
  return r;
}

sdpa_gradients fused_backward_on(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                                 const sdpa_result& forward, const tensor& dout,
                                 const sdpa_options& options, simd_target target, int threads) {
  attention_grad_params g;
  g.forward = make_attention_params(q, k, v, options);
  g.forward.threads = threads;
  const attention_params& p = g.forward;
  sdpa_gradients got{tensor(q.shape()), tensor(k.shape()), tensor(v.shape()),
                     p.sinks ? tensor({p.Hq}) : tensor()};
  g.out = forward.out.data();
  g.row_max = forward.row_max.data();
  g.row_log_sum = forward.row_log_sum.data();
  g.dout = dout.data();
  g.dq = got.dq.data();
  g.dk = got.dk.data();
  g.dv = got.dv.data();
  g.dsinks = p.sinks ? got.dsinks.data() : nullptr;
  for (int a = 0; a < 4; ++a) {
    g.dout_stride[a] = dout.strides()[a];
    g.dq_stride[a] = got.dq.strides()[a];
    g.dk_stride[a] = got.dk.strides()[a];
    g.dv_stride[a] = got.dv.strides()[a];
  }
  sdpa_backward_fused(g, target);
  return got;
}

}  // namespace qkv::testing
