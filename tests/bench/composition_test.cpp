// The baselines of `qkv bench` compute attention, not just FLOPs: the BLAS composition forward
// and backward against the reference kernel (docs/contracts.md section 3 tolerances), and the FLOP
// count,
// --shape parser and peak-memory probe the rows rely on.
#include "bench/composition.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "bench/roofs.hpp"
#include "bench/shapes.hpp"
#include "bench/timing.hpp"
#include "kernels/visibility.hpp"
#include "qkv/attention.hpp"
#include "qkv/error.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv::bench {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

// Awkward sizes (tails of the 8-wide vectors, Nq != Nk, GQA) under every causal mode; the
// bottom-right case with Nq > Nk has rows that see no key at all (O = 0, zero gradients).
std::vector<bench_shape> shapes() {
  return {{1, 2, 2, 5, 13, 7, 5, causal_mode::none},
          {2, 4, 2, 9, 9, 16, 16, causal_mode::top_left},
          {1, 3, 1, 7, 4, 8, 3, causal_mode::bottom_right},
          {1, 2, 1, 3, 33, 64, 64, causal_mode::bottom_right}};
}

class Composition : public ::testing::TestWithParam<bench_shape> {};

TEST_P(Composition, ForwardAndBackwardMatchTheReference) {
  const bench_shape s = GetParam();
  std::mt19937_64 rng(7);
  const auto [q, k, v, dout] = testing::random_attention_inputs(s, rng);
  sdpa_options options;
  options.causal = s.causal;
  options.run.impl = sdpa_impl::reference;
  const sdpa_result ref = sdpa_forward(q, k, v, options);
  const sdpa_gradients ref_grads = sdpa_backward(q, k, v, ref, dout, options);

  blas_composition c(s, 2);
  tensor out({s.B, s.Hq, s.Nq, s.dv}), dq(q.shape()), dk(k.shape()), dv(v.shape());
  c.forward(q, k, v, out);
  c.backward(q, k, v, dout, dq, dk, dv);
  EXPECT_LE(max_abs_diff(out, ref.out), 2e-5 * std::max(1.0, max_abs(ref.out)));
  for (const auto& [got, want] : {std::pair{&dq, &ref_grads.dq}, std::pair{&dk, &ref_grads.dk},
                                  std::pair{&dv, &ref_grads.dv}})
    EXPECT_LE(max_abs_diff(*got, *want), 1e-4 * std::max(1.0, max_abs(*want)));
}

INSTANTIATE_TEST_SUITE_P(Bench, Composition, ::testing::ValuesIn(shapes()));

TEST(BenchShapes, VisiblePairsCountWhatTheCausalRuleAllows) {
  for (const bench_shape& s : shapes()) {
    attention_params p;
    p.Nq = s.Nq, p.Nk = s.Nk, p.causal = s.causal;
    const detail::visibility vis(p);
    int64_t pairs = 0;
    for (int64_t i = 0; i < s.Nq; ++i) pairs += vis.band(i).hi - vis.band(i).lo;
    EXPECT_EQ(visible_pairs(s), pairs);
    EXPECT_DOUBLE_EQ(forward_flops(s), 2.0 * double(s.d + s.dv) * double(pairs * s.B * s.Hq));
    EXPECT_DOUBLE_EQ(backward_flops(s), 2.5 * forward_flops(s));
  }
}

TEST(BenchShapes, ParsesTheShapeFlag) {
  const bench_shape a = parse_shape("2,8,2,16,32,64");
  EXPECT_EQ(std::vector<int64_t>({a.B, a.Hq, a.Hkv, a.Nq, a.Nk, a.d, a.dv}),
            std::vector<int64_t>({2, 8, 2, 16, 32, 64, 64}));
  EXPECT_EQ(a.causal, causal_mode::none);
  const bench_shape b = parse_shape("1, 4, 4, 8, 8, 32, 16, bottom-right");
  EXPECT_EQ(b.dv, 16);
  EXPECT_EQ(b.causal, causal_mode::bottom_right);
  EXPECT_EQ(parse_shape("1,1,1,4,4,8,causal").causal, causal_mode::top_left);
  const bench_shape w = parse_shape("1,8,8,8192,8192,64,top-left,window=511:0");
  EXPECT_EQ(w.causal, causal_mode::top_left);
  EXPECT_EQ(w.window_left, 511);
  EXPECT_EQ(w.window_right, 0);
  EXPECT_EQ(parse_shape("1,1,1,4,4,8,window=-1:2").window_right, 2);
  for (const char* bad :
       {"", "1,2,3", "1,8,3,4,4,8", "1,1,1,0,4,8", "1,1,1,4,4,8x", "1,1,1,4,4,8,sideways",
        "1,1,1,4,4,8,window=3", "1,1,1,4,4,8,window=-2:0", "1,1,1,4,4,8,window=1:x"})
    EXPECT_THROW(parse_shape(bad), error) << bad;
}

TEST(BenchRoofs, SgemmSideIsAMultipleOf64NearTheFlopsWithinBounds) {
  EXPECT_EQ(sgemm_side(2.0 * 2048 * 2048 * 2048), 2048);
  EXPECT_EQ(sgemm_side(2.0 * 1500 * 1500 * 1500), 1472);  // 1500 -> the nearest multiple of 64
  EXPECT_EQ(sgemm_side(1e6), 1024);                       // decode rows: at least 1024
  EXPECT_EQ(sgemm_side(1e15), 4096);                      // the long row: at most 4096
}

TEST(BenchTiming, PeakMemoryFollowsARowsAllocations) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer keeps freed memory in quarantine and adds shadow memory";
#endif
  if (!reset_peak_rss()) GTEST_SKIP() << "/proc/self/clear_refs is not writable here";
  const double before = peak_rss_mb();
  {
    std::vector<char> block(64 << 20);
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
    EXPECT_GE(peak_rss_mb(), before + 60);
  }
  ASSERT_TRUE(reset_peak_rss());
  EXPECT_LT(peak_rss_mb(), before + 30);  // the block is gone, and so is its high-water mark
}

}  // namespace
}  // namespace qkv::bench
