#include "support/exp_check.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace qkv::testing {

double exp_max_ulp_error(exp_array_fn f) {
  const int64_t n = int64_t{1} << 22;
  std::vector<float> x(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(-87.3 * i / (n - 1));
  x[n - 1] = 88.0f;
  f(x.data(), y.data(), n);
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double exact = std::exp(static_cast<double>(x[i]));
    const double ulp = std::ldexp(1.0, std::ilogb(exact) - 23);
    worst = std::max(worst, std::fabs(y[i] - exact) / ulp);
  }
  return worst;
}

void expect_exp_edges(exp_array_fn f) {
  const float inf = std::numeric_limits<float>::infinity();
  float x[16] = {0.0f, -inf, -88.0f, -1e4f, -87.7f, -1.0f, 1.0f, -20.0f}, y[16];
  f(x, y, 16);  // the last 8 (zeros) only fill a 16-float vector
  EXPECT_EQ(y[0], 1.0f);
  for (int l = 1; l < 5; ++l) EXPECT_EQ(y[l], 0.0f) << "exp(" << x[l] << ")";
  for (int l = 5; l < 8; ++l)
    EXPECT_NEAR(y[l], std::exp(static_cast<double>(x[l])), 2e-7 * std::exp(x[l]));
}

}  // namespace qkv::testing
