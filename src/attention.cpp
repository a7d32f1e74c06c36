// The dispatcher: validation of every input (the math's rules on shapes and options, the views'
// dtypes and strides), the kernels' parameter structs filled from the views' strides, the
// choice of kernel, and the call. Legend: B batch, Hq/Hkv query/kv heads, Nq queries, Nk keys,
// d query/key head dim, dv value head dim.
#include "qkv/attention.hpp"

#include "attention_dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "qkv/error.hpp"
#include "qkv/fused.hpp"
#include "qkv/reference.hpp"

namespace qkv {
namespace {

std::string describe(const char* name, const shape_t& shape) {
  return std::string(name) + " " + to_string(shape);
}

void require_f32(const char* name, const tensor_view& t) {
  if (t.type() != dtype::f32)
    throw error(name, std::string("dtype ") + to_string(t.type()) +
                          " is not supported here (f32 only), shape " + to_string(t.shape()));
}

// An output view: f32, exactly `shape`, elements that do not overlap.
void require_output(const char* name, const tensor_view& t, const shape_t& shape) {
  if (t.shape() != shape)
    throw error(name, "expected shape " + to_string(shape) + ", got " + to_string(t.shape()));
  require_f32(name, t);
  if (overlaps(t))
    throw error(name, "an output's elements must not overlap, got strides " +
                          to_string(t.strides()) + " for shape " + to_string(shape));
}

// An input the kernels read: rank 4, sizes >= 1, rows contiguous (stride 1 along the last
// dimension, which the fused kernels' SIMD loads and sgemm calls need); f32 unless `any_type`
// (q, k and v may be stored in any dtype).
void require_input(const char* name, const char* layout, const tensor_view& t,
                   bool any_type = false) {
  const shape_t& shape = t.shape();
  if (shape.size() != 4)
    throw error(name, std::string("expected rank 4 ") + layout + ", got shape " + to_string(shape));
  for (int64_t s : shape)
    if (s < 1) throw error(name, "every dimension must be >= 1, got shape " + to_string(shape));
  if (!any_type) require_f32(name, t);
  if (t.stride(3) != 1 && t.size(3) > 1)
    throw error(name,
                "the last dimension must have stride 1 (rows are read in "
                "place), got strides " +
                    to_string(t.strides()) + " for shape " + to_string(shape));
}

// A rank-4 view's strides. A last dimension of one element is given stride 1 (it is never
// stepped along, and the kernels may then treat every row as contiguous).
void copy_strides(int64_t (&dst)[4], const tensor_view& t) {
  for (int64_t i = 0; i < 4; ++i) dst[i] = i == 3 && t.size(3) == 1 ? 1 : t.stride(i);
}

// Strides that broadcast `shape` (rank 2..4) to `target` [B,Hq,Nq,Nk] by NumPy's rules.
void broadcast_mask(const char* kind, const shape_t& shape, const shape_t& target,
                    int64_t (&stride)[4]) {
  const auto fail = [&] {
    throw error("mask", std::string("a ") + kind + " mask of shape " + to_string(shape) +
                            " does not broadcast to [B,Hq,Nq,Nk] = " + to_string(target) +
                            " (rank 2 to 4, each dimension equal or 1, aligned from the right)");
  };
  if (shape.size() < 2 || shape.size() > 4) fail();
  const shape_t own = contiguous_strides(shape);
  const size_t offset = 4 - shape.size();
  for (size_t t = 0; t < 4; ++t) {
    stride[t] = 0;
    if (t < offset) continue;
    const int64_t size = shape[t - offset];
    if (size == target[t])
      stride[t] = size == 1 ? 0 : own[t - offset];
    else if (size != 1)
      fail();
  }
}

// A per-head modifier vector: shape [Hq], every value finite.
const float* head_vector(const char* name, const std::optional<tensor>& t, int64_t Hq) {
  if (!t) return nullptr;
  if (t->shape() != shape_t{Hq})
    throw error(name, "expected one value per query head, shape [Hq] = [" + std::to_string(Hq) +
                          "], got " + to_string(t->shape()));
  for (int64_t h = 0; h < Hq; ++h)
    if (!std::isfinite((*t)[h])) {
      std::ostringstream msg;
      msg << "every value must be finite, got " << (*t)[h] << " for head " << h << " (shape "
          << to_string(t->shape()) << ")";
      throw error(name, msg.str());
    }
  return t->data();
}

}  // namespace

const char* to_string(sdpa_impl impl) {
  switch (impl) {
    case sdpa_impl::reference:
      return "reference";
    case sdpa_impl::fused:
      return "fused";
    default:
      return "auto";
  }
}

sdpa_impl parse_sdpa_impl(const std::string& text, const std::string& argument) {
  for (sdpa_impl impl : {sdpa_impl::reference, sdpa_impl::fused, sdpa_impl::auto_select})
    if (text == to_string(impl)) return impl;
  throw error(argument, "expected reference, fused or auto, got '" + text + "'");
}

causal_mode parse_causal_mode(const std::string& text, const std::string& argument) {
  if (text == "none") return causal_mode::none;
  if (text == "top-left") return causal_mode::top_left;
  if (text == "bottom-right") return causal_mode::bottom_right;
  throw error(argument, "expected none, top-left or bottom-right, got '" + text + "'");
}

const char* to_string(causal_mode mode) {
  switch (mode) {
    case causal_mode::top_left:
      return "top-left";
    case causal_mode::bottom_right:
      return "bottom-right";
    default:
      return "none";
  }
}

attention_params make_attention_params(const tensor_view& q, const tensor_view& k,
                                       const tensor_view& v, const sdpa_options& options) {
  require_input("q", "[B,Hq,Nq,d]", q, true);
  require_input("k", "[B,Hkv,Nk,d]", k, true);
  require_input("v", "[B,Hkv,Nk,dv]", v, true);
  const std::string shapes = " (" + describe("q", q.shape()) + ", " + describe("k", k.shape()) +
                             ", " + describe("v", v.shape()) + ")";
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0))
    throw error("k, v: batch size B must equal q's" + shapes);
  if (v.size(1) != k.size(1)) throw error("v", "kv heads Hkv must equal k's" + shapes);
  if (q.size(1) % k.size(1) != 0)
    throw error("q, k: query heads Hq (" + std::to_string(q.size(1)) +
                ") must be a multiple of kv heads Hkv (" + std::to_string(k.size(1)) + ")" +
                shapes);
  if (v.size(2) != k.size(2)) throw error("v", "key count Nk must equal k's" + shapes);
  if (k.size(3) != q.size(3)) throw error("k", "head dim d must equal q's" + shapes);

  attention_params p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.q_type = q.type();
  p.k_type = k.type();
  p.v_type = v.type();
  p.B = q.size(0);
  p.Hq = q.size(1);
  p.Hkv = k.size(1);
  p.Nq = q.size(2);
  p.Nk = k.size(2);
  p.d = q.size(3);
  p.dv = v.size(3);
  copy_strides(p.q_stride, q);
  copy_strides(p.k_stride, k);
  copy_strides(p.v_stride, v);
  // Row-major outputs until bind_outputs points them at the caller's views.
  const shape_t o_stride = contiguous_strides({p.B, p.Hq, p.Nq, p.dv});
  std::copy(o_stride.begin(), o_stride.end(), p.o_stride);
  p.lse_stride[0] = p.Hq * p.Nq;
  p.lse_stride[1] = p.Nq;
  p.lse_stride[2] = 1;

  if (options.scale) {
    const float s = *options.scale;
    if (!std::isfinite(s) || s <= 0.0f) {
      std::ostringstream msg;
      msg << "must be finite and > 0, got " << s;
      throw error("scale", msg.str());
    }
    p.scale = s;
  } else {
    p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.d)));
  }
  p.causal = options.causal;
  const score_modifiers& mods = options.modifiers;
  if (mods.window) {
    const auto [left, right] = *mods.window;
    if (left < -1 || right < -1)
      throw error("window", "each side must be >= -1 (-1 = unbounded), got (" +
                                std::to_string(left) + ", " + std::to_string(right) + ")");
    p.window_left = left;
    p.window_right = right;
  }
  if (mods.softcap) {
    const float c = *mods.softcap;
    if (!std::isfinite(c) || c <= 0.0f) {
      std::ostringstream msg;
      msg << "must be finite and > 0, got " << c;
      throw error("softcap", msg.str());
    }
    p.softcap = c;
  }
  p.alibi_slopes = head_vector("alibi_slopes", mods.alibi_slopes, p.Hq);
  p.sinks = head_vector("sinks", mods.sinks, p.Hq);

  const attention_mask& m = options.mask;
  if (m.boolean && m.additive) throw error("mask", "give a boolean or an additive mask, not both");
  const shape_t target = {p.B, p.Hq, p.Nq, p.Nk};
  if (m.boolean) {
    broadcast_mask("boolean", m.boolean->shape(), target, p.mask.stride);
    p.mask.kind = mask_kind::boolean;
    p.mask.data = m.boolean->data();
  } else if (m.additive) {
    broadcast_mask("float", m.additive->shape(), target, p.mask.stride);
    p.mask.kind = mask_kind::additive;
    p.mask.data = m.additive->data();
  }
  if (!(options.dropout_p >= 0.0f && options.dropout_p < 1.0f)) {
    std::ostringstream msg;
    msg << "must be in [0, 1), got " << options.dropout_p;
    throw error("dropout_p", msg.str());
  }
  p.dropout_p = options.dropout_p;
  p.dropout_seed = options.dropout_seed;
  p.threads = options.run.threads;
  if (p.threads < 0)
    throw error("threads", "must be >= 0 (0 = default), got " + std::to_string(p.threads));
  return p;
}

