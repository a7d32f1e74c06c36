// qkv._qkv.sdpa_forward / sdpa_backward: the library's scaled dot-product attention with the
// arguments of torch.nn.functional.scaled_dot_product_attention (the public signatures and their
// docstrings are in qkv/functional.py). Inputs are checked and converted with the GIL held; the
// kernels run with it released.
#include <pybind11/stl.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"

namespace qkv::python {
namespace {

// The data pointers the last forward handed the kernel, for the zero-copy test.
struct kernel_inputs {
  const float *q = nullptr, *k = nullptr, *v = nullptr;
};
kernel_inputs last_inputs;

// The options of one call as the library takes them, and the one rule that is PyTorch's alone.
struct sdpa_call {
  sdpa_options options;
  bool enable_gqa = false;
};

[[noreturn]] void not_in_this_build(const char* argument) {
  PyErr_SetString(
      PyExc_NotImplementedError,
      (std::string(argument) + ": score modifiers are not in this build of qkv").c_str());
  throw py::error_already_set();
}

sdpa_call make_call(const py::object& attn_mask, double dropout_p, bool is_causal,
                    std::optional<double> scale, bool enable_gqa,
                    const std::string& causal_alignment, const py::object& window,
                    const py::object& softcap, const py::object& alibi_slopes,
                    const py::object& sinks, const std::string& impl, int threads,
                    uint64_t dropout_seed) {
  sdpa_call call;
  sdpa_options& o = call.options;
  const causal_mode alignment = parse_causal_mode(causal_alignment, "causal_alignment");
  if (alignment == causal_mode::none)
    throw error("causal_alignment: expected top-left or bottom-right, got 'none'");
  o.causal = is_causal ? alignment : causal_mode::none;
  if (!attn_mask.is_none()) o.mask = mask_input("attn_mask", attn_mask);
  if (scale) o.scale = static_cast<float>(*scale);
  o.dropout_p = static_cast<float>(dropout_p);
  o.dropout_seed = dropout_seed;
  o.impl = parse_sdpa_impl(impl, "impl");
  o.threads = threads;
  if (!window.is_none()) not_in_this_build("window");
  if (!softcap.is_none()) not_in_this_build("softcap");
  if (!alibi_slopes.is_none()) not_in_this_build("alibi_slopes");
  if (!sinks.is_none()) not_in_this_build("sinks");
  call.enable_gqa = enable_gqa;
  return call;
}

// PyTorch refuses differing head counts unless enable_gqa is set; shapes of other ranks are
// left to the library's own checks.
void check_gqa(const sdpa_call& call, const tensor& q, const tensor& k) {
  if (call.enable_gqa || q.rank() != 4 || k.rank() != 4 || q.size(1) == k.size(1)) return;
  throw error("enable_gqa: query heads Hq (" + std::to_string(q.size(1)) +
              ") differ from key/value heads Hkv (" + std::to_string(k.size(1)) + ") (q " +
              to_string(q.shape()) + ", k " + to_string(k.shape()) +
              "); pass enable_gqa=True for grouped-query attention");
}

py::object sdpa_forward(const py::object& query, const py::object& key, const py::object& value,
                        const sdpa_call& call, bool return_lse) {
  const tensor q = float_input("query", query);
  const tensor k = float_input("key", key);
  const tensor v = float_input("value", value);
  check_gqa(call, q, k);
  last_inputs = {q.data(), k.data(), v.data()};
  sdpa_result r;
  {
    py::gil_scoped_release unlocked;
    r = qkv::sdpa_forward(q, k, v, call.options);
  }
  py::array out = to_numpy(std::move(r.out));
  if (!return_lse) return out;
  return py::make_tuple(out, to_numpy(std::move(r.lse)));
}

py::tuple sdpa_backward(const py::object& grad_out, const py::object& query, const py::object& key,
                        const py::object& value, const py::object& out, const py::object& lse,
                        const sdpa_call& call) {
  const tensor dout = float_input("grad_out", grad_out);
  const tensor q = float_input("query", query);
  const tensor k = float_input("key", key);
  const tensor v = float_input("value", value);
  const sdpa_result forward{float_input("out", out), float_input("lse", lse)};
  check_gqa(call, q, k);
  sdpa_gradients g;
  {
    py::gil_scoped_release unlocked;
    g = qkv::sdpa_backward(q, k, v, forward, dout, call.options);
  }
  return py::make_tuple(to_numpy(std::move(g.dq)), to_numpy(std::move(g.dk)),
                        to_numpy(std::move(g.dv)));
}

// Benchmark hook: seconds per call of qkv::sdpa_forward on inputs converted once, timed in C++
// (the baseline the Python call's overhead is measured against, bench/python_overhead.py).
std::vector<double> time_forward_in_cpp(const py::object& query, const py::object& key,
                                        const py::object& value, int repeats, int threads) {
  const tensor q = float_input("query", query);
  const tensor k = float_input("key", key);
  const tensor v = float_input("value", value);
  sdpa_options options;
  options.threads = threads;
  std::vector<double> seconds;
  py::gil_scoped_release unlocked;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const sdpa_result result = qkv::sdpa_forward(q, k, v, options);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return seconds;
}

}  // namespace

void bind_sdpa(py::module_& m) {
  py::class_<sdpa_call>(m, "SdpaOptions",
                        "The keyword arguments of one attention call, checked and converted.")
      .def(py::init(&make_call));
  m.def("sdpa_forward", &sdpa_forward,
        "The forward of qkv.scaled_dot_product_attention: (q, k, v, SdpaOptions, return_lse).");
  m.def("sdpa_backward", &sdpa_backward,
        "qkv.scaled_dot_product_attention_backward: (dout, q, k, v, out, lse, SdpaOptions).");
  m.def(
      "_kernel_inputs",
      [] {
        return py::make_tuple(reinterpret_cast<uintptr_t>(last_inputs.q),
                              reinterpret_cast<uintptr_t>(last_inputs.k),
                              reinterpret_cast<uintptr_t>(last_inputs.v));
      },
      "Test hook: the addresses of q, k and v the last forward handed the kernel.");
  m.def("_time_forward_in_cpp", &time_forward_in_cpp,
        "Benchmark hook: seconds per qkv::sdpa_forward call, timed in C++.");
}

}  // namespace qkv::python
