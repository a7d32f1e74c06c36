// Ring attention forward and backward over MPI (include/qkv/ring/ring_attention.hpp).
// Legend: P ranks, r this rank; at step s rank r works on the K/V block owned by rank r - s
// (mod P) while it passes the block it holds to rank r + 1 and receives the next from r - 1.
// B batch, Hq/Hkv heads, nq/nk shard rows, d/dv head dims.
#include "qkv/ring/ring_attention.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <vector>

#include "../attention_dispatch.hpp"
#include "../kernels/visibility.hpp"
#include "mpi_check.hpp"
#include "qkv/error.hpp"
#include "qkv/merge.hpp"
#include "ring_plan.hpp"

namespace qkv::ring {
namespace {

using qkv::to_string;  // shapes; ring::to_string(shard_layout) would hide it

using detail::ring_plan;
using clock_type = std::chrono::steady_clock;

constexpr int kv_tag = 0, grad_tag = 1;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// A private communicator for the ring's messages, so that they never match the caller's.
class ring_comm {
 public:
  explicit ring_comm(MPI_Comm comm) { QKV_MPI(MPI_Comm_dup(comm, &comm_)); }
  ~ring_comm() { MPI_Comm_free(&comm_); }
  ring_comm(const ring_comm&) = delete;
  ring_comm& operator=(const ring_comm&) = delete;
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// Non-blocking messages of one step, their waiting time counted in the stats.
class exchange {
 public:
  exchange(MPI_Comm comm, ring_stats& stats) : comm_(comm), stats_(stats) {}
  ~exchange() {
    if (!requests_.empty())
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
  }
  exchange(const exchange&) = delete;
  exchange& operator=(const exchange&) = delete;