namespace {

// The kernel to run: auto is the fused kernel, unless an observer wants the reference's steps.
sdpa_impl resolve_impl(sdpa_impl impl, const attention_observer* observer) {
  if (observer && impl == sdpa_impl::fused)
    throw error("impl", "an observer needs the reference kernel (its named steps); got fused");
  if (impl != sdpa_impl::auto_select) return impl;
  return observer ? sdpa_impl::reference : sdpa_impl::fused;
}

// The fused kernels' storage types: Q of any dtype, K and V of one dtype (each kernel is compiled
// per K/V storage type); the reference reads every combination.
void require_fused_types(const attention_params& p) {
  if (p.k_type != p.v_type)
    throw error("v", std::string("dtype ") + to_string(p.v_type) + " differs from k's (" +
                         to_string(p.k_type) +
                         "): the fused kernel reads K and V of one storage type; the reference "
                         "kernel reads any combination");
}

void run_forward(const attention_params& p, sdpa_impl impl, attention_observer* observer) {
  if (resolve_impl(impl, observer) == sdpa_impl::fused) {
    require_fused_types(p);
    sdpa_forward_fused(p);
  } else {
    sdpa_forward_reference(p, observer);
  }
}

// Checks the output views against the inputs' sizes and points p at them.
void bind_outputs(attention_params& p, const sdpa_output_views& out) {
  require_output("out", out.out, {p.B, p.Hq, p.Nq, p.dv});
  p.o = out.out.mutable_f32();
  copy_strides(p.o_stride, out.out);
  p.lse = p.row_max = p.row_log_sum = nullptr;
  if (out.lse) {
    require_output("lse", *out.lse, {p.B, p.Hq, p.Nq});
    p.lse = out.lse->mutable_f32();
    for (int64_t i = 0; i < 3; ++i) p.lse_stride[i] = out.lse->stride(i);
  }
  if (!out.row_max && !out.row_log_sum) return;
  if (!out.lse || !out.row_max || !out.row_log_sum)
    throw error("row_max, row_log_sum: give both, and only together with lse");
  require_output("row_max", *out.row_max, {p.B, p.Hq, p.Nq});
  require_output("row_log_sum", *out.row_log_sum, {p.B, p.Hq, p.Nq});
  if (out.row_max->strides() != out.lse->strides() ||
      out.row_log_sum->strides() != out.lse->strides())
    throw error("row_max, row_log_sum: must have lse's strides " + to_string(out.lse->strides()) +
                ", got " + to_string(out.row_max->strides()) + " and " +
                to_string(out.row_log_sum->strides()));
  p.row_max = out.row_max->mutable_f32();
  p.row_log_sum = out.row_log_sum->mutable_f32();
}

// Points the backward at its forward's row statistics (and their strides). A forward saved as O
// and lse alone gives m = lse, log l = 0, exact except where |lse| is so large that fp32 rounds
// log l away; the returned tensor [2,B,Hq,Nq] then holds that copy (empty otherwise).
tensor bind_row_statistics(attention_grad_params& g, const sdpa_saved& forward) {
  attention_params& p = g.forward;
  const shape_t rows = {p.B, p.Hq, p.Nq};
  if (forward.row_max || forward.row_log_sum) {
    if (!forward.row_max || !forward.row_log_sum)
      throw error("forward", "give both row_max and row_log_sum, or neither");
    for (const auto& [name, view] : {std::pair{"forward.row_max", *forward.row_max},
                                     std::pair{"forward.row_log_sum", *forward.row_log_sum}}) {
      require_f32(name, view);
      if (view.shape() != rows || view.strides() != forward.lse.strides())
        throw error(name, "must have lse's shape " + to_string(rows) + " and strides " +
                              to_string(forward.lse.strides()) + ", got shape " +
                              to_string(view.shape()) + ", strides " + to_string(view.strides()));
    }
    g.row_max = forward.row_max->f32();
    g.row_log_sum = forward.row_log_sum->f32();
    for (int64_t i = 0; i < 3; ++i) p.lse_stride[i] = forward.lse.stride(i);
    return tensor();
  }
  const int64_t n = element_count(rows);
  tensor stats({2, p.B, p.Hq, p.Nq});  // zeros: log l = 0
  const tensor lse = forward.lse.to_tensor();
  std::copy_n(lse.data(), n, stats.data());
  g.row_max = stats.data();
  g.row_log_sum = stats.data() + n;
  p.lse_stride[0] = p.Hq * p.Nq;
  p.lse_stride[1] = p.Nq;
  p.lse_stride[2] = 1;
  return stats;
}

// The observer behind sdpa_forward_with_weights: P of each (b, h) into [B,Hq,Nq,Nk].
class weights_recorder : public attention_observer {
 public:
  explicit weights_recorder(tensor& P) : P_(P) {}
  void on_step(attention_step step, int64_t b, int64_t h, const double* values, int64_t rows,
               int64_t cols) override {
    if (step != attention_step::probabilities) return;
    float* dst = P_.data() + (b * P_.size(1) + h) * rows * cols;
    for (int64_t e = 0; e < rows * cols; ++e) dst[e] = static_cast<float>(values[e]);
  }

