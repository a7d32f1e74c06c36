// The collective check that precedes every ring: each rank validates its own shards, the ranks
// exchange a summary, and every rank derives the same verdict (the same qkv::error on every rank,
// or the same plan): no rank enters the ring while another has given up.
#pragma once

#include <mpi.h>

#include <functional>
#include <vector>

#include "qkv/attention_params.hpp"
#include "qkv/ring/ring_attention.hpp"

namespace qkv::ring::detail {

struct ring_plan {
  int rank = 0, P = 1;
  int64_t Nq = 0, Nk = 0;                        // global sequence lengths
  std::vector<std::vector<segment>> q_segments;  // per rank
  std::vector<std::vector<segment>> k_segments;  // per rank
  std::vector<int64_t> nk;                       // key rows per rank
  // Sizes, scale, modifiers and this rank's q, k, v (strides of the local shards); causal,
  // window and mask are global relations, set per block with its positions.
  attention_params local;
  // The key padding of this rank's keys as a float bias [B,nk]: 0 (visible), -inf (a false
  // boolean entry) or the float mask's value; the kernels treat these exactly as the mask.
  tensor key_bias;
  bool has_key_bias = false;
};

// Throws qkv::error (the same on every rank) unless every rank's shards and options agree.
// `also_check` adds rules on this rank's other inputs (the backward's saved O, lse and dO),
// given the checked local sizes; it throws qkv::error, which joins the collective verdict.
ring_plan make_ring_plan(MPI_Comm comm, const tensor& q, const tensor& k, const tensor& v,
                         const ring_options& options,
                         const std::function<void(const attention_params&)>& also_check = {});

}  // namespace qkv::ring::detail