  void send(const float* data, int64_t count, int to, int tag) {
    requests_.emplace_back();
    QKV_MPI(MPI_Isend(data, message_count(count), MPI_FLOAT, to, tag, comm_, &requests_.back()));
    stats_.bytes_sent += count * static_cast<int64_t>(sizeof(float));
  }
  void receive(float* data, int64_t count, int from, int tag) {
    requests_.emplace_back();
    QKV_MPI(MPI_Irecv(data, message_count(count), MPI_FLOAT, from, tag, comm_, &requests_.back()));
  }
  void wait() {
    const auto start = clock_type::now();
    QKV_MPI(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    requests_.clear();
    stats_.wait_seconds += seconds_since(start);
  }

 private:
  MPI_Comm comm_;
  ring_stats& stats_;
  std::vector<MPI_Request> requests_;
};

// A rank's K/V block as it travels: K [B,Hkv,nk,d], V [B,Hkv,nk,dv], key bias [B,nk] if any.
// Its gradient travels as dK [B,Hkv,nk,d] then dV [B,Hkv,nk,dv].
struct block_layout {
  int64_t nk = 0, k_count = 0, v_count = 0, bias_count = 0;
  int64_t count() const { return k_count + v_count + bias_count; }
  int64_t grad_count() const { return k_count + v_count; }
};

block_layout layout_of(const ring_plan& plan, int owner) {
  const attention_params& L = plan.local;
  const int64_t nk = plan.nk[static_cast<size_t>(owner)];
  return {nk, L.B * L.Hkv * nk * L.d, L.B * L.Hkv * nk * L.dv, plan.has_key_bias ? L.B * nk : 0};
}

int64_t largest(const ring_plan& plan, int64_t (block_layout::*count)() const) {
  int64_t n = 0;
  for (int r = 0; r < plan.P; ++r) n = std::max(n, (layout_of(plan, r).*count)());
  return n;
}

void pack_block(const ring_plan& plan, const tensor& k, const tensor& v, float* block) {
  std::memcpy(block, k.data(), static_cast<size_t>(k.numel()) * sizeof(float));
  std::memcpy(block + k.numel(), v.data(), static_cast<size_t>(v.numel()) * sizeof(float));
  if (plan.has_key_bias)
    std::memcpy(block + k.numel() + v.numel(), plan.key_bias.data(),
                static_cast<size_t>(plan.key_bias.numel()) * sizeof(float));
}

// The kernel parameters of one block: the query segment `qs` of this rank against the key
// segment `ks` of the owner, in the block buffer, at their global positions (which the causal
// and window rules and ALiBi read). Outputs unset; the sinks are left to the final merge.
attention_params block_params(const ring_plan& plan, const float* block, int owner,
                              const segment& qs, const segment& ks) {
  attention_params p = plan.local;
  const block_layout layout = layout_of(plan, owner);
  const int64_t nk = layout.nk, Hkv = p.Hkv, d = p.d, dv = p.dv;
  p.q = static_cast<const float*>(p.q) + qs.local_start * p.q_stride[2];
  p.Nq = qs.length;
  p.Nk = ks.length;
  p.q_offset = qs.start;
  p.k_offset = ks.start;
  p.seq_q = plan.Nq;
  p.seq_k = plan.Nk;
  p.sinks = nullptr;
  p.k = block + ks.local_start * d;
  p.v = block + layout.k_count + ks.local_start * dv;
  const int64_t k_stride[4] = {Hkv * nk * d, nk * d, d, 1},
                v_stride[4] = {Hkv * nk * dv, nk * dv, dv, 1};
  std::copy_n(k_stride, 4, p.k_stride);
  std::copy_n(v_stride, 4, p.v_stride);
  if (plan.has_key_bias) {
    p.mask.kind = mask_kind::additive;
    p.mask.data = block + layout.k_count + layout.v_count + ks.local_start;
    const int64_t mask_stride[4] = {nk, 0, 0, 1};
    std::copy_n(mask_stride, 4, p.mask.stride);
  }
  return p;
}

// A contiguous [B,H,n,C] scratch tensor as a strided view.
struct rows_view {
  float* data;
  int64_t stride[4];
};
rows_view rows_of(float* base, int64_t H, int64_t n, int64_t C) {
  return {base, {H * n * C, n * C, C, 1}};
}

int64_t longest_segment(const std::vector<std::vector<segment>>& all) {
  int64_t n = 0;
  for (const auto& segments : all)
    for (const segment& s : segments) n = std::max(n, s.length);
  return n;
}

// Every block of this rank's query segments against the owner's key segments in which some
// query may see some key (visibility.hpp): the others add nothing to the merge.
template <typename Step>
void for_each_block(const ring_plan& plan, const float* block, int owner, const ring_options& o,
                    Step step) {
  for (const segment& qs : plan.q_segments[static_cast<size_t>(plan.rank)])
    for (const segment& ks : plan.k_segments[static_cast<size_t>(owner)]) {
      attention_params p = block_params(plan, block, owner, qs, ks);
      p.causal = o.causal;
      if (qs.length > 0 && ks.length > 0 && !qkv::detail::visibility(p).band(0, p.Nq).empty())
        step(qs, ks, p);
    }
}

}  // namespace

sdpa_result ring_forward(MPI_Comm comm, const tensor& q, const tensor& k, const tensor& v,
                         const ring_options& options) {
  const ring_comm ring(comm);
  const ring_plan plan = detail::make_ring_plan(ring.get(), q, k, v, options);
  ring_stats stats;
  const attention_params& L = plan.local;
  const int P = plan.P, next = (plan.rank + 1) % P, prev = (plan.rank + P - 1) % P;

  // The running merge starts empty: O = 0, m = log l = -inf (merge.hpp).
  constexpr float minus_inf = -std::numeric_limits<float>::infinity();
  const shape_t rows_shape = {L.B, L.Hq, L.Nq};
  sdpa_result result{tensor({L.B, L.Hq, L.Nq, L.dv}), tensor(rows_shape),
                     tensor(rows_shape, minus_inf), tensor(rows_shape, minus_inf)};
  const partial_result_ref acc_all{result.out.data(),
                                   result.row_max.data(),
                                   result.row_log_sum.data(),
                                   {L.Hq * L.Nq * L.dv, L.Nq * L.dv, L.dv, 1},
                                   {L.Hq * L.Nq, L.Nq, 1}};
  const int64_t rows = longest_segment(plan.q_segments);
  tensor o_part({L.B, L.Hq, rows, L.dv}), max_part({L.B, L.Hq, rows}),
      log_sum_part({L.B, L.Hq, rows});
  std::vector<float> blocks[2];
  for (auto& b : blocks) b.resize(static_cast<size_t>(largest(plan, &block_layout::count)));
  pack_block(plan, k, v, blocks[0].data());

  for (int s = 0; s < P; ++s) {
    const int owner = (plan.rank - s + P) % P;
    const float* block = blocks[s % 2].data();
    exchange ex(ring.get(), stats);
    if (s + 1 < P) {  // pass this block on while computing with it; the next comes from prev
      ex.receive(blocks[(s + 1) % 2].data(), layout_of(plan, (owner + P - 1) % P).count(), prev,
                 kv_tag);
      ex.send(block, layout_of(plan, owner).count(), next, kv_tag);
    }
    const auto start = clock_type::now();
    for_each_block(
        plan, block, owner, options, [&](const segment& qs, const segment&, attention_params& p) {
          const rows_view o = rows_of(o_part.data(), L.Hq, rows, L.dv);
          p.o = o.data;
          std::copy_n(o.stride, 4, p.o_stride);
          p.lse = nullptr;
          p.row_max = max_part.data();
          p.row_log_sum = log_sum_part.data();
          const int64_t row_stride[3] = {L.Hq * rows, rows, 1};
          std::copy_n(row_stride, 3, p.lse_stride);
          qkv::detail::dispatch_forward(p, sdpa_impl::fused);
          // Merge rows [qs.local_start, + qs.length) of the result.
          partial_result_ref acc = acc_all;
          acc.o += qs.local_start * L.dv;
          acc.row_max += qs.local_start;
          acc.row_log_sum += qs.local_start;
          partial_result_ref got{o_part.data(), max_part.data(), log_sum_part.data(), {}, {}};
          std::copy_n(o.stride, 4, got.o_stride);
          std::copy_n(row_stride, 3, got.row_stride);
          merge_partial(acc, got, L.B, L.Hq, qs.length, L.dv);
        });
    stats.compute_seconds += seconds_since(start);
    ex.wait();
  }
  // The sinks once per row, after every block; then lse = m + log l.
  if (L.sinks) merge_sinks(acc_all, L.sinks, L.B, L.Hq, L.Nq, L.dv);
  for (int64_t x = 0; x < result.lse.numel(); ++x)
    result.lse[x] =
        static_cast<float>(static_cast<double>(result.row_max[x]) + result.row_log_sum[x]);
  if (options.stats) *options.stats = stats;
  return result;
}

sdpa_gradients ring_backward(MPI_Comm comm, const tensor& q, const tensor& k, const tensor& v,
                             const sdpa_result& forward, const tensor& grad_out,
                             const ring_options& options) {
  const ring_comm ring(comm);
  const ring_plan plan =
      detail::make_ring_plan(ring.get(), q, k, v, options, [&](const attention_params& p) {
        const shape_t out_shape = {p.B, p.Hq, p.Nq, p.dv}, lse_shape = {p.B, p.Hq, p.Nq};
        if (grad_out.shape() != out_shape)
          throw error("grad_out",
                      "expected this rank's output shape [B,Hq,nq,dv] = " + to_string(out_shape) +
                          ", got " + to_string(grad_out.shape()));
        if (forward.out.shape() != out_shape || forward.row_max.shape() != lse_shape ||
            forward.row_log_sum.shape() != lse_shape)
          throw error("forward", "out " + to_string(forward.out.shape()) + " and row statistics " +
                                     to_string(forward.row_max.shape()) +
                                     " are not this rank's ring_forward result"
                                     " (out " +
                                     to_string(out_shape) + ", lse " + to_string(lse_shape) + ")");
      });
  ring_stats stats;
  const attention_params& L = plan.local;
  const int P = plan.P, next = (plan.rank + 1) % P, prev = (plan.rank + P - 1) % P;

  sdpa_gradients grads{tensor(q.shape()), tensor(k.shape()), tensor(v.shape()), tensor()};
  const int64_t rows = longest_segment(plan.q_segments), keys = longest_segment(plan.k_segments);
  tensor dq_part({L.B, L.Hq, rows, L.d}), dk_part({L.B, L.Hkv, keys, L.d}),
      dv_part({L.B, L.Hkv, keys, L.dv});
  std::vector<float> blocks[2], grad_acc[2], grad_in;
  for (auto& b : blocks) b.resize(static_cast<size_t>(largest(plan, &block_layout::count)));
  for (auto& b : grad_acc) b.resize(static_cast<size_t>(largest(plan, &block_layout::grad_count)));
  grad_in.resize(grad_acc[0].size());
  pack_block(plan, k, v, blocks[0].data());

  // Adds a [B,H,n,C] scratch (rows [0, n)) into rows [first, first + n) of a [B,H,N,C] buffer.
  const auto add_rows = [](float* into, int64_t N, const float* from, int64_t n_from, int64_t B,
                           int64_t H, int64_t n, int64_t C, int64_t first) {
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t x = 0; x < n * C; ++x)
        into[(bh * N + first) * C + x] += from[bh * n_from * C + x];
  };

