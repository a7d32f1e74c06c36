// The learning-rate schedule of GPT-style training: a linear warm-up, then a cosine decay to a
// floor (Loshchilov & Hutter, SGDR, without restarts).
#pragma once

#include <cstdint>

namespace qkv::nn {

struct lr_schedule {
  double peak = 1e-3;    // reached at the end of the warm-up
  double floor = 1e-4;   // reached at total_steps and kept after
  int64_t warmup = 100;  // steps of linear warm-up
  int64_t total_steps = 1000;

  // Step s (0-based): peak·(s+1)/warmup during the warm-up, then
  // floor + (peak − floor)·(1 + cos(π·r))/2 with r = (s − warmup)/(total_steps − warmup).
  double at(int64_t step) const;
};

}  // namespace qkv::nn
