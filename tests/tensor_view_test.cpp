// Strided views: made from a tensor and from raw memory, reordered and sliced by stride
// arithmetic alone, copied back in the right order; malformed views refused with named messages.
#include "qkv/tensor_view.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <string>

#include "qkv/error.hpp"
#include "support/error_message.hpp"

namespace qkv {
namespace {

// 0, 1, 2, ... in row-major order.
tensor iota_tensor(const shape_t& shape) {
  tensor t(shape);
  std::iota(t.values().begin(), t.values().end(), 0.0f);
  return t;
}

using testing::error_of;

TEST(TensorView, FromATensorIsContiguousF32) {
  const tensor t = iota_tensor({2, 3, 4});
  const tensor_view v = t;
  EXPECT_EQ(v.data(), t.data());
  EXPECT_EQ(v.type(), dtype::f32);
  EXPECT_EQ(v.shape(), t.shape());
  EXPECT_EQ(v.strides(), (shape_t{12, 4, 1}));
  EXPECT_TRUE(v.contiguous());
  EXPECT_EQ(v.numel(), 24);
  EXPECT_EQ(v.to_tensor().values()[23], 23.0f);
}

TEST(TensorView, FromRawMemoryWithStrides) {
  // Every other column of a [3, 4] buffer: a [3, 2] view with strides (4, 2).
  const tensor t = iota_tensor({3, 4});
  const tensor_view v(t.data(), {3, 2}, {4, 2});
  EXPECT_FALSE(v.contiguous());
  const tensor c = v.to_tensor();
  EXPECT_EQ(std::vector<float>(c.values().begin(), c.values().end()),
            (std::vector<float>{0, 2, 4, 6, 8, 10}));
  // Strides omitted: row-major.
  EXPECT_EQ(tensor_view(t.data(), {2, 6}).strides(), (shape_t{6, 1}));
  // Other dtypes carry their tag (the storage types the attention kernels read).
  const uint16_t halves[4] = {};
  EXPECT_EQ(tensor_view(halves, dtype::bf16, {4}).type(), dtype::bf16);
  EXPECT_EQ(std::string(to_string(dtype::f16)), "f16");
  EXPECT_EQ(size_in_bytes(dtype::f16), 2);
}

TEST(TensorView, PermutedAndSlicedAreStrideArithmetic) {
  // [B,N,H,hd] = [2,3,4,5] read as [B,H,N,hd], the layout of attention heads.
  const tensor t = iota_tensor({2, 3, 4, 5});
  const tensor_view heads = tensor_view(t).permuted({0, 2, 1, 3});
  EXPECT_EQ(heads.shape(), (shape_t{2, 4, 3, 5}));
  EXPECT_EQ(heads.strides(), (shape_t{60, 5, 20, 1}));
  EXPECT_EQ(heads.data(), t.data());
  const tensor c = heads.to_tensor();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t n = 0; n < 3; ++n)
        for (int64_t x = 0; x < 5; ++x) EXPECT_EQ(c.at({b, h, n, x}), t.at({b, n, h, x}));
  // Tokens 1..2 of each head.
  const tensor_view tail = heads.sliced(2, 1, 2);
  EXPECT_EQ(tail.shape(), (shape_t{2, 4, 2, 5}));
  EXPECT_EQ(tail.to_tensor().at({1, 3, 0, 4}), t.at({1, 1, 3, 4}));
  EXPECT_EQ(heads.sliced(-1, 2, 3).to_tensor().at({0, 0, 0, 0}), 2.0f);
}

TEST(TensorView, MutableViewsWriteThrough) {
  tensor t({2, 3});
  const mutable_tensor_view v = mutable_tensor_view(t).permuted({1, 0});
  v.mutable_f32()[v.stride(0) * 2 + v.stride(1) * 1] = 7.0f;  // v[2, 1] = t[1, 2]
  EXPECT_EQ(t.at({1, 2}), 7.0f);
}

TEST(TensorView, MalformedViewsAreRefusedWithNamedMessages) {
  const tensor t = iota_tensor({2, 3});
  EXPECT_NE(error_of([&] {
              tensor_view(t.data(), {2, 3}, {3});
            }).find("do not match the rank"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              tensor_view(t.data(), {2, 3}, {-3, 1});
            }).find("strides must be >= 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tensor_view(static_cast<const float*>(nullptr), {2}); }).find("null"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              tensor_view(t).permuted({0, 0});
            }).find("permutation [0, 0]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tensor_view(t).sliced(1, 2, 2); }).find("outside shape [2, 3]"),
            std::string::npos);
}

TEST(TensorView, OverlapIsDetected) {
  const tensor t = iota_tensor({4, 6});
  EXPECT_FALSE(overlaps(t));
  EXPECT_FALSE(overlaps(tensor_view(t).permuted({1, 0})));
  EXPECT_FALSE(overlaps(tensor_view(t.data(), {2, 3}, {12, 2})));  // gaps are fine
  EXPECT_TRUE(overlaps(tensor_view(t.data(), {3, 4}, {0, 1})));    // a broadcast row
  EXPECT_TRUE(overlaps(tensor_view(t.data(), {3, 4}, {2, 1})));    // rows that share elements
  EXPECT_FALSE(overlaps(tensor_view(t.data(), {1, 4}, {0, 1})));   // one row: stride unused
}

}  // namespace
}  // namespace qkv
