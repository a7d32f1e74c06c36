// nn.MultiheadAttention. Legend: B batch, Nq queries, Nk keys, E embed dim, H query heads,
// Hkv key/value heads, hd = E/H head dim. Per head h (PyTorch's MHA, "Attention Is All You Need"
// eq. 5): head_h = softmax(Q_h·K_h^T / sqrt(hd) + mask)·V_h, out = concat_h(head_h)·W_O^T + b_O.
#include "qkv/nn/multihead_attention.hpp"

#include <algorithm>
#include <vector>

#include "heads.hpp"
#include "qkv/error.hpp"
#include "qkv/nn/init.hpp"

namespace qkv::nn {
namespace {

// Rows [begin, begin + count) of t along its first axis.
tensor slice_rows(const tensor& t, int64_t begin, int64_t count) {
  shape_t shape = t.shape();
  const int64_t row = t.numel() / shape[0];
  shape[0] = count;
  return tensor(shape,
                std::vector<float>(t.data() + begin * row, t.data() + (begin + count) * row));
}

// P [B,H,Nq,Nk] -> its mean over the heads [B,Nq,Nk] (PyTorch's average_attn_weights),
// summed in float64.
tensor average_heads(const tensor& P) {
  const int64_t B = P.size(0), H = P.size(1), n = P.size(2) * P.size(3);
  tensor mean({B, P.size(2), P.size(3)});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t x = 0; x < n; ++x) {
      double sum = 0.0;
      for (int64_t h = 0; h < H; ++h) sum += P[(b * H + h) * n + x];
      mean[b * n + x] = static_cast<float>(sum / static_cast<double>(H));
    }
  return mean;
}

tensor concat_rows(const tensor& a, const tensor& b, const tensor& c) {
  shape_t shape = a.shape();
  shape[0] = a.size(0) + b.size(0) + c.size(0);
  std::vector<float> data(a.values().begin(), a.values().end());
  data.insert(data.end(), b.values().begin(), b.values().end());
  data.insert(data.end(), c.values().begin(), c.values().end());
  return tensor(shape, std::move(data));
}

}  // namespace

multihead_attention::multihead_attention(linear q_proj, linear k_proj, linear v_proj,
                                         linear out_proj, int64_t num_heads)
    : q_proj_(std::move(q_proj)),
      k_proj_(std::move(k_proj)),
      v_proj_(std::move(v_proj)),
      out_proj_(std::move(out_proj)),
      num_heads_(num_heads) {
  const int64_t E = out_proj_.out_features();
  const std::string shapes = " (q_proj " + to_string(q_proj_.weight().shape()) + ", k_proj " +
                             to_string(k_proj_.weight().shape()) + ", v_proj " +
                             to_string(v_proj_.weight().shape()) + ", out_proj " +
                             to_string(out_proj_.weight().shape()) + ")";
  if (out_proj_.in_features() != E) throw error("out_proj", "weight must be [E,E]" + shapes);
  if (E < 1) throw error("out_proj", "embed_dim E must be >= 1" + shapes);
  if (num_heads < 1 || E % num_heads != 0)
    throw error("num_heads", "H = " + std::to_string(num_heads) +
                                 " must divide embed_dim E = " + std::to_string(E));
  if (q_proj_.out_features() != E || q_proj_.in_features() != E)
    throw error("q_proj", "weight must be [E,E]" + shapes);
  const int64_t hd = E / num_heads, kv_rows = k_proj_.out_features();
  if (v_proj_.out_features() != kv_rows)
    throw error("v_proj", "must have as many output rows as k_proj (Hkv·hd)" + shapes);
  if (kv_rows < hd || kv_rows % hd != 0 || num_heads % (kv_rows / hd) != 0)
    throw error("k_proj",
                "output rows must be Hkv·hd with Hkv dividing H = " + std::to_string(num_heads) +
                    " and hd = " + std::to_string(hd) + shapes);
  const bool bias = q_proj_.bias().has_value();
  if (k_proj_.bias().has_value() != bias || v_proj_.bias().has_value() != bias)
    throw error("in_proj_bias", "q, k and v projections must all have a bias or none" + shapes);
}

multihead_attention::multihead_attention(const mha_config& c, std::mt19937_64& rng) {
  const int64_t E = c.embed_dim, H = c.num_heads, Hkv = c.kv_heads ? c.kv_heads : H;
  if (E < 1 || H < 1 || E % H != 0 || Hkv < 1 || H % Hkv != 0)
    throw error("mha_config",
                "need E >= 1, H dividing E and Hkv dividing H, got E = " + std::to_string(E) +
                    ", H = " + std::to_string(H) + ", Hkv = " + std::to_string(Hkv));
  const int64_t kv_rows = Hkv * (E / H), kdim = c.kdim ? c.kdim : E, vdim = c.vdim ? c.vdim : E;
  const auto projection = [&](int64_t rows, int64_t cols) {
    return linear(xavier_uniform(rows, cols, rng),
                  c.bias ? std::optional<tensor>(tensor({rows})) : std::nullopt);
  };
  linear q = projection(E, E), k = projection(kv_rows, kdim), v = projection(kv_rows, vdim);
  linear out(E, E, false, rng);
  *this = multihead_attention(
      std::move(q), std::move(k), std::move(v),
      linear(out.weight(), c.bias ? std::optional<tensor>(tensor({E})) : std::nullopt), H);
}

