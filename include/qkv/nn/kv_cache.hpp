// A key/value cache for incremental decoding: the keys and values of the positions seen so far,
// appended step by step into preallocated room, and attention of new queries over all of them
// with bottom-right causal alignment (a new query at position t sees keys 0..t). One step of n
// queries costs O(n·Nk·d): the cached keys are read in place, never recomputed nor copied.
#pragma once

#include <cstdint>

#include "qkv/attention.hpp"
#include "qkv/tensor.hpp"

namespace qkv::nn {

class kv_cache {
 public:
  kv_cache() = default;
  // Room for `capacity` positions of B sequences with Hkv heads; keys of dim d, values of dv.
  kv_cache(int64_t B, int64_t Hkv, int64_t capacity, int64_t d, int64_t dv);

  // Appends k [B,Hkv,n,d] and v [B,Hkv,n,dv] as positions length()..length()+n-1. Throws
  // qkv::error (the cache is left unchanged) on a shape mismatch or when they do not fit.
  void append(const tensor& k, const tensor& v);
  // q [B,Hq,n,d] (Hq a multiple of Hkv), the queries of the last n cached positions: attention
  // over the length() cached keys, bottom-right causal. Returns O [B,Hq,n,dv] and lse.
  sdpa_result attend(const tensor& q, sdpa_impl impl = sdpa_impl::auto_select,
                     int threads = 0) const;
  // Forgets every position (keeps the room).
  void clear() { length_ = 0; }
  // Keeps only the first `length` positions (e.g. to roll back rejected draft tokens).
  void truncate(int64_t length);

  int64_t length() const { return length_; }
  int64_t capacity() const { return keys_.size(2); }

 private:
  tensor keys_, values_;  // [B,Hkv,capacity,d], [B,Hkv,capacity,dv]; positions >= length_ unused
  int64_t length_ = 0;
};

}  // namespace qkv::nn
