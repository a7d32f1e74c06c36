// A key/value cache for incremental decoding: the keys and values of the positions seen so far,
// appended step by step into preallocated room, and attention of new queries over all of them
// with bottom-right causal alignment (a new query at position t sees keys 0..t). One step of n
// queries costs O(n·Nk·d): the cached keys are read in place, never recomputed nor copied.
// The cache stores K and V as f32, f16 or bf16: 16-bit caches round each appended value to the
// nearest representable one (ties to even) and hand the kernels 16-bit views, so a step reads
// half the bytes and the cache takes half the memory.
#pragma once

#include <cstdint>

#include "qkv/attention.hpp"
#include "qkv/stored_tensor.hpp"
#include "qkv/tensor.hpp"
#include "qkv/tensor_view.hpp"

namespace qkv::nn {

class kv_cache {
 public:
  kv_cache() = default;
  // Room for `capacity` positions of B sequences with Hkv heads; keys of dim d, values of dv,
  // stored as `type`.
  kv_cache(int64_t B, int64_t Hkv, int64_t capacity, int64_t d, int64_t dv,
           dtype type = dtype::f32);

  // Appends k [B,Hkv,n,d] and v [B,Hkv,n,dv] (f32) as positions length()..length()+n-1, rounded
  // to type() (nearest, ties to even). Throws qkv::error (the cache is left unchanged) on a shape
  // mismatch or when they do not fit. k and v may be strided views (the heads of a projection).
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
  int64_t capacity() const { return keys_.shape().empty() ? 0 : keys_.shape()[2]; }
  dtype type() const { return keys_.type(); }
  // The cached positions as the kernels read them, in place: K [B,Hkv,length(),d] and
  // V [B,Hkv,length(),dv], of type().
  tensor_view keys() const;
  tensor_view values() const;
  // The bytes the cache holds for its keys and values, allocated whole at construction:
  // B·Hkv·capacity·(d + dv)·size_in_bytes(type()).
  int64_t bytes() const { return keys_.bytes() + values_.bytes(); }

 private:
  void require_queries(const tensor_view& q) const;
  // [B,Hkv,capacity,d] and [B,Hkv,capacity,dv]; positions >= length_ unused.
  stored_tensor keys_, values_;
  int64_t length_ = 0;
};

}  // namespace qkv::nn
