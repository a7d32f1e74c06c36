// Warm-up then cosine decay.
#include "qkv/nn/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace qkv::nn {

double lr_schedule::at(int64_t step) const {
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (step >= total_steps) return floor;
  const double r = static_cast<double>(step - warmup) /
                   static_cast<double>(std::max<int64_t>(1, total_steps - warmup));
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * r));
}

}  // namespace qkv::nn
