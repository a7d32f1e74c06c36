// The scalar 16-bit conversions against independent definitions: f16 against a nearest-value
// search over every finite binary16 (and against the CPU's F16C instructions where it has them),
// bf16 against choosing the nearer of the two neighbouring bfloat16 values in float64.
#include "qkv/half.hpp"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace qkv {
namespace {

// Every finite non-negative binary16 value, ascending with its bit pattern (0x0000..0x7bff).
const std::vector<double>& finite_f16_values() {
  static const std::vector<double> values = [] {
    std::vector<double> v;
    for (int h = 0; h < 0x7c00; ++h) {
      const int e = h >> 10, m = h & 0x3ff;
      v.push_back(e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25));
    }
    return v;
  }();
  return values;
}

// The binary16 nearest to x (ties to the even pattern), by search: an independent definition.
uint16_t nearest_f16(float x) {
  if (std::isnan(x)) return 0x7e00;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(x));
  if (a >= 65520.0) return sign | 0x7c00;  // the midpoint of 65504 and 2^16 rounds up (even)
  if (a > 65504.0) return sign | 0x7bff;   // below that midpoint: the largest finite f16
  const auto& v = finite_f16_values();
  const auto above = std::lower_bound(v.begin(), v.end(), a);
  if (*above == a) return sign | static_cast<uint16_t>(above - v.begin());
  const auto below = above - 1;
  const double up = *above - a, down = a - *below;
  size_t pick = static_cast<size_t>(up < down ? above - v.begin() : below - v.begin());
  if (up == down) pick = ((above - v.begin()) % 2 == 0) ? above - v.begin() : below - v.begin();
  return sign | static_cast<uint16_t>(pick);
}

// Floats that probe every binade the conversion distinguishes: a sweep over bit patterns plus
// each f16 value, its neighbours and the midpoints between consecutive f16 values.
std::vector<float> probe_floats() {
  std::vector<float> xs;
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 9973)
    xs.push_back(std::bit_cast<float>(static_cast<uint32_t>(bits)));
  const auto& v = finite_f16_values();
  for (size_t i = 0; i + 1 < v.size(); ++i) {
    const float f = static_cast<float>(v[i]), mid = static_cast<float>((v[i] + v[i + 1]) / 2);
    for (float x : {f, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)})
      xs.insert(xs.end(), {x, -x});
  }
  for (float x : {65504.0f, 65519.99f, 65520.0f, 1e30f, std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::denorm_min(), 0x1p-25f, 0x1.000002p-25f})
    xs.insert(xs.end(), {x, -x});
  return xs;
}

TEST(Half, F16ToFloatIsExactForEveryPattern) {
  const auto& v = finite_f16_values();
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float x = f16_to_float(static_cast<uint16_t>(h));
    const uint32_t magnitude = h & 0x7fff;
    if (magnitude > 0x7c00) {
      EXPECT_TRUE(std::isnan(x)) << std::hex << h;
    } else if (magnitude == 0x7c00) {
      EXPECT_TRUE(std::isinf(x)) << std::hex << h;
    } else {
      EXPECT_EQ(static_cast<double>(std::fabs(x)), v[magnitude]) << std::hex << h;
    }
    EXPECT_EQ(std::signbit(x), (h & 0x8000) != 0) << std::hex << h;
  }
}

TEST(Half, FloatToF16RoundsToNearestEven) {
  int64_t mismatches = 0;
  for (float x : probe_floats()) {
    const uint16_t got = float_to_f16(x), want = nearest_f16(x);
    if (std::isnan(x)) {
      EXPECT_GT(got & 0x7fff, 0x7c00) << x;
      EXPECT_TRUE(got & 0x0200) << "quiet NaN";
    } else if (got != want && ++mismatches < 10) {
      ADD_FAILURE() << x << ": got " << std::hex << got << ", want " << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Half, F16RoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h)
    if ((h & 0x7fff) <= 0x7c00) {
      EXPECT_EQ(float_to_f16(f16_to_float(static_cast<uint16_t>(h))), h) << std::hex << h;
    }
}

__attribute__((target("f16c"))) uint16_t f16c_convert(float x) {
  return static_cast<uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}

TEST(Half, FloatToF16AgreesWithF16c) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "this CPU has no F16C";
  for (float x : probe_floats()) {
    if (std::isnan(x)) continue;
    ASSERT_EQ(float_to_f16(x), f16c_convert(x)) << x;
  }
}

// The bfloat16 nearest to x: the nearer of the two patterns around it, ties to even, in float64.
uint16_t nearest_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t down = bits & 0xffff0000u, up = down + 0x10000u;
  const double lo = std::bit_cast<float>(down);
  // `up` may step into infinity: the next value of the binade above, 2^128, as a double.
  const double hi = (up & 0x7f800000u) == 0x7f800000u
                        ? std::copysign(std::ldexp(1.0, 128), static_cast<double>(x))
                        : static_cast<double>(std::bit_cast<float>(up));
  const double dx = static_cast<double>(x);
  const double d_lo = std::fabs(dx - lo), d_hi = std::fabs(hi - dx);
  if (d_lo < d_hi) return static_cast<uint16_t>(down >> 16);
  if (d_hi < d_lo) return static_cast<uint16_t>(up >> 16);
  return static_cast<uint16_t>(((down >> 16) & 1u) ? up >> 16 : down >> 16);
}

TEST(Half, FloatToBf16RoundsToNearestEven) {
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4999) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(bits));
    const uint16_t got = float_to_bf16(x);
    if (std::isnan(x)) {
      ASSERT_TRUE(std::isnan(bf16_to_float(got))) << std::hex << bits;
    } else if (!std::isinf(x)) {
      ASSERT_EQ(got, nearest_bf16(x)) << std::hex << bits;
    } else {
      ASSERT_EQ(bf16_to_float(got), x);
    }
  }
  // Exact ties: 1 + 2^-8 lies between 1 and 1 + 2^-7 and goes to the even one, 1.
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f), float_to_bf16(1.0f));
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-7f + 0x1p-8f), float_to_bf16(1.0f + 0x1p-6f));
  EXPECT_EQ(bf16_to_float(float_to_bf16(0x1p-130f)), 0x1p-130f);  // a subnormal is kept
}

}  // namespace
}  // namespace qkv
