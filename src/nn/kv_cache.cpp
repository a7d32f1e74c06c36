// The KV cache. Legend: B batch, Hq/Hkv query/kv heads, n new positions, Nk = length() cached
// keys, d key dim, dv value dim. The cached keys reach the dispatcher as views of the room
// (head stride capacity·d), so a step never copies the cache; a 16-bit cache rounds once, on
// append, and the kernels read its 16-bit elements.
#include "qkv/nn/kv_cache.hpp"

#include <algorithm>

#include "qkv/error.hpp"
#include "qkv/half.hpp"

namespace qkv::nn {

kv_cache::kv_cache(int64_t B, int64_t Hkv, int64_t capacity, int64_t d, int64_t dv, dtype type) {
  if (B < 1 || Hkv < 1 || capacity < 1 || d < 1 || dv < 1)
    throw error("kv_cache",
                "B, Hkv, capacity, d and dv must be >= 1, got B = " + std::to_string(B) +
                    ", Hkv = " + std::to_string(Hkv) + ", capacity = " + std::to_string(capacity) +
                    ", d = " + std::to_string(d) + ", dv = " + std::to_string(dv));
  keys_ = stored_tensor(type, {B, Hkv, capacity, d});
  values_ = stored_tensor(type, {B, Hkv, capacity, dv});
}

namespace {

// room[b, h, at + i, :] = round(src[b, h, i, :]) for a [B,H,n,f] f32 view into a row-major
// [B,H,capacity,f] room of Stored elements.
template <typename Stored, typename Round>
void copy_rows(const tensor_view& src, Stored* room, int64_t capacity, int64_t at, Round round) {
  const int64_t B = src.size(0), H = src.size(1), n = src.size(2), f = src.size(3);
  const float* base = src.f32();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < n; ++i) {
        const float* row = base + b * src.stride(0) + h * src.stride(1) + i * src.stride(2);
        Stored* dst = room + ((b * H + h) * capacity + at + i) * f;
        for (int64_t c = 0; c < f; ++c) dst[c] = round(row[c * src.stride(3)]);
      }
}

void copy_rows(const tensor_view& src, stored_tensor& room, int64_t at) {
  const int64_t capacity = room.shape()[2];
  switch (room.type()) {
    case dtype::f16:
      return copy_rows(src, static_cast<uint16_t*>(room.data()), capacity, at, float_to_f16);
    case dtype::bf16:
      return copy_rows(src, static_cast<uint16_t*>(room.data()), capacity, at, float_to_bf16);
    default:
      return copy_rows(src, static_cast<float*>(room.data()), capacity, at,
                       [](float x) { return x; });
  }
}

}  // namespace

void kv_cache::append(const tensor_view& k, const tensor_view& v) {
  const shape_t& room = keys_.shape();
  const int64_t B = room[0], Hkv = room[1], cap = capacity(), d = room[3];
  const int64_t dv = values_.shape()[3];
  const std::string shapes = " (k " + to_string(k.shape()) + ", v " + to_string(v.shape()) +
                             ", cache [B,Hkv,capacity,d] = " + to_string(room) + ")";
  if (k.type() != dtype::f32 || v.type() != dtype::f32)
    throw error(std::string("k, v: the cache takes f32 keys and values (and rounds them to its ") +
                to_string(type()) + "), got " + to_string(k.type()) + " and " +
                to_string(v.type()));
  if (k.rank() != 4 || k.size(0) != B || k.size(1) != Hkv || k.size(3) != d)
    throw error("k", "expected [B,Hkv,n,d] matching the cache" + shapes);
  const int64_t n = k.size(2);
  if (v.shape() != shape_t{B, Hkv, n, dv})
    throw error("v", "expected [B,Hkv,n,dv] = " + to_string({B, Hkv, n, dv}) + shapes);
  if (length_ + n > cap)
    throw error("kv_cache", "full: cannot append " + std::to_string(n) + " position(s) to " +
                                std::to_string(length_) + " of capacity " + std::to_string(cap) +
                                " (make a larger cache or clear it)");
  copy_rows(k, keys_, length_);
  copy_rows(v, values_, length_);
  length_ += n;
}

void kv_cache::truncate(int64_t length) {
  if (length < 0 || length > length_)
    throw error("length", "must be in [0, " + std::to_string(length_) +
                              "] (the cached positions), got " + std::to_string(length));
  length_ = length;
}

// The first length() rows of each head's room.
tensor_view kv_cache::keys() const {
  return tensor_view(keys_).sliced(2, 0, length_);
}
tensor_view kv_cache::values() const {
  return tensor_view(values_).sliced(2, 0, length_);
}

void kv_cache::require_queries(const tensor_view& q) const {
  if (q.rank() != 4 || q.size(2) < 1 || q.size(2) > length_)
    throw error("q", "expected [B,Hq,n,d] with 1 <= n <= " + std::to_string(length_) +
                         " (the cached positions; append their keys first), got " +
                         to_string(q.shape()));
}

void kv_cache::attend_into(const tensor_view& q, const sdpa_output_views& out,
                           const sdpa_options& options) const {
  require_queries(q);
  if (options.causal != causal_mode::none || !options.mask.empty())
    throw error("options",
                "a cache step is bottom-right causal over the cache; give no causal "
                "flag and no mask");
  sdpa_options step = options;
  step.causal = causal_mode::bottom_right;
  sdpa_forward_into(q, keys(), values(), out, step);
}

sdpa_result kv_cache::attend(const tensor_view& q, const sdpa_options& options) const {
  require_queries(q);
  sdpa_result r{tensor({q.size(0), q.size(1), q.size(2), values_.shape()[3]}),
                tensor({q.size(0), q.size(1), q.size(2)})};
  attend_into(q, {r.out, r.lse}, options);
  return r;
}

}  // namespace qkv::nn
