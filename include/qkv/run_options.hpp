// How an attention computation runs: which kernel, and on how many threads. Every option struct
// that reaches the attention kernels (sdpa_options, mha_options, the layers', the GPT step's,
// ring attention's, the trainer's) holds one of these as its member `run`.
#pragma once

namespace qkv {

// reference: the exact kernel (float64 accumulation); fused: the fast one; auto_select: fused,
// unless the reference's intermediates are asked for (an observer, the attention weights).
enum class sdpa_impl { reference, fused, auto_select };

struct run_options {
  sdpa_impl impl = sdpa_impl::auto_select;
  // 0: the QKV_NUM_THREADS environment variable if set, else every core; > 0: that many, up to
  // max_thread_count() (threads.hpp).
  int threads = 0;
};

}  // namespace qkv
