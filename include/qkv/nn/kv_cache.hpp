// A key/value cache for incremental decoding: the keys and values of the positions seen so far,
// appended step by step into preallocated room, and attention of new queries over all of them
// with bottom-right causal alignment (a new query at position t sees keys 0..t). One step of n
// queries costs O(n·Nk·d): the cached keys are read in place, never recomputed nor copied.
#pragma once

#include <cstdint>

#include "qkv/attention.hpp"
#include "qkv/tensor.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv::nn {

class kv_cache {
 public:
  kv_cache() = default;
  // Room for `capacity` positions of B sequences with Hkv heads; keys of dim d, values of dv.
  kv_cache(int64_t B, int64_t Hkv, int64_t capacity, int64_t d, int64_t dv);

  // Appends k [B,Hkv,n,d] and v [B,Hkv,n,dv] as positions length()..length()+n-1. Throws
  // qkv::error (the cache is left unchanged) on a shape mismatch or when they do not fit.
  // k and v may be strided views (the heads of a projection).
  void append(const tensor_view& k, const tensor_view& v);
  // q [B,Hq,n,d] (Hq a multiple of Hkv), the queries of the last n cached positions: attention
  // over the length() cached keys, bottom-right causal, through sdpa_forward with `options`
  // (kernel, threads, scale; no causal flag nor mask of its own). O [B,Hq,n,dv] and lse.
  sdpa_result attend(const tensor_view& q, const sdpa_options& options = {}) const;
  // The same, written into the caller's views.
  void attend_into(const tensor_view& q, const sdpa_output_views& out,
                   const sdpa_options& options = {}) const;
  // Forgets every position (keeps the room).
  void clear() { length_ = 0; }
  // Keeps only the first `length` positions (e.g. to roll back rejected draft tokens).
  void truncate(int64_t length);

  int64_t length() const { return length_; }
  int64_t capacity() const { return keys_.size(2); }

 private:
  void require_queries(const tensor_view& q) const;
  tensor keys_, values_;  // [B,Hkv,capacity,d], [B,Hkv,capacity,dv]; positions >= length_ unused
  int64_t length_ = 0;
};

}  // namespace qkv::nn
