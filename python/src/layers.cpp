// qkv._qkv's layers: nn.MultiheadAttention loaded from a state_dict, and the explain
// walkthrough rendered by the library's own JSON renderer (the same text as `qkv explain
// --format json`). The Python classes and docstrings are in qkv/__init__.py.
#include <pybind11/stl.h>

#include <string>

#include "arrays.hpp"
#include "bindings.hpp"
#include "qkv/error.hpp"
#include "qkv/explain/example.hpp"
#include "qkv/explain/render_json.hpp"
#include "qkv/explain/trace.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "qkv/nn/self_attention.hpp"

namespace qkv::python {
namespace {

// A state_dict given as a mapping of names to arrays, or as the path of a .safetensors file.
nn::state_dict read_state_dict(const py::object& weights, std::string& source) {
  if (py::isinstance<py::str>(weights) || py::hasattr(weights, "__fspath__")) {
    source = py::str(py::module_::import("os").attr("fspath")(weights));
    return io::read_safetensors(source);
  }
  if (!py::isinstance<py::dict>(weights) && !py::hasattr(weights, "items"))
    throw py::type_error("state_dict: expected a dict of arrays or a .safetensors path, got " +
                         std::string(py::str(py::type::of(weights).attr("__name__"))));
  nn::state_dict dict;
  for (const auto item : weights.attr("items")()) {
    const auto pair = item.cast<py::tuple>();
    const std::string name = py::str(pair[0]);
    dict[name] = float_tensor("state_dict['" + name + "']", pair[1]);
  }
  source = "state_dict";
  return dict;
}

nn::multihead_attention load_mha(const py::object& weights, int64_t num_heads) {
  std::string source;
  const nn::state_dict dict = read_state_dict(weights, source);
  nn::state_dict_reader reader(dict, source);
  nn::multihead_attention layer = nn::multihead_attention::load(reader, "", num_heads);
  reader.finish();
  return layer;
}

// PyTorch's MHA masks: key_padding_mask bool [B,Nk] (true = ignore), attn_mask bool (true = not
// allowed) or float (added) [Nq,Nk] or [B·H,Nq,Nk].
nn::mha_masks mha_masks_from(const py::object& key_padding_mask, const py::object& attn_mask,
                             bool is_causal) {
  nn::mha_masks masks;
  if (!key_padding_mask.is_none()) {
    attention_mask m = mask_input("key_padding_mask", key_padding_mask);
    if (!m.boolean)
      throw py::type_error("key_padding_mask: expected bool (true = ignore this key), got float32");
    masks.key_padding_mask = std::move(m.boolean);
  }
  if (!attn_mask.is_none()) {
    attention_mask m = mask_input("attn_mask", attn_mask);
    masks.attn_mask = std::move(m.boolean);
    masks.attn_mask_additive = std::move(m.additive);
  }
  masks.is_causal = is_causal;
  return masks;
}

py::tuple mha_forward(const nn::multihead_attention& layer, const py::object& query,
                      const py::object& key, const py::object& value,
                      const py::object& key_padding_mask, bool need_weights,
                      const py::object& attn_mask, bool average_attn_weights, bool is_causal,
                      const std::string& impl, int threads) {
  nn::mha_options options;
  options.masks = mha_masks_from(key_padding_mask, attn_mask, is_causal);
  if (need_weights)
    options.need_weights =
        average_attn_weights ? nn::attention_weights::averaged : nn::attention_weights::per_head;
  options.run = run_input(impl, threads);
  const tensor q = float_tensor("query", query);
  const tensor k = key.is_none() ? q : float_tensor("key", key);
  const tensor v = value.is_none() ? q : float_tensor("value", value);
  nn::mha_result r;
  {
    py::gil_scoped_release unlocked;
    r = layer.forward(q, k, v, options);
  }
  py::object weights = py::none();
  if (r.weights) weights = to_numpy(std::move(*r.weights));
  return py::make_tuple(to_numpy(std::move(r.out)), weights);
}

// The walkthrough of single-head self-attention on X [N,d_model] with W_Q, W_K [d_k,d_model]
// and W_V [d_v,d_model] (or the embedded example when none is given), as the library's JSON.
std::string explain_json(const py::object& x, const py::object& wq, const py::object& wk,
                         const py::object& wv, std::vector<std::string> tokens, bool causal,
                         const std::string& title) {
  const int given = !x.is_none() + !wq.is_none() + !wk.is_none() + !wv.is_none();
  if (given != 0 && given != 4) throw error("x, wq, wk, wv: give all four or none");
  explain::example in;
  if (given == 0) {
    in = explain::write_a_poem();
  } else {
    in.x = float_tensor("x", x);
    in.wq = float_tensor("wq", wq);
    in.wk = float_tensor("wk", wk);
    in.wv = float_tensor("wv", wv);
  }
  if (tokens.empty()) tokens = explain::split_tokens(in.tokens);
  const nn::self_attention layer(std::move(in.wq), std::move(in.wk), std::move(in.wv));
  explain::attention_trace trace =
      explain::trace_self_attention(layer, in.x, tokens, causal, in.scale);
  trace.title = title.empty() ? in.title : title;
  return explain::render_json(trace);
}

}  // namespace

void bind_layers(py::module_& m) {
  py::class_<nn::multihead_attention>(m, "MultiheadAttentionLayer")
      .def(py::init(&load_mha), py::arg("state_dict"), py::arg("num_heads"))
      .def("forward", &mha_forward)
      .def_property_readonly("embed_dim", &nn::multihead_attention::embed_dim)
      .def_property_readonly("num_heads", &nn::multihead_attention::num_heads)
      .def_property_readonly("kv_heads", &nn::multihead_attention::kv_heads)
      .def_property_readonly("head_dim", &nn::multihead_attention::head_dim);
  m.def("explain_json", &explain_json);
}

}  // namespace qkv::python
