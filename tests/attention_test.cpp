// The dispatcher: strided (transposed, sliced) views give the very numbers of contiguous copies,
// forward and backward, on both kernels; caller-provided outputs; the observer and the weights
// helper; refusals naming the argument.
#include "qkv/attention.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "qkv/error.hpp"
#include "qkv/reference.hpp"
#include "support/error_message.hpp"
#include "support/golden.hpp"
#include "support/printers.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::max_abs_diff;

using testing::error_of;

// Inputs laid out as a model holds them: Q, K, V in [B,N,H,d] buffers (the heads of a
// projection) read as [B,H,N,d] views, K and V a slice of a longer cache-like buffer.
struct strided_inputs {
  tensor q_buf, k_buf, v_buf, g_buf;  // [B,Nq,Hq,d], [B,Nk+3,Hkv,d], [B,Nk+3,Hkv,dv], [B,Nq,Hq,dv]
  tensor_view q, k, v, g;             // [B,Hq,Nq,d], [B,Hkv,Nk,d], [B,Hkv,Nk,dv], [B,Hq,Nq,dv]
};

strided_inputs make_inputs(int64_t B, int64_t Hq, int64_t Hkv, int64_t Nq, int64_t Nk, int64_t d,
                           int64_t dv, std::mt19937_64& rng) {
  strided_inputs in;
  in.q_buf = testing::random_tensor({B, Nq, Hq, d}, rng);
  in.k_buf = testing::random_tensor({B, Nk + 3, Hkv, d}, rng);
  in.v_buf = testing::random_tensor({B, Nk + 3, Hkv, dv}, rng);
  in.g_buf = testing::random_tensor({B, Nq, Hq, dv}, rng);
  const auto heads = [](const tensor& t) { return tensor_view(t).permuted({0, 2, 1, 3}); };
  in.q = heads(in.q_buf);
  in.k = heads(in.k_buf).sliced(2, 2, Nk);
  in.v = heads(in.v_buf).sliced(2, 2, Nk);
  in.g = heads(in.g_buf);
  return in;
}

class StridedViews : public ::testing::TestWithParam<sdpa_impl> {};

TEST_P(StridedViews, ForwardEqualsContiguousCopies) {
  std::mt19937_64 rng(11);
  const strided_inputs in = make_inputs(2, 4, 2, 59, 97, 16, 12, rng);
  sdpa_options options;
  options.run.impl = GetParam();
  options.causal = causal_mode::bottom_right;
  const sdpa_result expected =
      sdpa_forward(in.q.to_tensor(), in.k.to_tensor(), in.v.to_tensor(), options);

  const sdpa_result from_views = sdpa_forward(in.q, in.k, in.v, options);
  EXPECT_EQ(max_abs_diff(from_views.out, expected.out), 0.0);
  EXPECT_EQ(max_abs_diff(from_views.lse, expected.lse), 0.0);

  // Outputs into the caller's memory: O straight into [B,Nq,Hq,dv], lse every other float.
  tensor out_buf({2, 59, 4, 12}), lse_buf({2, 4, 59, 2});
  const mutable_tensor_view out = mutable_tensor_view(out_buf).permuted({0, 2, 1, 3});
  const mutable_tensor_view lse(lse_buf.data(), {2, 4, 59}, {4 * 59 * 2, 59 * 2, 2});
  sdpa_forward_into(in.q, in.k, in.v, {out, lse}, options);
  EXPECT_EQ(max_abs_diff(out.to_tensor(), expected.out), 0.0);
  EXPECT_EQ(max_abs_diff(lse.to_tensor(), expected.lse), 0.0);
  // lse is optional.
  sdpa_forward_into(in.q, in.k, in.v, {out, std::nullopt}, options);
  EXPECT_EQ(max_abs_diff(out.to_tensor(), expected.out), 0.0);
}

