// The exact reference attention kernels: float64 accumulation, written in numbered passes for
// clarity, not speed. They are the oracle every optimised kernel is tested against, and the
// source of the numbers `qkv explain` shows (through attention_observer).
#pragma once

#include <cstdint>

#include "qkv/attention_params.hpp"

namespace qkv {

// The named intermediates of the reference forward, in the order it reports them.
enum class attention_step {
  scores,         // Q·K^T [Nq,Nk]
  scaled,         // scale·Q·K^T [Nq,Nk]
  masked,         // S: scaled with the bias added and -inf on hidden keys [Nq,Nk]
  probabilities,  // P = softmax_rows(S) [Nq,Nk]
  dropped,        // Z = P ∘ M/(1-p) [Nq,Nk], only with attention dropout
  output,         // O [Nq,dv]
};

// Receives each intermediate of one (batch, query head) as a row-major matrix.
class attention_observer {
 public:
  virtual ~attention_observer() = default;
  virtual void on_step(attention_step step, int64_t b, int64_t h, const double* values,
                       int64_t rows, int64_t cols) = 0;
};

// Writes p.o and (when non-null) p.lse, p.row_max, p.row_log_sum. A row with no visible key
// gets O = 0 and lse = -inf (lse = sink with sinks); a row the NaN rule poisons gets NaN.
void sdpa_forward_reference(const attention_params& p, attention_observer* observer = nullptr);

// Writes g.dq, g.dk, g.dv and (when non-null) g.dsinks, overwritten, not accumulated.
// Recomputes P from Q and K in float64; ignores the saved g.out, g.row_max and g.row_log_sum.
void sdpa_backward_reference(const attention_grad_params& g);

}  // namespace qkv
