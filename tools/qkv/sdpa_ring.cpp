// `mpirun -np P qkv sdpa --ring ...`: the same inputs and whole output files as `qkv sdpa`, the
// work done by ring attention (include/qkv/ring/ring_attention.hpp). Rank 0 reads, checks and
// scatters; every rank runs the ring on its shard; rank 0 gathers and writes. A bad input gives
// the same message on every rank and exit code 2 everywhere.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>

#include "commands.hpp"
#include "inputs.hpp"
#include "output_files.hpp"
#include "qkv/error.hpp"
#include "qkv/io/npy.hpp"
#include "sdpa_args.hpp"

#ifdef QKV_WITH_MPI
#include <mpi.h>

#include "mpi_session.hpp"
#include "qkv/ring/ring_attention.hpp"
#endif

namespace qkv::cli {

#ifndef QKV_WITH_MPI

void run_sdpa_ring(const sdpa_args&, const sdpa_options&) {
  throw error("--ring: this qkv was built without MPI (it needs MPI found and QKV_WITH_MPI=ON)");
}

#else

namespace {

constexpr int root = 0;

// Root's verdict reaches every rank: a non-empty message is thrown as qkv::error everywhere.
void share_verdict(MPI_Comm comm, std::string message) {
  int length = static_cast<int>(message.size());
  MPI_Bcast(&length, 1, MPI_INT, root, comm);
  message.resize(static_cast<size_t>(length));
  MPI_Bcast(message.data(), length, MPI_CHAR, root, comm);
  if (length > 0) throw error(message);
}

// What every rank needs to know of the whole inputs read on root.
struct input_header {
  int64_t q[4] = {}, k[4] = {}, v[4] = {};
  int64_t key_padding = 0, backward = 0;
};

shape_t shape_of(const int64_t (&s)[4]) {
  return {s[0], s[1], s[2], s[3]};
}
void copy_shape(int64_t (&dst)[4], const shape_t& s) {
  std::copy(s.begin(), s.end(), dst);
}

// A mask that hides keys only, aligned to [B,Hq,Nq,Nk] by NumPy's rules with Hq and Nq of 1,
// as a float bias [B,1,1,Nk] (0 or -inf for a boolean mask). Any other mask is refused.
tensor key_padding_bias(const attention_mask& m, int64_t B, int64_t Nk) {
  shape_t s = m.boolean ? m.boolean->shape() : m.additive->shape();
  const shape_t given = s;
  s.insert(s.begin(), 4 - s.size(), 1);
  if (s[1] != 1 || s[2] != 1)
    throw error(
        "--mask: shape " + to_string(given) +
        " varies along heads or queries (it broadcasts to [B,Hq,Nq,Nk] by NumPy's rules, "
        "docs/contracts.md; a rank-2 mask is [Nq,Nk]): a dense mask is refused with --ring, as it "
        "would break the O(N/P) memory per rank; key padding [B,1,1,Nk] is accepted");
  tensor bias({B, 1, 1, Nk});
  const shape_t stride = contiguous_strides(s);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < Nk; ++j) {
      const int64_t at = (s[0] == 1 ? 0 : b * stride[0]) + (s[3] == 1 ? 0 : j * stride[3]);
      bias[b * Nk + j] = m.boolean
                             ? ((*m.boolean)[at] ? 0.0f : -std::numeric_limits<float>::infinity())
                             : (*m.additive)[at];
    }
  return bias;
}

struct whole_inputs {
  tensor q, k, v, key_bias, grad_out;
};

// Root: reads and checks every input with the single-process rules (same messages).
whole_inputs read_whole_inputs(const sdpa_args& a, const sdpa_options& options, input_header& h) {
  check_output_paths(sdpa_outputs(a));
  whole_inputs in;
  in.q = read_float_input("--q", a.q), in.k = read_float_input("--k", a.k),
  in.v = read_float_input("--v", a.v);
  sdpa_options check = options;
  if (!a.mask.empty()) check.mask = read_sdpa_mask("--mask", a.mask);
  attention_params p;
  try {
    p = make_attention_params(in.q, in.k, in.v, check);
  } catch (const error& e) {
    throw error(sdpa_flag_message(e));
  }
  if (!check.mask.empty()) in.key_bias = key_padding_bias(check.mask, p.B, p.Nk);
  if (!a.grad_out.empty()) {
    in.grad_out = read_float_input("--grad-out", a.grad_out);
    const shape_t out_shape = {p.B, p.Hq, p.Nq, p.dv};
    if (in.grad_out.shape() != out_shape)
      throw error("--grad-out: expected the output's shape [B,Hq,Nq,dv] = " + to_string(out_shape) +
                  ", got " + to_string(in.grad_out.shape()));
  }
  copy_shape(h.q, in.q.shape()), copy_shape(h.k, in.k.shape()), copy_shape(h.v, in.v.shape());
  h.key_padding = !check.mask.empty();
  h.backward = !a.grad_out.empty();
  return in;
}

void run_ring(MPI_Comm comm, const sdpa_args& a, const sdpa_options& options,
              ring::shard_layout layout) {
  int rank = 0, P = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &P);

