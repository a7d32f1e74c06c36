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
  const void *q = nullptr, *k = nullptr, *v = nullptr;
};
kernel_inputs last_inputs;

// The options of one call as the library takes them, and the one rule that is PyTorch's alone.
struct sdpa_call {
  sdpa_options options;
  bool enable_gqa = false;
};

// window=(left, right): two ints, None or -1 for an unbounded side.
attention_window window_input(const py::handle& window) {
  const auto refuse = [&] {
    throw error("window: expected (left, right), two ints >= -1 or None (unbounded), got " +
                std::string(py::str(py::repr(window))));
  };
  if (!py::isinstance<py::sequence>(window) || py::isinstance<py::str>(window) ||
      py::len(window) != 2)
    refuse();
  const auto side = [&](const py::handle& x) -> int64_t {
    if (x.is_none()) return -1;
    if (py::isinstance<py::bool_>(x) || !py::isinstance<py::int_>(x)) refuse();
    return x.cast<int64_t>();
  };
  const py::sequence pair = py::reinterpret_borrow<py::sequence>(window);
  return {side(pair[0]), side(pair[1])};
}

// A Python real number (anything with __float__ but a bool or a string).
double real_input(const char* argument, const py::handle& x) {
  const double value = py::isinstance<py::bool_>(x) ? -1.0 : PyFloat_AsDouble(x.ptr());
  if (py::isinstance<py::bool_>(x) || (value == -1.0 && PyErr_Occurred())) {
    PyErr_Clear();
    throw error(std::string(argument) + ": expected a real number, got " +
                std::string(py::str(py::repr(x))));
  }
  return value;
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
  o.run = run_input(impl, threads);
  if (!window.is_none()) o.modifiers.window = window_input(window);
  if (!softcap.is_none()) o.modifiers.softcap = static_cast<float>(real_input("softcap", softcap));
  if (!alibi_slopes.is_none())
    o.modifiers.alibi_slopes = float_tensor("alibi_slopes", alibi_slopes);
  if (!sinks.is_none()) o.modifiers.sinks = float_tensor("sinks", sinks);
  call.enable_gqa = enable_gqa;
  return call;
}

// PyTorch refuses differing head counts unless enable_gqa is set; shapes of other ranks are
// left to the library's own checks.
void check_gqa(const sdpa_call& call, const tensor_view& q, const tensor_view& k) {
  if (call.enable_gqa || q.rank() != 4 || k.rank() != 4 || q.size(1) == k.size(1)) return;
  throw error("enable_gqa: query heads Hq (" + std::to_string(q.size(1)) +
              ") differ from key/value heads Hkv (" + std::to_string(k.size(1)) + ") (q " +
              to_string(q.shape()) + ", k " + to_string(k.shape()) +
              "); pass enable_gqa=True for grouped-query attention");
}

py::object sdpa_forward(const py::object& query, const py::object& key, const py::object& value,
                        const sdpa_call& call, bool return_lse) {
  const float_input q("query", query, true), k("key", key, true), v("value", value, true);
  check_gqa(call, q, k);
  const attention_params p = make_attention_params(q, k, v, call.options);  // sizes, checked
  output_array out({p.B, p.Hq, p.Nq, p.dv});
  std::optional<output_array> lse;
  if (return_lse) lse.emplace(shape_t{p.B, p.Hq, p.Nq});
  last_inputs = {q.view().data(), k.view().data(), v.view().data()};
  {
    py::gil_scoped_release unlocked;
    sdpa_forward_into(q, k, v, {out.view, lse ? std::optional(lse->view) : std::nullopt},
                      call.options);
  }
  if (!return_lse) return std::move(out.array);
  return py::make_tuple(std::move(out.array), std::move(lse->array));
}

py::tuple sdpa_backward(const py::object& grad_out, const py::object& query, const py::object& key,
                        const py::object& value, const py::object& out, const py::object& lse,
                        const sdpa_call& call) {
  const float_input dout("grad_out", grad_out), q("query", query, true), k("key", key, true),
      v("value", value, true), o("out", out), l("lse", lse);
  check_gqa(call, q, k);
  output_array dq(q.shape()), dk(k.shape()), dv(v.shape());
  std::optional<output_array> dsinks;
  if (call.options.modifiers.sinks) dsinks.emplace(call.options.modifiers.sinks->shape());
  {
    py::gil_scoped_release unlocked;
    sdpa_backward_into(
        q, k, v, sdpa_saved(o, l), dout,
        {dq.view, dk.view, dv.view, dsinks ? std::optional(dsinks->view) : std::nullopt},
        call.options);
  }
  if (!dsinks) return py::make_tuple(std::move(dq.array), std::move(dk.array), std::move(dv.array));
  return py::make_tuple(std::move(dq.array), std::move(dk.array), std::move(dv.array),
                        std::move(dsinks->array));
}

// Benchmark hook: seconds per call of qkv::sdpa_forward on inputs converted once, timed in C++
// (the baseline the Python call's overhead is measured against, bench/python_overhead.py).
std::vector<double> time_forward_in_cpp(const py::object& query, const py::object& key,
                                        const py::object& value, int repeats, int threads) {
  const float_input q("query", query, true), k("key", key, true), v("value", value, true);
  sdpa_options options;
  options.run.threads = threads;
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
