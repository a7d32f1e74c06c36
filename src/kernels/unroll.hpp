// Unrolled dispatch for micro-kernels whose accumulator count is a template parameter. Include
// after a translation unit's target pragma: each instantiation belongs to its caller's target.
#pragma once

#include <cstdint>

namespace qkv::detail {

template <int R, typename F>
inline void for_last_group(int64_t left, int64_t i, F& f) {
  if constexpr (R > 0) {
    if (left == R)
      f.template operator()<R>(i);
    else
      for_last_group<R - 1>(left, i, f);
  }
}
// Unrolled dispatch: f.template operator()<N>(i) for every whole group of N in [0, n), then
// f.template operator()<n % N>(i) for the rest, so that micro-kernels keep their accumulators
// in registers (the count is a template parameter).
template <int N, typename F>
inline void for_groups(int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + N <= n; i += N) f.template operator()<N>(i);
  for_last_group<N - 1>(n - i, i, f);
}

}  // namespace qkv::detail
