// The bench's KV-cache step rows ("mha-kv-step") store the layer's cache in the run's K/V type:
// a 16-bit cache reads half the bytes of an f32 one, and every such row says its type.
#include "bench/kv_cache_row.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "bench/runner.hpp"

namespace qkv::bench {
namespace {

TEST(KvCacheStepRow, SixteenBitCachesReadHalfTheBytes) {
  kv_cache_step f32(64, 32, 4, 1, dtype::f32), bf16(64, 32, 4, 1, dtype::bf16),
      f16(64, 32, 4, 1, dtype::f16);
  EXPECT_EQ(f32.kv_bytes(), 2.0 * 65 * 32 * 4);
  EXPECT_EQ(bf16.kv_bytes(), f32.kv_bytes() / 2);
  EXPECT_EQ(f16.kv_bytes(), f32.kv_bytes() / 2);
  for (kv_cache_step* step : {&f32, &bf16, &f16}) {  // a step runs on each storage, repeatedly
    step->run();
    step->rewind();
    step->run();
  }
}

TEST(KvCacheStepRow, RowsCarryTheConfiguredCacheType) {
  bench_config config;
  config.shapes = {};
  config.impls = {"mha"};
  config.kv_step_types = {dtype::bf16};
  config.plan.warmup = 0;
  config.plan.reps = 1;
  std::vector<bench_row> steps;
  run_bench(
      config,
      [&](const bench_row& row) {
        if (row.impl == "mha-kv-step") steps.push_back(row);
      },
      [](const std::string&) {});
  ASSERT_EQ(steps.size(), 3u);  // Nk = 1024, 4096, 16384
  for (const bench_row& row : steps) {
    EXPECT_EQ(row.shape.kv_type, dtype::bf16) << row.shape.Nk;
    EXPECT_GT(row.ms, 0.0);
  }
}

}  // namespace
}  // namespace qkv::bench
