// Finite-difference gradient checks for the nn layers' backward passes: central differences
// (f(x + h) − f(x − h)) / 2h of a scalar loss, entry by entry, against an analytic gradient.
#pragma once

#include <functional>

#include "qkv/tensor.hpp"

namespace qkv::testing {

// The largest |central difference − analytic| over every entry of x (or `samples` evenly spaced
// entries when x is larger), perturbing x in place and restoring it. `loss` recomputes the scalar
// loss (in double) from the current x.
double max_finite_difference_error(tensor& x, const tensor& analytic,
                                   const std::function<double()>& loss, float h = 1e-2f,
                                   int64_t samples = 64);

// L = Σ out ⊙ g in double: the loss whose gradient with respect to out is g.
double dot(const tensor& out, const tensor& g);

}  // namespace qkv::testing
