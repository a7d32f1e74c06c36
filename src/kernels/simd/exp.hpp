// A vectorised exp(x) for float lanes, written once over the vector operations of avx2.hpp and
// portable.hpp. Measured error bound: see docs/kernels.md and tests/kernels/simd_exp_test.cpp.
#pragma once

namespace qkv::simd {

// exp(x) = 2^n · e^r with n = round(x·log2 e) and r = x - n·ln2 in [-ln2/2, ln2/2] (Cody-Waite:
// ln2 split in two parts so that n·ln2_hi is exact); e^r = 1 + r + r²·p(r), p of degree 5 (the
// Cephes expf minimax coefficients), evaluated as one Horner chain of degree 7 down to the
// constant 1 (one multiply-add fewer than adding 1 + r to r²·p(r) apart). n is rounded by
// adding 1.5·2^23 + 127, which leaves n + 127 in the low mantissa bits; shifting them into the
// exponent field gives 2^n. Domain x <= 88 (softmax arguments are <= 0). x < -87.68 (n = -127,
// where exp(x) < 2^-126.5) gives exactly 0, and so does -inf: weights below FLT_MIN are dropped,
// not flushed by the CPU.
template <typename V>
inline typename V::reg exp(typename V::reg x) {
  x = V::max(x, V::set1(-88.0f));
  const typename V::reg t = V::fmadd(x, V::set1(1.44269504088896341f), V::set1(12583039.0f));
  const typename V::reg n = V::sub(t, V::set1(12583039.0f));
  typename V::reg r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  typename V::reg p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(p, r, V::set1(1.0f));
  p = V::fmadd(p, r, V::set1(1.0f));
  return V::mul(p, V::low_bits_to_exponent(t));
}

}  // namespace qkv::simd
