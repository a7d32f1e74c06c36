// Central differences.
#include "support/finite_difference.hpp"

#include <algorithm>
#include <cmath>

namespace qkv::testing {

double max_finite_difference_error(tensor& x, const tensor& analytic,
                                   const std::function<double()>& loss, float h, int64_t samples) {
  const int64_t n = x.numel(), stride = std::max<int64_t>(1, n / samples);
  double worst = 0.0;
  for (int64_t i = 0; i < n; i += stride) {
    const float saved = x[i];
    x[i] = saved + h;
    const double plus = loss();
    x[i] = saved - h;
    const double minus = loss();
    x[i] = saved;
    // The perturbation actually applied, after fp32 rounding of saved ± h.
    const double step = static_cast<double>(saved + h) - static_cast<double>(saved - h);
    worst = std::max(worst, std::fabs((plus - minus) / step - analytic[i]));
  }
  return worst;
}

double dot(const tensor& out, const tensor& g) {
  double sum = 0.0;
  for (int64_t i = 0; i < out.numel(); ++i) sum += static_cast<double>(out[i]) * g[i];
  return sum;
}

}  // namespace qkv::testing
