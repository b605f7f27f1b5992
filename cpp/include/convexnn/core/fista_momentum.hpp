// FISTA momentum (Beck & Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm", SIAM J. Imaging Sci.
// 2009) with gradient-based adaptive restart (O'Donoghue & Candes, "Adaptive Restart for Accelerated Gradient
// Schemes", Found. Comput. Math. 2015).
#pragma once

#include <cmath>

#include "convexnn/core/common.hpp"

namespace convexnn {

class FistaMomentum {
 public:
  void reset() { t_ = 1.0; }
  // The restart test: the step x_new - x opposes the momentum, <y - x_new, x_new - x> > 0 (accumulated in
  // double, in order).
  template <class T>
  static bool opposes(index_t len, const T* y, const T* x_new, const T* x) {
    double dir = 0.0;
    for (index_t j = 0; j < len; ++j)
      dir += (static_cast<double>(y[j]) - static_cast<double>(x_new[j])) *
             (static_cast<double>(x_new[j]) - static_cast<double>(x[j]));
    return dir > 0;
  }
  // The same test on two arrays at once (e.g. the exact solver's V and W): the terms of both at index j are
  // added before they are accumulated, in order.
  template <class T>
  static bool opposes_pair(index_t len, const T* y1, const T* x_new1, const T* x1, const T* y2, const T* x_new2,
                           const T* x2) {
    double dir = 0.0;
    for (index_t j = 0; j < len; ++j)
      dir += (static_cast<double>(y1[j]) - static_cast<double>(x_new1[j])) *
                 (static_cast<double>(x_new1[j]) - static_cast<double>(x1[j])) +
             (static_cast<double>(y2[j]) - static_cast<double>(x_new2[j])) *
                 (static_cast<double>(x_new2[j]) - static_cast<double>(x2[j]));
    return dir > 0;
  }
  // Advance t (after a restart if asked) and return the extrapolation weight (t_k - 1) / t_{k+1}.
  double advance(bool restart) {
    if (restart) t_ = 1.0;
    const double tn = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t_ * t_));
    const double mom = (t_ - 1.0) / tn;
    t_ = tn;
    return mom;
  }

 private:
  double t_ = 1.0;
};

}  // namespace convexnn
