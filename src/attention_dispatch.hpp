// The dispatcher's last step, for callers that fill the kernels' parameters once with
// make_attention_params and then run one problem as several blocks (ring attention: each block
// a shard of queries against a travelling shard of keys, at its global positions). The kernel is
// chosen by the one rule of src/attention.cpp; nothing else in the library calls a kernel.
#pragma once

#include "qkv/attention_params.hpp"
#include "qkv/run_options.hpp"

namespace qkv::detail {

// O (and lse, row_max, row_log_sum where non-null) of p, by the kernel `impl` picks (auto:
// fused).
void dispatch_forward(const attention_params& p, sdpa_impl impl);
// dQ, dK, dV (and d sinks when g.dsinks is set) of g, likewise.
void dispatch_backward(const attention_grad_params& g, sdpa_impl impl);
// d sinks alone, [Hq] into g.dsinks, from the saved O, dO and row statistics: for a problem
// whose blocks ran without the sinks (they enter once per row, after the merge).
void dispatch_sinks_backward(const attention_grad_params& g);

}  // namespace qkv::detail
