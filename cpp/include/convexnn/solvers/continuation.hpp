// Hinge continuation shared by the solvers: the hinge is solved through its Moreau envelope (the Huber hinge)
// with smoothing mu, decreased whenever the smoothed problem is solved to within `trigger` times the true gap.
// The two named presets keep each solver's schedule (and its rounding: one multiplies, the other divides).
#pragma once

#include <algorithm>

namespace convexnn {

struct HingeContinuation {
  double mu_start;  // initial smoothing
  double shrink;    // mu <- mu * shrink (divide = false) or mu / shrink (divide = true) ...
  bool divide;
  double trigger;  // ... when the smoothed gap <= trigger * the true gap
  double mu_min;   // smallest mu (0: none)

  bool should_shrink(double smoothed_gap, double true_gap) const { return smoothed_gap <= trigger * true_gap; }
  double next(double mu) const { return std::max(mu_min, divide ? mu / shrink : mu * shrink); }
};

// The gated solver's schedule: 1.0, x0.1, trigger 0.2, floor 1e-14.
inline constexpr HingeContinuation kGatedHingeContinuation{1.0, 0.1, false, 0.2, 1e-14};
// The exact solver's schedule: 0.5, /10, trigger 0.2, no floor.
inline constexpr HingeContinuation kExactHingeContinuation{0.5, 10.0, true, 0.2, 0.0};

}  // namespace convexnn
