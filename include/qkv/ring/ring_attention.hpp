// Ring attention: scaled dot-product attention with the sequence sharded across the ranks of a
// caller's MPI communicator. K/V blocks travel around the ring, overlapped with the work on the
// current block; partial results merge by logsumexp (merge.hpp), so the result equals
// single-process attention. qkv never calls MPI_Init: the caller owns MPI.
//
// Legend: B batch, Hq/Hkv query/kv heads, nq/nk this rank's query/key rows (its shard of the
// global Nq/Nk, cut by sequence_shards.hpp), d head dim, dv value head dim.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <optional>

#include "qkv/attention.hpp"
#include "qkv/ring/sequence_shards.hpp"
#include "qkv/score_modifiers.hpp"
#include "qkv/tensor.hpp"

namespace qkv::ring {

// Where the time of one call went, for `qkv bench --ring`.
struct ring_stats {
  double compute_seconds = 0;  // the block kernels and merges
  double wait_seconds = 0;     // blocked in MPI_Wait*: communication the compute did not hide
  int64_t bytes_sent = 0;      // by this rank
};

struct ring_options {
  std::optional<float> scale;              // default 1/sqrt(d); finite and > 0
  causal_mode causal = causal_mode::none;  // in global positions (docs/contracts.md section 1)
  shard_layout layout = shard_layout::contiguous;  // zigzag balances causal work
  // This rank's shard of a key padding mask, [B,nk] or [B,1,1,nk] (B may be 1): boolean
  // (true = may attend) or float (added to S). A dense [Nq,Nk] mask is refused: it would break
  // the O(N/P) memory per rank.
  attention_mask key_padding;
  // Score modifiers (docs/attention.md), in global positions; the same on every rank.
  // The sinks [Hq] count once per row; their gradient is summed over the ranks.
  score_modifiers modifiers;
  run_options run;              // threads per rank; impl fused or auto (the blocks')
  ring_stats* stats = nullptr;  // filled when given
};

// Every rank of `comm` calls these together with its shards: Q [B,Hq,nq,d], K [B,Hkv,nk,d],
// V [B,Hkv,nk,dv], cut by options.layout from the global Nq and Nk (the sums over the ranks).
// Shapes, options and shard sizes are checked collectively before the ring starts: a bad input
// on any rank throws the same qkv::error on every rank, never a hang.
// Returns this rank's out [B,Hq,nq,dv], the global lse [B,Hq,nq] and the row statistics the
// backward takes.
sdpa_result ring_forward(MPI_Comm comm, const tensor& q, const tensor& k, const tensor& v,
                         const ring_options& options = {});

// Gradients of L = sum(O * grad_out) for this rank's shards: dQ stays local; dK and dV travel
// around the ring back to their owners; with sinks, dsinks [Hq] is the sum over every rank's
// rows, the same on every rank. `forward` is this rank's ring_forward result (its global row
// statistics make each block's probabilities exact).
sdpa_gradients ring_backward(MPI_Comm comm, const tensor& q, const tensor& k, const tensor& v,
                             const sdpa_result& forward, const tensor& grad_out,
                             const ring_options& options = {});

}  // namespace qkv::ring
