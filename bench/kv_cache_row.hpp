// A KV-cache decoding step of nn::multihead_attention for `qkv bench` and the Google Benchmark
// suite: one new token attending to Nk cached positions (projections included).
#pragma once

#include <cstdint>

#include "qkv/dtype.hpp"
#include "qkv/nn/multihead_attention.hpp"
#include "timing.hpp"

namespace qkv::bench {

// A layer (E, H) and a cache holding Nk random positions stored as `type` (f32, f16 or bf16);
// run() is one decoding step (it appends position Nk and attends over Nk+1 keys), rewind() drops
// that position again in O(1).
class kv_cache_step {
 public:
  kv_cache_step(int64_t Nk, int64_t E, int64_t H, int threads, dtype type = dtype::f32);
  void run();
  void rewind() { cache_.truncate(Nk_); }
  // Bytes of cached keys and values one step reads: 2·(Nk+1)·E elements of the cache's type.
  double kv_bytes() const {
    return 2.0 * double(Nk_ + 1) * double(mha_.embed_dim()) * double(size_in_bytes(cache_.type()));
  }

 private:
  int64_t Nk_;
  nn::multihead_attention mha_;
  nn::kv_cache cache_;
  tensor x_;
  nn::mha_options options_;
};

// Median milliseconds of one step at Nk cached positions (B = 1), the cache stored as `type`.
double time_kv_cache_step_ms(int64_t Nk, int64_t E, int64_t H, int threads, dtype type,
                             const timing_plan& plan);

}  // namespace qkv::bench