TEST_P(StridedViews, BackwardEqualsContiguousCopies) {
  std::mt19937_64 rng(12);
  const strided_inputs in = make_inputs(1, 6, 3, 33, 41, 8, 8, rng);
  sdpa_options options;
  options.run.impl = GetParam();
  const tensor q = in.q.to_tensor(), k = in.k.to_tensor(), v = in.v.to_tensor();
  const sdpa_result forward = sdpa_forward(q, k, v, options);
  const sdpa_gradients expected = sdpa_backward(q, k, v, forward, in.g.to_tensor(), options);

  // The saved O as a strided view too, and the gradients written into [B,N,H,d] buffers.
  tensor o_buf({1, 33, 6, 8});
  const mutable_tensor_view o = mutable_tensor_view(o_buf).permuted({0, 2, 1, 3});
  sdpa_forward_into(in.q, in.k, in.v, {o, std::nullopt}, options);
  tensor dq_buf({1, 33, 6, 8}), dk_buf({1, 41, 3, 8}), dv_buf({1, 41, 3, 8});
  const auto heads = [](tensor& t) { return mutable_tensor_view(t).permuted({0, 2, 1, 3}); };
  sdpa_saved saved(o, forward.lse);
  saved.row_max = tensor_view(forward.row_max);
  saved.row_log_sum = tensor_view(forward.row_log_sum);
  sdpa_backward_into(in.q, in.k, in.v, saved, in.g, {heads(dq_buf), heads(dk_buf), heads(dv_buf)},
                     options);
  EXPECT_EQ(max_abs_diff(heads(dq_buf).to_tensor(), expected.dq), 0.0);
  EXPECT_EQ(max_abs_diff(heads(dk_buf).to_tensor(), expected.dk), 0.0);
  EXPECT_EQ(max_abs_diff(heads(dv_buf).to_tensor(), expected.dv), 0.0);

  // Saved O and lse alone (no row statistics): the backward takes m = lse, log l = 0, which
  // changes only the rounding of P.
  sdpa_backward_into(in.q, in.k, in.v, {o, forward.lse}, in.g,
                     {heads(dq_buf), heads(dk_buf), heads(dv_buf)}, options);
  EXPECT_LT(max_abs_diff(heads(dq_buf).to_tensor(), expected.dq), 1e-5);
  EXPECT_LT(max_abs_diff(heads(dk_buf).to_tensor(), expected.dk), 1e-5);
  EXPECT_LT(max_abs_diff(heads(dv_buf).to_tensor(), expected.dv), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Kernels, StridedViews,
                         ::testing::Values(sdpa_impl::reference, sdpa_impl::fused),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(Dispatcher, RefusesViewsTheKernelsCannotRead) {
  std::mt19937_64 rng(13);
  const tensor q = testing::random_tensor({1, 2, 3, 4}, rng), k = q, v = q;
  // Outputs are f32 (inputs may be f16 or bf16: storage_types_test.cpp).
  uint16_t halves[24] = {};
  const mutable_tensor_view out16(halves, dtype::f16, {1, 2, 3, 4});
  EXPECT_NE(error_of([&] {
              sdpa_forward_into(q, k, v, {out16, std::nullopt});
            }).find("out: dtype f16 is not supported here (f32 only)"),
            std::string::npos);
  // Columns of a [1,2,3,8] buffer with stride 2: rows not contiguous.
  const tensor wide = testing::random_tensor({1, 2, 3, 8}, rng);
  const tensor_view gappy(wide.data(), {1, 2, 3, 4}, {48, 24, 8, 2});
  const std::string gap = error_of([&] { sdpa_forward(q, gappy, v); });
  EXPECT_NE(gap.find("k: the last dimension must have stride 1"), std::string::npos) << gap;
  EXPECT_NE(gap.find("got strides [48, 24, 8, 2]"), std::string::npos) << gap;
  // A rank-3 view names its layout.
  EXPECT_NE(error_of([&] {
              sdpa_forward(q, k, tensor({2, 3, 4}));
            }).find("v: expected rank 4 [B,Hkv,Nk,dv], got shape [2, 3, 4]"),
            std::string::npos);

  tensor out({1, 2, 3, 4});
  EXPECT_NE(error_of([&] {
              sdpa_forward_into(
                  q, k, v,
                  {mutable_tensor_view(out.data(), {1, 2, 3, 4}, {24, 0, 4, 1}), std::nullopt});
            }).find("out: an output's elements must not overlap"),
            std::string::npos);
  tensor small({1, 2, 3, 3});
  EXPECT_NE(error_of([&] {
              sdpa_forward_into(q, k, v, {small, std::nullopt});
            }).find("out: expected shape [1, 2, 3, 4], got [1, 2, 3, 3]"),
            std::string::npos);
  tensor lse({1, 2, 4});
  EXPECT_NE(error_of([&] {
              sdpa_forward_into(q, k, v, {out, lse});
            }).find("lse: expected shape [1, 2, 3]"),
            std::string::npos);
}

// Counts the steps the reference reports.
class step_counter : public attention_observer {
 public:
  void on_step(attention_step step, int64_t, int64_t, const double*, int64_t, int64_t) override {
    probabilities += step == attention_step::probabilities;
  }
  int probabilities = 0;
};

TEST(Dispatcher, AnObserverRunsTheReference) {
  std::mt19937_64 rng(14);
  const tensor q = testing::random_tensor({2, 3, 5, 4}, rng), k = q, v = q;
  step_counter counter;
  sdpa_options options;
  options.observer = &counter;
  sdpa_forward(q, k, v, options);  // auto: the reference, which reports every (b, h)
  EXPECT_EQ(counter.probabilities, 6);
  options.run.impl = sdpa_impl::fused;
  EXPECT_NE(error_of([&] { sdpa_forward(q, k, v, options); }).find("observer"), std::string::npos);
}

TEST(Dispatcher, WeightsAreTheSoftmaxRowsThatMultiplyV) {
  std::mt19937_64 rng(15);
  const tensor q = testing::random_tensor({1, 2, 7, 4}, rng);
  const tensor k = testing::random_tensor({1, 1, 9, 4}, rng);
  const tensor v = testing::random_tensor({1, 1, 9, 3}, rng);
  sdpa_options options;
  options.causal = causal_mode::top_left;
  tensor out({1, 2, 7, 3});
  const tensor P = sdpa_forward_with_weights(q, k, v, {out, std::nullopt}, options);
  ASSERT_EQ(P.shape(), (shape_t{1, 2, 7, 9}));
  tensor pv({1, 2, 7, 3});
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 7; ++i) {
      double sum = 0.0;
      for (int64_t j = 0; j < 9; ++j) {
        sum += P.at({0, h, i, j});
        if (j > i) {
          EXPECT_EQ(P.at({0, h, i, j}), 0.0f);
        }
      }
      EXPECT_NEAR(sum, 1.0, 1e-6);
      for (int64_t c = 0; c < 3; ++c) {
        double acc = 0.0;
        for (int64_t j = 0; j < 9; ++j) acc += double(P.at({0, h, i, j})) * v.at({0, 0, j, c});
        pv.at({0, h, i, c}) = static_cast<float>(acc);
      }
    }
  EXPECT_LE(max_abs_diff(pv, out), 1e-5);
  options.run.impl = sdpa_impl::reference;
  EXPECT_EQ(max_abs_diff(out, sdpa_forward(q, k, v, options).out), 0.0);
}

}  // namespace
}  // namespace qkv
