// Inputs stored as f16 and bf16 (qkv/stored_tensor.hpp): rounding into storage is half.hpp's,
// the reference kernel reads every storage type exactly (its results on rounded storage equal,
// bit for bit, its results on the same values widened to f32 first), and the dispatcher refuses
// the storage combinations the fused kernel does not take, naming the argument.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "qkv/attention.hpp"
#include "qkv/half.hpp"
#include "qkv/stored_tensor.hpp"
#include "support/error_message.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"

namespace qkv {
namespace {

using testing::max_abs_diff;

TEST(StoredTensor, RoundsAndWidensAsHalfDefines) {
  const float inf = std::numeric_limits<float>::infinity();
  tensor t({3, 4}, {1.0f, -0.0f, 65519.0f, 65520.0f, 1e-8f, -3e-5f, inf, -inf, 0.1f, 3.14159f,
                    1e30f, 2.0f / 3.0f});
  for (dtype type : {dtype::f32, dtype::f16, dtype::bf16}) {
    const stored_tensor s = round_to(type, t);
    ASSERT_EQ(s.type(), type);
    ASSERT_EQ(s.shape(), t.shape());
    ASSERT_EQ(s.bytes(), t.numel() * size_in_bytes(type));
    const tensor back = s.to_tensor();
    const auto* bits = static_cast<const uint16_t*>(s.data());
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float want = type == dtype::f16    ? f16_to_float(float_to_f16(t[i]))
                         : type == dtype::bf16 ? bf16_to_float(float_to_bf16(t[i]))
                                               : t[i];
      EXPECT_EQ(back[i], want) << to_string(type) << " element " << i;
      if (type == dtype::f16) {
        EXPECT_EQ(bits[i], float_to_f16(t[i]));
      }
      if (type == dtype::bf16) {
        EXPECT_EQ(bits[i], float_to_bf16(t[i]));
      }
    }
  }
  const tensor nan({1}, {std::nanf("")});
  EXPECT_TRUE(std::isnan(round_to(dtype::f16, nan).to_tensor()[0]));
  EXPECT_TRUE(std::isnan(round_to(dtype::bf16, nan).to_tensor()[0]));
}

TEST(StoredTensor, ParsesDtypeNames) {
  EXPECT_EQ(parse_dtype("f32", "--dtype"), dtype::f32);
  EXPECT_EQ(parse_dtype("f16", "--dtype"), dtype::f16);
  EXPECT_EQ(parse_dtype("bf16", "--dtype"), dtype::bf16);
  const std::string refusal = testing::error_of([] { parse_dtype("fp16", "--kv-dtype"); });
  EXPECT_EQ(refusal.rfind("--kv-dtype: ", 0), 0u) << refusal;
  EXPECT_NE(refusal.find("'fp16'"), std::string::npos) << refusal;
}

struct storage_case {
  int64_t B, Hq, Hkv, Nq, Nk, d, dv;
};

// The reference on storage `type` for K and V (and Q when `all`) against the reference on the
// same values widened to f32 first: identical, forward (O, lse) and backward (dQ, dK, dV), with
// a causal mask, a window, ALiBi and sinks.
TEST(ReferenceStorage, ReadsEveryTypeExactly) {
  std::mt19937_64 rng(13);
  for (const storage_case& c :
       {storage_case{1, 4, 2, 5, 9, 59, 7}, storage_case{2, 1, 1, 3, 1, 1, 1},
        storage_case{1, 3, 1, 7, 4, 16, 16}}) {
    const testing::attention_inputs in = testing::random_attention_inputs(c, rng);
    sdpa_options options;
    options.run.impl = sdpa_impl::reference;
    options.causal = causal_mode::bottom_right;
    options.window = sdpa_options::attention_window{2, 0};
    options.alibi_slopes = testing::random_tensor({c.Hq}, rng, 0.1f);
    options.sinks = testing::random_tensor({c.Hq}, rng);
    for (dtype type : {dtype::f16, dtype::bf16})
      for (bool all : {false, true}) {
        const std::string where = std::string(to_string(type)) + (all ? " q, k, v" : " k, v") +
                                  " d=" + std::to_string(c.d);
        const stored_tensor q = round_to(all ? type : dtype::f32, in.q), k = round_to(type, in.k),
                            v = round_to(type, in.v);
        const tensor qw = q.to_tensor(), kw = k.to_tensor(), vw = v.to_tensor();
        const sdpa_result got = sdpa_forward(q, k, v, options);
        const sdpa_result want = sdpa_forward(qw, kw, vw, options);
        EXPECT_EQ(max_abs_diff(got.out, want.out), 0.0) << where;
        EXPECT_EQ(max_abs_diff(got.lse, want.lse), 0.0) << where;
        const sdpa_gradients dgot = sdpa_backward(q, k, v, got, in.g, options);
        const sdpa_gradients dwant = sdpa_backward(qw, kw, vw, want, in.g, options);
        EXPECT_EQ(max_abs_diff(dgot.dq, dwant.dq), 0.0) << where;
        EXPECT_EQ(max_abs_diff(dgot.dk, dwant.dk), 0.0) << where;
        EXPECT_EQ(max_abs_diff(dgot.dv, dwant.dv), 0.0) << where;
        // The inputs as the kernels see them: different from f32 (the rounding is real).
        EXPECT_GT(max_abs_diff(kw, in.k), 0.0) << where;
      }
  }
}

// The fused kernels read Q of any storage type and K and V of one type: K and V of different
// types are refused by the dispatcher with a message naming v (auto picks the fused kernel too);
// the reference reads them.
TEST(FusedStorageTypes, RefusesKAndVOfDifferentTypes) {
  std::mt19937_64 rng(5);
  const tensor q = testing::random_tensor({1, 2, 3, 8}, rng),
               k = testing::random_tensor({1, 2, 4, 8}, rng),
               v = testing::random_tensor({1, 2, 4, 8}, rng);
  for (sdpa_impl impl : {sdpa_impl::fused, sdpa_impl::auto_select}) {
    sdpa_options options;
    options.run.impl = impl;
    try {
      sdpa_forward(q, round_to(dtype::bf16, k), v, options);
      ADD_FAILURE() << "bf16 k with f32 v accepted";
    } catch (const error& e) {
      EXPECT_EQ(e.argument(), "v") << e.what();
      EXPECT_NE(std::string(e.what()).find("differs from k's (bf16)"), std::string::npos)
          << e.what();
    }
  }
  sdpa_options reference;
  reference.run.impl = sdpa_impl::reference;
  EXPECT_NO_THROW(sdpa_forward(round_to(dtype::f16, q), round_to(dtype::bf16, k), v, reference));
}

}  // namespace
}  // namespace qkv
