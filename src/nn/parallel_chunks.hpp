// Splitting n items (elements or rows) of an element-wise layer into fixed chunks run on OpenMP's
// threads. Chunk boundaries depend on n and the chunk size only, never on the thread count, so a
// reduction done per chunk and then summed over chunks in order gives the same bits on 1 or
// 2 threads. Private to src/nn.
#pragma once

#include <algorithm>
#include <cstdint>

namespace qkv::nn::detail {

// Elements per chunk of a purely element-wise pass: 64 KiB of floats, enough to hide the
// scheduling cost, small enough to balance 2 threads over a [B·T, 4E] hidden layer.
constexpr int64_t elementwise_chunk = 16384;
// Rows per chunk of a row-wise pass (LayerNorm, softmax rows).
constexpr int64_t rows_per_chunk = 32;

// Number of chunks of `chunk` items that cover n.
inline int64_t chunk_count(int64_t n, int64_t chunk) {
  return (n + chunk - 1) / chunk;
}

// f(c, begin, end) for every chunk c = [begin, end) of [0, n), in parallel when there is more
// than one chunk.
template <typename F>
void for_each_chunk(int64_t n, int64_t chunk, F&& f) {
  const int64_t chunks = chunk_count(n, chunk);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) f(c, c * chunk, std::min(n, (c + 1) * chunk));
}

}  // namespace qkv::nn::detail