  // The gradient of a block leaves after the step that completed it; its buffer is reused two
  // steps later, once that send is done.
  exchange grad_sends[2] = {exchange(ring.get(), stats), exchange(ring.get(), stats)};
  for (int s = 0; s < P; ++s) {
    const int owner = (plan.rank - s + P) % P;
    const block_layout layout = layout_of(plan, owner);
    const float* block = blocks[s % 2].data();
    exchange ex(ring.get(), stats), grad_recv(ring.get(), stats);
    if (s + 1 < P) {
      ex.receive(blocks[(s + 1) % 2].data(), layout_of(plan, (owner + P - 1) % P).count(), prev,
                 kv_tag);
      ex.send(block, layout.count(), next, kv_tag);
    }
    // The block's gradient so far, from the ranks that held it before this one.
    if (s > 0) grad_recv.receive(grad_in.data(), layout.grad_count(), prev, grad_tag);
    grad_sends[s % 2].wait();
    float* acc = grad_acc[s % 2].data();
    std::fill_n(acc, layout.grad_count(), 0.0f);

    const auto start = clock_type::now();
    for_each_block(plan, block, owner, options,
                   [&](const segment& qs, const segment& ks, const attention_params& p) {
                     attention_grad_params g;
                     g.forward = p;
                     const int64_t first = qs.local_start;
                     const int64_t o_stride[4] = {L.Hq * L.Nq * L.dv, L.Nq * L.dv, L.dv, 1};
                     std::copy_n(o_stride, 4, g.forward.o_stride);
                     std::copy_n(o_stride, 4, g.dout_stride);
                     const int64_t lse_stride[3] = {L.Hq * L.Nq, L.Nq, 1};
                     std::copy_n(lse_stride, 3, g.forward.lse_stride);
                     g.out = forward.out.data() + first * L.dv;
                     g.row_max = forward.row_max.data() + first;
                     g.row_log_sum = forward.row_log_sum.data() + first;
                     g.dout = grad_out.data() + first * L.dv;
                     const rows_view dq = rows_of(dq_part.data(), L.Hq, rows, L.d);
                     const rows_view dk = rows_of(dk_part.data(), L.Hkv, keys, L.d);
                     const rows_view dv = rows_of(dv_part.data(), L.Hkv, keys, L.dv);
                     g.dq = dq.data, g.dk = dk.data, g.dv = dv.data;
                     std::copy_n(dq.stride, 4, g.dq_stride);
                     std::copy_n(dk.stride, 4, g.dk_stride);
                     std::copy_n(dv.stride, 4, g.dv_stride);
                     qkv::detail::dispatch_backward(g, sdpa_impl::fused);
                     // dQ stays here; the block's dK, dV join its travelling gradient.
                     add_rows(grads.dq.data(), L.Nq, dq_part.data(), rows, L.B, L.Hq, qs.length,
                              L.d, first);
                     add_rows(acc, layout.nk, dk_part.data(), keys, L.B, L.Hkv, ks.length, L.d,
                              ks.local_start);
                     add_rows(acc + layout.k_count, layout.nk, dv_part.data(), keys, L.B, L.Hkv,
                              ks.length, L.dv, ks.local_start);
                   });
    stats.compute_seconds += seconds_since(start);
    if (s > 0) {
      grad_recv.wait();
      for (int64_t x = 0; x < layout.grad_count(); ++x) acc[x] += grad_in[static_cast<size_t>(x)];
    }
    // To the next rank; after the last step that is the block's owner.
    if (P > 1) grad_sends[s % 2].send(acc, layout.grad_count(), next, grad_tag);
    ex.wait();
  }
  // This rank's own dK, dV: complete after the last step, arriving from prev (or kept, P = 1).
  const float* own = grad_acc[(P - 1) % 2].data();
  if (P > 1) {
    exchange last(ring.get(), stats);
    last.receive(grad_in.data(), layout_of(plan, plan.rank).grad_count(), prev, grad_tag);
    last.wait();
    own = grad_in.data();
  }
  std::copy_n(own, grads.dk.numel(), grads.dk.data());
  std::copy_n(own + grads.dk.numel(), grads.dv.numel(), grads.dv.data());
  for (auto& sends : grad_sends) sends.wait();
  // d sinks: this rank's rows, then the sum over the ranks.
  if (L.sinks) {
    attention_grad_params g;
    g.forward = L;
    const int64_t o_stride[4] = {L.Hq * L.Nq * L.dv, L.Nq * L.dv, L.dv, 1},
                  row_stride[3] = {L.Hq * L.Nq, L.Nq, 1};
    std::copy_n(o_stride, 4, g.forward.o_stride);
    std::copy_n(o_stride, 4, g.dout_stride);
    std::copy_n(row_stride, 3, g.forward.lse_stride);
    g.out = forward.out.data();
    g.dout = grad_out.data();
    g.row_max = forward.row_max.data();
    g.row_log_sum = forward.row_log_sum.data();
    grads.dsinks = tensor({L.Hq});
    g.dsinks = grads.dsinks.data();
    qkv::detail::dispatch_sinks_backward(g);
    QKV_MPI(MPI_Allreduce(MPI_IN_PLACE, grads.dsinks.data(), static_cast<int>(L.Hq), MPI_FLOAT,
                          MPI_SUM, ring.get()));
  }
  if (options.stats) *options.stats = stats;
  return grads;
}

}  // namespace qkv::ring
