// Element-wise passes and reductions of the layers (elementwise.hpp).
#include "elementwise.hpp"

#include <algorithm>
#include <vector>

#include "parallel_chunks.hpp"
#include "qkv/error.hpp"
#include "vector_math.hpp"

namespace qkv::nn::detail {
namespace {

// Rows per chunk of a column sum: [256, n] per partial sum, at most a few dozen of them.
constexpr int64_t column_sum_rows = 256;

QKV_VECTOR_CLONES void add_values(float* a, const float* b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

// out[j] = Σ_r x[r·ld + j] over R rows (overwritten).
QKV_VECTOR_CLONES void column_sums(float* out, const float* x, int64_t R, int64_t n, int64_t ld) {
  std::fill(out, out + n, 0.0f);
  for (int64_t r = 0; r < R; ++r) {
    const float* row = x + r * ld;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] += row[j];
  }
}

QKV_VECTOR_CLONES double squares(const float* x, int64_t n) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

QKV_VECTOR_CLONES void scale_values(float* x, int64_t n, double c) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(x[i] * c);
}

}  // namespace

tensor add(tensor a, const tensor& b) {
  QKV_ASSERT(a.shape() == b.shape());
  for_each_chunk(a.numel(), elementwise_chunk, [&](int64_t, int64_t begin, int64_t end) {
    add_values(a.data() + begin, b.data() + begin, end - begin);
  });
  return a;
}

void add_column_sums(float* sums, const float* x, int64_t R, int64_t n, int64_t ld) {
  const int64_t chunks = chunk_count(R, column_sum_rows);
  std::vector<float> partial(static_cast<size_t>(chunks * n));
  for_each_chunk(R, column_sum_rows, [&](int64_t c, int64_t begin, int64_t end) {
    column_sums(partial.data() + c * n, x + begin * ld, end - begin, n, ld);
  });
  for (int64_t c = 0; c < chunks; ++c) add_values(sums, partial.data() + c * n, n);
}

double sum_of_squares(const float* x, int64_t n) {
  std::vector<double> partial(static_cast<size_t>(chunk_count(n, elementwise_chunk)));
  for_each_chunk(n, elementwise_chunk, [&](int64_t c, int64_t begin, int64_t end) {
    partial[static_cast<size_t>(c)] = squares(x + begin, end - begin);
  });
  double sum = 0.0;
  for (const double p : partial) sum += p;
  return sum;
}

void scale(float* x, int64_t n, double c) {
  for_each_chunk(n, elementwise_chunk, [&](int64_t, int64_t begin, int64_t end) {
    scale_values(x + begin, end - begin, c);
  });
}

}  // namespace qkv::nn::detail
