// Attention of one query over two keys through the installed library: the query matches the
// second key, so most of the weight (and the output) goes to the second value.
#include <cmath>
#include <cstdio>

#include <qkv/attention.hpp>

int main() {
  const qkv::tensor q({1, 1, 1, 2}, {0.0f, 4.0f});
  const qkv::tensor k({1, 1, 2, 2}, {4.0f, 0.0f, 0.0f, 4.0f});
  const qkv::tensor v({1, 1, 2, 1}, {0.0f, 1.0f});
  const qkv::sdpa_result r = qkv::sdpa_forward(q, k, v);
  // softmax([0, 16/sqrt(2)]) weights the second value by 1 / (1 + exp(-16/sqrt(2))).
  const double expected = 1.0 / (1.0 + std::exp(-16.0 / std::sqrt(2.0)));
  std::printf("consumer: out = %.7f (expected %.7f)\n", r.out[0], expected);
  return std::fabs(r.out[0] - expected) < 1e-6 ? 0 : 1;
}
