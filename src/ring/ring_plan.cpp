// The collective validation of ring attention's inputs (ring_plan.hpp).
#include "ring_plan.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "mpi_check.hpp"
#include "qkv/error.hpp"

namespace qkv::ring::detail {
namespace {

using qkv::to_string;  // shapes; ring::to_string(shard_layout) would hide it

// What each rank tells the others: its own verdict and the sizes that must agree.
struct rank_summary {
  char message[768] = {};  // empty: this rank's inputs are valid on their own
  int64_t B = 0, Hq = 0, Hkv = 0, d = 0, dv = 0, nq = 0, nk = 0;
  int64_t causal = 0, layout = 0, padding = 0;  // padding: 1 when key padding is given
  int64_t window_left = -1, window_right = -1, alibi = 0, sinks = 0;
  float scale = 0, softcap = 0;
};

// Key padding [B,nk] or [B,1,1,nk] (B may be 1) as float bias [B or 1, nk].
void read_key_padding(const attention_mask& m, const attention_params& p, ring_plan& plan) {
  if (m.empty()) return;
  if (m.boolean && m.additive)
    throw error("key_padding", "give a boolean or a float mask, not both");
  const shape_t shape = m.boolean ? m.boolean->shape() : m.additive->shape();
  const bool rank2 = shape.size() == 2, rank4 = shape.size() == 4 && shape[1] == 1 && shape[2] == 1;
  const int64_t b = shape.empty() ? 0 : shape[0], n = shape.empty() ? 0 : shape.back();
  if (!(rank2 || rank4) || (b != 1 && b != p.B) || n != p.Nk)
    throw error("key_padding",
                "ring attention takes key padding [B,Nk] or [B,1,1,Nk] (this rank's"
                " keys: B = " +
                    std::to_string(p.B) + " or 1, Nk = " + std::to_string(p.Nk) + "), got shape " +
                    to_string(shape) +
                    "; a dense [Nq,Nk] mask is refused in ring mode: it would break the O(N/P) "
                    "memory per rank");
  // Expanded to [B,nk]: it travels with its K/V block, and every block has the same layout.
  plan.key_bias = tensor({p.B, n});
  plan.has_key_bias = true;
  constexpr float hidden = -std::numeric_limits<float>::infinity();
  for (int64_t x = 0; x < p.B * n; ++x) {
    const int64_t from = b == 1 ? x % n : x;
    plan.key_bias[x] = m.boolean ? ((*m.boolean)[from] ? 0.0f : hidden) : (*m.additive)[from];
  }
}

std::string sizes(const rank_summary& s) {
  return "q [" + std::to_string(s.B) + "," + std::to_string(s.Hq) + "," + std::to_string(s.nq) +
         "," + std::to_string(s.d) + "], k [" + std::to_string(s.B) + "," + std::to_string(s.Hkv) +
         "," + std::to_string(s.nk) + "," + std::to_string(s.d) + "], v [" + std::to_string(s.B) +
         "," + std::to_string(s.Hkv) + "," + std::to_string(s.nk) + "," + std::to_string(s.dv) +
         "]";
}

// The verdict on the gathered summaries: the same on every rank, as it reads the same table.
void check_agreement(const std::vector<rank_summary>& all) {
  for (size_t r = 0; r < all.size(); ++r)
    if (all[r].message[0] != '\0')
      throw error("ring", "rank " + std::to_string(r) + ": " + all[r].message);
  const rank_summary& a = all[0];
  for (size_t r = 1; r < all.size(); ++r) {
    const rank_summary& s = all[r];
    const std::string ranks =
        " (rank 0: " + sizes(a) + "; rank " + std::to_string(r) + ": " + sizes(s) + ")";
    if (s.B != a.B || s.Hq != a.Hq || s.Hkv != a.Hkv || s.d != a.d || s.dv != a.dv)
      throw error("ring",
                  "mismatched shapes across ranks: B, Hq, Hkv, d and dv must be equal on "
                  "every rank" +
                      ranks);
    if (s.causal != a.causal || s.layout != a.layout || s.scale != a.scale)
      throw error("ring",
                  "ranks disagree on the causal mode, the shard layout or the scale (rank " +
                      std::to_string(r) + " differs from rank 0)");
    if (s.window_left != a.window_left || s.window_right != a.window_right ||
        s.softcap != a.softcap || s.alibi != a.alibi || s.sinks != a.sinks)
      throw error("ring",
                  "ranks disagree on the window, the softcap, or whether ALiBi slopes or "
                  "sinks are given (rank " +
                      std::to_string(r) + " differs from rank 0)");
    if ((s.padding == 0) != (a.padding == 0))
      throw error("ring", "key_padding given on some ranks only (rank 0: " +
                              std::string(a.padding ? "yes" : "no") + ", rank " +
                              std::to_string(r) + ": " + (s.padding ? "yes" : "no") + ")");
  }
}

}  // namespace

ring_plan make_ring_plan(MPI_Comm comm, const tensor& q, const tensor& k, const tensor& v,
                         const ring_options& options,
                         const std::function<void(const attention_params&)>& also_check) {
  ring_plan plan;
  MPI_Comm_rank(comm, &plan.rank);
  MPI_Comm_size(comm, &plan.P);

  // 1. This rank alone: the single-process rules on its shards, and the key padding's shape.
  rank_summary mine;
  try {
    // The reference backward recomputes each row's softmax over the keys it is given, so it
    // cannot take one block of a longer row: the blocks run the fused kernels, which take the
    // row statistics of the whole row.
    if (options.run.impl == sdpa_impl::reference)
      throw error("impl", "ring attention runs the fused kernel on each block; use fused or auto");
    sdpa_options local;
    local.scale = options.scale;
    local.run = options.run;
    local.modifiers = options.modifiers;
    plan.local = make_attention_params(q, k, v, local);
    // The checked slopes and sinks, read from the caller's tensors (`local` holds copies).
    const score_modifiers& mods = options.modifiers;
    plan.local.alibi_slopes = mods.alibi_slopes ? mods.alibi_slopes->data() : nullptr;
    plan.local.sinks = mods.sinks ? mods.sinks->data() : nullptr;
    read_key_padding(options.key_padding, plan.local, plan);
    if (also_check) also_check(plan.local);
  } catch (const error& e) {
    std::strncpy(mine.message, e.what(), sizeof mine.message - 1);
  }
  const attention_params& p = plan.local;
  mine.B = p.B, mine.Hq = p.Hq, mine.Hkv = p.Hkv, mine.d = p.d, mine.dv = p.dv;
  mine.nq = p.Nq, mine.nk = p.Nk, mine.scale = p.scale;
  mine.causal = static_cast<int64_t>(options.causal);
  mine.layout = static_cast<int64_t>(options.layout);
  mine.padding = plan.has_key_bias ? 1 : 0;
  mine.window_left = p.window_left, mine.window_right = p.window_right, mine.softcap = p.softcap;
  mine.alibi = p.alibi_slopes ? 1 : 0, mine.sinks = p.sinks ? 1 : 0;

  // 2. Every rank: the same table, the same verdict.
  std::vector<rank_summary> all(static_cast<size_t>(plan.P));
  QKV_MPI(MPI_Allgather(&mine, static_cast<int>(sizeof mine), MPI_BYTE, all.data(),
                        static_cast<int>(sizeof mine), MPI_BYTE, comm));
  check_agreement(all);

  // 3. The global lengths and the shard plan every rank must follow.
  for (const rank_summary& s : all) plan.Nq += s.nq, plan.Nk += s.nk;
  for (int r = 0; r < plan.P; ++r) {
    plan.q_segments.push_back(shard_segments(plan.Nq, r, plan.P, options.layout, "ring: q"));
    plan.k_segments.push_back(shard_segments(plan.Nk, r, plan.P, options.layout, "ring: k"));
    const int64_t nq = shard_length(plan.Nq, r, plan.P, options.layout);
    const int64_t nk = shard_length(plan.Nk, r, plan.P, options.layout);
    const rank_summary& s = all[static_cast<size_t>(r)];
    if (s.nq != nq || s.nk != nk)
      throw error("ring",
                  "rank " + std::to_string(r) + " holds " + std::to_string(s.nq) + " query and " +
                      std::to_string(s.nk) + " key rows, but the " + to_string(options.layout) +
                      " layout of Nq = " + std::to_string(plan.Nq) +
                      ", Nk = " + std::to_string(plan.Nk) + " over " + std::to_string(plan.P) +
                      " ranks gives it " + std::to_string(nq) + " and " + std::to_string(nk) +
                      " (cut the shards with take_shard or scatter_sequence)");
    plan.nk.push_back(nk);
  }
  return plan;
}

}  // namespace qkv::ring::detail
