// Head split and merge. Legend: B batch, N tokens, H heads, hd head dim.
#include "heads.hpp"

#include <algorithm>

#include "qkv/error.hpp"

namespace qkv::nn::detail {

tensor split_heads(const tensor& x, int64_t H) {
  QKV_ASSERT(x.rank() == 3 && x.size(2) % H == 0);
  const int64_t B = x.size(0), N = x.size(1), hd = x.size(2) / H;
  tensor out({B, H, N, hd});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < H; ++h) {
        const float* src = x.data() + ((b * N + n) * H + h) * hd;
        std::copy(src, src + hd, out.data() + ((b * H + h) * N + n) * hd);
      }
  return out;
}

tensor merge_heads(const tensor& o) {
  QKV_ASSERT(o.rank() == 4);
  const int64_t B = o.size(0), H = o.size(1), N = o.size(2), hd = o.size(3);
  tensor out({B, N, H * hd});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t n = 0; n < N; ++n) {
        const float* src = o.data() + ((b * H + h) * N + n) * hd;
        std::copy(src, src + hd, out.data() + ((b * N + n) * H + h) * hd);
      }
  return out;
}

}  // namespace qkv::nn::detail
