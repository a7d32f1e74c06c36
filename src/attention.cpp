// The public attention API: validation of every input against DESIGN section 2, allocation of
// the outputs, and dispatch to the reference or the fused kernel.
#include "qkv/attention.hpp"

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

void require_rank4(const char* name, const char* layout, const shape_t& shape) {
  if (shape.size() != 4)
    throw error(std::string(name) + ": expected rank 4 " + layout + ", got shape " +
                to_string(shape));
  for (int64_t s : shape)
    if (s < 1)
      throw error(std::string(name) + ": every dimension must be >= 1, got shape " +
                  to_string(shape));
}

void copy_strides(int64_t (&dst)[4], const shape_t& src) {
  for (size_t i = 0; i < 4; ++i) dst[i] = src[i];
}

// Strides that broadcast `shape` (rank 2..4) to `target` [B,Hq,Nq,Nk] by NumPy's rules.
void broadcast_mask(const char* kind, const shape_t& shape, const shape_t& target,
                    int64_t (&stride)[4]) {
  const auto fail = [&] {
    throw error(std::string("mask: a ") + kind + " mask of shape " + to_string(shape) +
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
    throw error(std::string(name) + ": expected one value per query head, shape [Hq] = [" +
                std::to_string(Hq) + "], got " + to_string(t->shape()));
  for (int64_t h = 0; h < Hq; ++h)
    if (!std::isfinite((*t)[h])) {
      std::ostringstream msg;
      msg << name << ": every value must be finite, got " << (*t)[h] << " for head " << h
          << " (shape " << to_string(t->shape()) << ")";
      throw error(msg.str());
    }
  return t->data();
}

}  // namespace

sdpa_impl parse_sdpa_impl(const std::string& text, const std::string& argument) {
  if (text == "reference") return sdpa_impl::reference;
  if (text == "fused") return sdpa_impl::fused;
  if (text == "auto") return sdpa_impl::auto_select;
  throw error(argument + ": expected reference, fused or auto, got '" + text + "'");
}

causal_mode parse_causal_mode(const std::string& text, const std::string& argument) {
  if (text == "none") return causal_mode::none;
  if (text == "top-left") return causal_mode::top_left;
  if (text == "bottom-right") return causal_mode::bottom_right;
  throw error(argument + ": expected none, top-left or bottom-right, got '" + text + "'");
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

attention_params make_attention_params(const tensor& q, const tensor& k, const tensor& v,
                                       const sdpa_options& options) {
  require_rank4("q", "[B,Hq,Nq,d]", q.shape());
  require_rank4("k", "[B,Hkv,Nk,d]", k.shape());
  require_rank4("v", "[B,Hkv,Nk,dv]", v.shape());
  const std::string shapes = " (" + describe("q", q.shape()) + ", " + describe("k", k.shape()) +
                             ", " + describe("v", v.shape()) + ")";
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0))
    throw error("k, v: batch size B must equal q's" + shapes);
  if (v.size(1) != k.size(1)) throw error("v: kv heads Hkv must equal k's" + shapes);
  if (q.size(1) % k.size(1) != 0)
    throw error("q, k: query heads Hq (" + std::to_string(q.size(1)) +
                ") must be a multiple of kv heads Hkv (" + std::to_string(k.size(1)) + ")" +
                shapes);
  if (v.size(2) != k.size(2)) throw error("v: key count Nk must equal k's" + shapes);
  if (k.size(3) != q.size(3)) throw error("k: head dim d must equal q's" + shapes);

  attention_params p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.B = q.size(0);
  p.Hq = q.size(1);
  p.Hkv = k.size(1);
  p.Nq = q.size(2);
  p.Nk = k.size(2);
  p.d = q.size(3);
  p.dv = v.size(3);
  copy_strides(p.q_stride, q.strides());
  copy_strides(p.k_stride, k.strides());
  copy_strides(p.v_stride, v.strides());
  copy_strides(p.o_stride, contiguous_strides({p.B, p.Hq, p.Nq, p.dv}));
  p.lse_stride[0] = p.Hq * p.Nq;
  p.lse_stride[1] = p.Nq;
  p.lse_stride[2] = 1;

  if (options.scale) {
    const float s = *options.scale;
    if (!std::isfinite(s) || s <= 0.0f) {
      std::ostringstream msg;
      msg << "scale: must be finite and > 0, got " << s;
      throw error(msg.str());
    }
    p.scale = s;
  } else {
    p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.d)));
  }
  p.causal = options.causal;
  if (options.window) {
    const auto [left, right] = *options.window;
    if (left < -1 || right < -1)
      throw error("window: each side must be >= -1 (-1 = unbounded), got (" + std::to_string(left) +
                  ", " + std::to_string(right) + ")");
    p.window_left = left;
    p.window_right = right;
  }
  if (options.softcap) {
    const float c = *options.softcap;
    if (!std::isfinite(c) || c <= 0.0f) {
      std::ostringstream msg;
      msg << "softcap: must be finite and > 0, got " << c;
      throw error(msg.str());
    }
    p.softcap = c;
  }
  p.alibi_slopes = head_vector("alibi_slopes", options.alibi_slopes, p.Hq);
  p.sinks = head_vector("sinks", options.sinks, p.Hq);

  const attention_mask& m = options.mask;
  if (m.boolean && m.additive) throw error("mask: give a boolean or an additive mask, not both");
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
    msg << "dropout_p: must be in [0, 1), got " << options.dropout_p;
    throw error(msg.str());
  }
  p.dropout_p = options.dropout_p;
  p.dropout_seed = options.dropout_seed;
  p.threads = options.threads;
  if (options.threads < 0)
    throw error("threads: must be >= 0 (0 = default), got " + std::to_string(options.threads));
  return p;
}