multihead_attention multihead_attention::load(state_dict_reader& reader, const std::string& prefix,
                                              int64_t num_heads) {
  const int64_t E = reader.shape_of(prefix + "out_proj.weight", 2)[0];
  if (E < 1) reader.fail("tensor '" + prefix + "out_proj.weight' gives embed_dim E = 0; E >= 1");
  if (num_heads < 1 || E % num_heads != 0)
    throw error("num_heads", "H = " + std::to_string(num_heads) + " must divide embed_dim E = " +
                                 std::to_string(E) + " (from " + prefix + "out_proj.weight)");
  const int64_t hd = E / num_heads;
  tensor wq, wk, wv;
  int64_t kv_rows = E;
  if (reader.contains(prefix + "in_proj_weight")) {
    const tensor w = reader.take(prefix + "in_proj_weight", {3 * E, E});
    wq = slice_rows(w, 0, E);
    wk = slice_rows(w, E, E);
    wv = slice_rows(w, 2 * E, E);
  } else {
    wq = reader.take(prefix + "q_proj_weight", {E, E});
    const shape_t k_shape = reader.shape_of(prefix + "k_proj_weight", 2);
    kv_rows = k_shape[0];
    if (kv_rows < hd || kv_rows % hd != 0 || num_heads % (kv_rows / hd) != 0)
      reader.fail("tensor '" + prefix + "k_proj_weight' has shape " + to_string(k_shape) +
                  ": rows must be Hkv·hd with hd = " + std::to_string(hd) +
                  " and Hkv dividing H = " + std::to_string(num_heads));
    wk = reader.take(prefix + "k_proj_weight", k_shape);
    wv = reader.take(prefix + "v_proj_weight",
                     {kv_rows, reader.shape_of(prefix + "v_proj_weight", 2)[1]});
  }
  std::optional<tensor> bq, bk, bv;
  if (auto b = reader.take_optional(prefix + "in_proj_bias", {E + 2 * kv_rows})) {
    bq = slice_rows(*b, 0, E);
    bk = slice_rows(*b, E, kv_rows);
    bv = slice_rows(*b, E + kv_rows, kv_rows);
  }
  linear out = linear::load(reader, prefix + "out_proj.", E, E);
  return multihead_attention(linear(wq, bq), linear(wk, bk), linear(wv, bv), std::move(out),
                             num_heads);
}

void multihead_attention::save(state_dict& dict, const std::string& prefix) const {
  const int64_t E = embed_dim();
  const bool packed =
      k_proj_.weight().shape() == shape_t{E, E} && v_proj_.weight().shape() == shape_t{E, E};
  if (packed) {
    dict[prefix + "in_proj_weight"] =
        concat_rows(q_proj_.weight(), k_proj_.weight(), v_proj_.weight());
  } else {
    dict[prefix + "q_proj_weight"] = q_proj_.weight();
    dict[prefix + "k_proj_weight"] = k_proj_.weight();
    dict[prefix + "v_proj_weight"] = v_proj_.weight();
  }
  if (q_proj_.bias())
    dict[prefix + "in_proj_bias"] = concat_rows(*q_proj_.bias(), *k_proj_.bias(), *v_proj_.bias());
  out_proj_.save(dict, prefix + "out_proj.");
}

namespace {
// What a decoding step shares with a full forward: kernel, threads, score modifiers.
sdpa_options step_options(const mha_options& options) {
  sdpa_options sdpa;
  sdpa.run = options.run;
  sdpa.modifiers = options.modifiers;
  return sdpa;
}
}  // namespace

sdpa_options multihead_attention::attention_options(const mha_options& options, int64_t B,
                                                    int64_t Nq, int64_t Nk) const {
  sdpa_options sdpa = step_options(options);
  sdpa.causal = options.masks.is_causal ? causal_mode::top_left : causal_mode::none;
  sdpa.mask = to_sdpa_mask(options.masks, B, num_heads_, Nq, Nk, options.mask_prefix);
  sdpa.dropout_p = options.dropout_p;
  sdpa.dropout_seed = options.dropout_seed;
  return sdpa;
}

namespace {
// The heads of r's Q, K or V (mutable when r is).
template <typename Result>
auto heads_of(Result& r, detail::projection which) {
  return detail::projection_heads(r.q, r.k, r.v, r.qkv, r.heads, r.kv_heads,
                                  r.concat.size(2) / r.heads, which);
}
}  // namespace

tensor_view mha_result::q_heads() const {
  return heads_of(*this, detail::projection::q);
}
tensor_view mha_result::k_heads() const {
  return heads_of(*this, detail::projection::k);
}
tensor_view mha_result::v_heads() const {
  return heads_of(*this, detail::projection::v);
}
tensor_view mha_result::out_heads() const {
  return detail::as_heads(concat, heads);
}