 private:
  tensor& P_;
};

}  // namespace

void sdpa_forward_into(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                       const sdpa_output_views& out, const sdpa_options& options) {
  attention_params p = make_attention_params(q, k, v, options);
  bind_outputs(p, out);
  run_forward(p, options.run.impl, options.observer);
}

sdpa_result sdpa_forward(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                         const sdpa_options& options) {
  attention_params p = make_attention_params(q, k, v, options);
  const shape_t rows = {p.B, p.Hq, p.Nq};
  sdpa_result r{tensor({p.B, p.Hq, p.Nq, p.dv}), tensor(rows), tensor(rows), tensor(rows)};
  bind_outputs(p, {r.out, r.lse, r.row_max, r.row_log_sum});
  run_forward(p, options.run.impl, options.observer);
  return r;
}

tensor sdpa_forward_with_weights(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                                 const sdpa_output_views& out, const sdpa_options& options) {
  if (options.run.impl == sdpa_impl::fused || options.observer)
    throw error("impl", "the attention weights come from the reference kernel; got " +
                            std::string(options.observer ? "an observer" : "fused"));
  attention_params p = make_attention_params(q, k, v, options);
  bind_outputs(p, out);
  tensor P({p.B, p.Hq, p.Nq, p.Nk});
  weights_recorder recorder(P);
  sdpa_forward_reference(p, &recorder);
  return P;
}

