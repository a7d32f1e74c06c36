// A vectorised exp(x) for float lanes, written once over the vector operations of avx2.hpp and
// portable.hpp. Measured error bound: see docs/kernels.md and tests/kernels/simd_exp_test.cpp.
#pragma once

namespace qkv::simd {

// exp(x) = 2^n · e^r with n = round(x·log2 e) and r = x - n·ln2 in [-ln2/2, ln2/2] (Cody-Waite:
// ln2 split in two parts so that n·ln2_hi is exact); e^r = 1 + r + r²·p(r), p of degree 5
// (the Cephes expf minimax coefficients). 2^n is applied as 2^n1 · 2^n2 with n1 = floor(n/2),
// so that results in the subnormal range stay correctly scaled rather than flushed to zero.
// x is clamped to [-110, 88.7]: exp(-110) rounds to 0 (and so does exp(-inf)); exp(88.7) < FLT_MAX.
template <typename V>
inline typename V::reg exp(typename V::reg x) {
  x = V::min(V::max(x, V::set1(-110.0f)), V::set1(88.7f));
  const typename V::reg n = V::round_nearest(V::mul(x, V::set1(1.44269504088896341f)));
  typename V::reg r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  typename V::reg p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
  const typename V::reg n1 = V::floor(V::mul(n, V::set1(0.5f)));
  return V::mul(V::mul(p, V::pow2(n1)), V::pow2(V::sub(n, n1)));
}

}  // namespace qkv::simd