  // 1. Root reads and checks; every rank learns the verdict and the shapes.
  input_header h;
  whole_inputs in;
  std::string problem;
  if (rank == root) try {
      in = read_whole_inputs(a, options, h);
    } catch (const error& e) {
      problem = e.what();
    }
  share_verdict(comm, problem);
  MPI_Bcast(&h, static_cast<int>(sizeof h), MPI_BYTE, root, comm);
  const shape_t q_shape = shape_of(h.q), k_shape = shape_of(h.k), v_shape = shape_of(h.v);
  const int64_t B = q_shape[0], Hq = q_shape[1], Nq = q_shape[2], Nk = k_shape[2];
  ring::shard_segments(Nq, rank, P, layout, "--q");  // too short for P ranks: the same error
  ring::shard_segments(Nk, rank, P, layout, "--k");  // on every rank, before any message

  // 2. Each rank receives its shards; queries cut along Nq, keys (and their padding) along Nk.
  const auto scatter = [&](const tensor& t, const shape_t& shape, int64_t axis) {
    return ring::scatter_sequence(comm, root, t, shape, axis, layout);
  };
  const tensor q = scatter(in.q, q_shape, 2), k = scatter(in.k, k_shape, 2),
               v = scatter(in.v, v_shape, 2);
  ring::ring_options ring;
  ring.scale = options.scale;
  ring.causal = options.causal;
  ring.layout = layout;
  ring.run = options.run;
  ring.modifiers = options.modifiers;
  if (h.key_padding) ring.key_padding.additive = scatter(in.key_bias, {B, 1, 1, Nk}, 3);
  const tensor g = h.backward ? scatter(in.grad_out, {B, Hq, Nq, v_shape[3]}, 2) : tensor();
  in = whole_inputs();  // root keeps only what it writes from here on

  // 3. The ring, then root gathers the whole outputs.
  sdpa_result result;
  sdpa_gradients grads;
  try {
    result = ring::ring_forward(comm, q, k, v, ring);
    if (h.backward) grads = ring::ring_backward(comm, q, k, v, result, g, ring);
  } catch (const error& e) {
    throw error(sdpa_flag_message(e));
  }
  const auto gather = [&](const tensor& t, const shape_t& shape) {
    return ring::gather_sequence(comm, root, t, shape, 2, layout);
  };
  const tensor out = gather(result.out, {B, Hq, Nq, v_shape[3]});
  const tensor lse = gather(result.lse, {B, Hq, Nq});
  tensor dq, dk, dv;
  if (h.backward)
    dq = gather(grads.dq, q_shape), dk = gather(grads.dk, k_shape), dv = gather(grads.dv, v_shape);

  // 4. Root writes the files as one (none left behind on failure); every rank learns the result.
  problem.clear();
  if (rank == root) try {
      output_files outputs;
      outputs.add("--out", a.out, [&](const std::string& path) { io::write_npy(path, out); });
      outputs.add("--lse", a.lse, [&](const std::string& path) { io::write_npy(path, lse); });
      if (h.backward) {
        outputs.add("--dq", a.dq, [&](const std::string& path) { io::write_npy(path, dq); });
        outputs.add("--dk", a.dk, [&](const std::string& path) { io::write_npy(path, dk); });
        outputs.add("--dv", a.dv, [&](const std::string& path) { io::write_npy(path, dv); });
        outputs.add("--dsinks", a.dsinks,
                    [&](const std::string& path) { io::write_npy(path, grads.dsinks); });
      }
      outputs.commit();
    } catch (const error& e) {
      problem = e.what();
    }
  share_verdict(comm, problem);
}

}  // namespace

void run_sdpa_ring(const sdpa_args& a, const sdpa_options& options) {
  // Refused before MPI starts: the command's error handler then reports once, from rank 0.
  if (options.run.impl == sdpa_impl::reference)
    throw error("--impl: --ring runs the fused kernel on each block; use fused or auto");
  const ring::shard_layout layout = ring::parse_shard_layout(a.ring_layout, "--ring-layout");
  const mpi_session mpi;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  try {
    run_ring(MPI_COMM_WORLD, a, options, layout);
  } catch (const error& e) {
    // The same verdict on every rank: said once, by rank 0, now, before MPI_Finalize (a fence in
    // mpi_session's destructor). Rank 0's exit code 2 is the job's; the others leave quietly.
    if (rank != root) throw already_reported{0};
    std::fprintf(stderr, "qkv: error: %s\n", e.what());
    std::fflush(stderr);
    throw already_reported{2};
  } catch (const std::exception& e) {
    // A failure on this rank alone: the others would wait for it forever, so end the job.
    std::fprintf(stderr, "qkv: internal error on rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

#endif

}  // namespace qkv::cli