linear multihead_attention::stacked_projection() const {
  const bool bias = q_proj_.bias().has_value();
  return linear(concat_rows(q_proj_.weight(), k_proj_.weight(), v_proj_.weight()),
                bias ? std::optional(concat_rows(*q_proj_.bias(), *k_proj_.bias(), *v_proj_.bias()))
                     : std::nullopt);
}

void multihead_attention::project(const tensor& query, const tensor& key, const tensor& value,
                                  const projection_names& names, int64_t rope_start,
                                  const mha_options& options, mha_result& r) const {
  // Q = query·W_Q^T + b_Q (likewise K, V), [B,N,heads·hd], read as heads by the views.
  r.heads = num_heads_;
  r.kv_heads = kv_heads();
  r.concat = tensor({query.size(0), query.size(1), embed_dim()});
  if (&query == &key && &key == &value) {
    // One product with the stacked weights: Q, K and V come out side by side in each row.
    r.qkv = stacked_projection().forward(query, names.query);
  } else {
    r.q = q_proj_.forward(query, names.query);
    r.k = k_proj_.forward(key, names.key);
    r.v = v_proj_.forward(value, names.value);
  }
  if (options.rope) {
    apply_rope_in_place(heads_of(r, detail::projection::q), rope_start, *options.rope);
    apply_rope_in_place(heads_of(r, detail::projection::k), rope_start, *options.rope);
  }
  r.lse = tensor({query.size(0), num_heads_, query.size(1)});
  r.row_max = tensor(r.lse.shape());
  r.row_log_sum = tensor(r.lse.shape());
}

mha_result multihead_attention::forward(const tensor& query, const tensor& key, const tensor& value,
                                        const mha_options& options) const {
  const int64_t E = embed_dim(), H = num_heads_;
  const std::string shapes = " (query " + to_string(query.shape()) + ", key " +
                             to_string(key.shape()) + ", value " + to_string(value.shape()) + ")";
  if (query.rank() != 3 || query.size(2) != E)
    throw error("query", "expected [B,Nq,E] with E = " + std::to_string(E) + shapes);
  if (key.rank() != 3 || key.size(2) != k_proj_.in_features() || key.size(0) != query.size(0))
    throw error("key", "expected [B,Nk,kdim] with B = " + std::to_string(query.size(0)) +
                           " and kdim = " + std::to_string(k_proj_.in_features()) + shapes);
  if (value.rank() != 3 || value.size(2) != v_proj_.in_features() ||
      value.size(0) != query.size(0) || value.size(1) != key.size(1))
    throw error("value", "expected [B,Nk,vdim] with B, Nk as key's and vdim = " +
                             std::to_string(v_proj_.in_features()) + shapes);
  const int64_t B = query.size(0), Nq = query.size(1), Nk = key.size(1);

  mha_result r;
  project(query, key, value, {"query", "key", "value"}, 0, options, r);
  const sdpa_options sdpa = attention_options(options, B, Nq, Nk);
  const sdpa_output_views heads_out{detail::as_heads(r.concat, H), r.lse, r.row_max, r.row_log_sum};
  if (options.need_weights == attention_weights::none) {
    sdpa_forward_into(r.q_heads(), r.k_heads(), r.v_heads(), heads_out, sdpa);
  } else {
    // P from the reference kernel: the very P it multiplies V by.
    tensor P = sdpa_forward_with_weights(r.q_heads(), r.k_heads(), r.v_heads(), heads_out, sdpa);
    if (options.need_weights == attention_weights::averaged) P = average_heads(P);
    r.weights = std::move(P);
  }
  // out = concat_h(head_h)·W_O^T + b_O.
  r.out = out_proj_.forward(r.concat, "attention output");
  return r;
}

kv_cache multihead_attention::make_cache(int64_t B, int64_t capacity, dtype type) const {
  return kv_cache(B, kv_heads(), capacity, head_dim(), head_dim(), type);
}

mha_result multihead_attention::forward_step(const tensor& x, kv_cache& cache,
                                             const mha_options& options) const {
  const int64_t E = embed_dim();
  if (x.rank() != 3 || x.size(2) != E || k_proj_.in_features() != E || v_proj_.in_features() != E)
    throw error("x", "expected [B,n,E] with E = " + std::to_string(E) +
                         " (self-attention: kdim = vdim = E), got " + to_string(x.shape()));
  const mha_masks& m = options.masks;
  if (m.key_padding_mask || m.attn_mask || m.attn_mask_additive || m.is_causal ||
      options.need_weights != attention_weights::none)
    throw error("forward_step", "masks and need_weights are not supported (a step is causal)");
  if (options.dropout_p != 0.0f)
    throw error("forward_step", "dropout_p must be 0 (decoding runs without dropout)");
  mha_result r;
  project(x, x, x, {"x", "x", "x"}, cache.length(), options, r);
  cache.append(r.k_heads(), r.v_heads());
  cache.attend_into(r.q_heads(),
                    {detail::as_heads(r.concat, num_heads_), r.lse, r.row_max, r.row_log_sum},
                    step_options(options));
  r.out = out_proj_.forward(r.concat, "attention output");
  return r;
}

}  // namespace qkv::nn