void sdpa_backward_into(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                        const sdpa_saved& forward, const tensor_view& grad_out,
                        const sdpa_gradient_views& grads, const sdpa_options& options) {
  if (options.observer) throw error("observer", "the backward reports no steps; pass none");
  attention_grad_params g;
  g.forward = make_attention_params(q, k, v, options);
  attention_params& p = g.forward;
  const shape_t out_shape = {p.B, p.Hq, p.Nq, p.dv}, lse_shape = {p.B, p.Hq, p.Nq};
  if (grad_out.shape() != out_shape)
    throw error("grad_out", "expected the output's shape [B,Hq,Nq,dv] = " + to_string(out_shape) +
                                ", got " + to_string(grad_out.shape()));
  require_input("grad_out", "[B,Hq,Nq,dv]", grad_out);
  if (forward.out.shape() != out_shape || forward.lse.shape() != lse_shape)
    throw error("forward", "out " + to_string(forward.out.shape()) + " and lse " +
                               to_string(forward.lse.shape()) + " do not match these inputs (out " +
                               to_string(out_shape) + ", lse " + to_string(lse_shape) + ")");
  require_input("forward.out", "[B,Hq,Nq,dv]", forward.out);
  require_f32("forward.lse", forward.lse);
  g.out = forward.out.f32();
  copy_strides(p.o_stride, forward.out);
  const tensor fallback_statistics = bind_row_statistics(g, forward);
  g.dout = grad_out.f32();
  copy_strides(g.dout_stride, grad_out);

  require_output("dq", grads.dq, q.shape());
  require_output("dk", grads.dk, k.shape());
  require_output("dv", grads.dv, v.shape());
  g.dq = grads.dq.mutable_f32();
  g.dk = grads.dk.mutable_f32();
  g.dv = grads.dv.mutable_f32();
  copy_strides(g.dq_stride, grads.dq);
  copy_strides(g.dk_stride, grads.dk);
  copy_strides(g.dv_stride, grads.dv);
  if (p.sinks) {
    if (!grads.dsinks)
      throw error("dsinks", "the sinks' gradient [Hq] = [" + std::to_string(p.Hq) +
                                "] needs an output view when options.modifiers.sinks is set");
    require_output("dsinks", *grads.dsinks, {p.Hq});
    if (grads.dsinks->size(0) > 1 && grads.dsinks->stride(0) != 1)
      throw error("dsinks",
                  "must be contiguous, got strides " + to_string(grads.dsinks->strides()));
    g.dsinks = grads.dsinks->mutable_f32();
  } else if (grads.dsinks) {
    throw error("dsinks", "given without options.modifiers.sinks");
  }
  detail::dispatch_backward(g, options.run.impl);
}

sdpa_gradients sdpa_backward(const tensor_view& q, const tensor_view& k, const tensor_view& v,
                             const sdpa_saved& forward, const tensor_view& grad_out,
                             const sdpa_options& options) {
  const std::optional<tensor>& sinks = options.modifiers.sinks;
  sdpa_gradients grads{tensor(q.shape()), tensor(k.shape()), tensor(v.shape()),
                       sinks ? tensor(sinks->shape()) : tensor()};
  sdpa_gradient_views views{grads.dq, grads.dk, grads.dv};
  if (sinks) views.dsinks = grads.dsinks;
  sdpa_backward_into(q, k, v, forward, grad_out, views, options);
  return grads;
}

namespace detail {

void dispatch_forward(const attention_params& p, sdpa_impl impl) {
  run_forward(p, impl, nullptr);
}

void dispatch_backward(const attention_grad_params& g, sdpa_impl impl) {
  if (resolve_impl(impl, nullptr) == sdpa_impl::fused) {
    require_fused_types(g.forward);
    sdpa_backward_fused(g);
  } else {
    sdpa_backward_reference(g);
  }
}

void dispatch_sinks_backward(const attention_grad_params& g) {
  sdpa_sinks_backward(g);
}

}  // namespace detail

}  // namespace qkv