bool fused_kernel_available() {
  return true;
}

namespace {
sdpa_impl resolve_impl(sdpa_impl requested) {
  if (requested == sdpa_impl::fused && !fused_kernel_available())
    throw error("impl: the fused kernel is not available in this build; use reference or auto");
  if (requested == sdpa_impl::auto_select)
    return fused_kernel_available() ? sdpa_impl::fused : sdpa_impl::reference;
  return requested;
}
}  // namespace

sdpa_result sdpa_forward(const tensor& q, const tensor& k, const tensor& v,
                         const sdpa_options& options) {
  attention_params p = make_attention_params(q, k, v, options);
  const shape_t rows = {p.B, p.Hq, p.Nq};
  sdpa_result result{tensor({p.B, p.Hq, p.Nq, p.dv}), tensor(rows), tensor(rows), tensor(rows)};
  p.o = result.out.data();
  p.lse = result.lse.data();
  p.row_max = result.row_max.data();
  p.row_log_sum = result.row_log_sum.data();
  switch (resolve_impl(options.impl)) {
    case sdpa_impl::fused:
      sdpa_forward_fused(p);
      break;
    default:
      sdpa_forward_reference(p);
      break;
  }
  return result;
}

sdpa_gradients sdpa_backward(const tensor& q, const tensor& k, const tensor& v,
                             const sdpa_result& forward, const tensor& grad_out,
                             const sdpa_options& options) {
  attention_grad_params g;
  g.forward = make_attention_params(q, k, v, options);
  const attention_params& p = g.forward;
  const shape_t out_shape = {p.B, p.Hq, p.Nq, p.dv};
  if (grad_out.shape() != out_shape)
    throw error("grad_out: expected the output's shape [B,Hq,Nq,dv] = " + to_string(out_shape) +
                ", got " + to_string(grad_out.shape()));
  if (forward.out.shape() != out_shape || forward.lse.shape() != shape_t{p.B, p.Hq, p.Nq})
    throw error("forward: out " + to_string(forward.out.shape()) + " and lse " +
                to_string(forward.lse.shape()) + " do not match these inputs (out " +
                to_string(out_shape) + ")");
  g.out = forward.out.data();
  // Without the row statistics, m = lse and log l = 0 (sdpa_result).
  const tensor zeros = forward.row_log_sum.numel() ? tensor() : tensor(forward.lse.shape());
  if (forward.row_log_sum.numel() && (forward.row_max.shape() != forward.lse.shape() ||
                                      forward.row_log_sum.shape() != forward.lse.shape()))
    throw error("forward: row_max " + to_string(forward.row_max.shape()) + " and row_log_sum " +
                to_string(forward.row_log_sum.shape()) + " must have lse's shape " +
                to_string(forward.lse.shape()));
  g.row_max = forward.row_log_sum.numel() ? forward.row_max.data() : forward.lse.data();
  g.row_log_sum = forward.row_log_sum.numel() ? forward.row_log_sum.data() : zeros.data();
  sdpa_gradients grads{tensor(q.shape()), tensor(k.shape()), tensor(v.shape())};
  if (p.sinks) {
    grads.dsinks = tensor({p.Hq});
    g.dsinks = grads.dsinks.data();
  }
  g.dout = grad_out.data();
  g.dq = grads.dq.data();
  g.dk = grads.dk.data();
  g.dv = grads.dv.data();
  copy_strides(g.dout_stride, grad_out.strides());
  copy_strides(g.dq_stride, grads.dq.strides());
  copy_strides(g.dk_stride, grads.dk.strides());
  copy_strides(g.dv_stride, grads.dv.strides());
  // The fused backward is always built: fused and auto take it.
  if (options.impl == sdpa_impl::reference)
    sdpa_backward_reference(g);
  else
    sdpa_backward_fused(g);
  return grads;
}

}  // namespace qkv
