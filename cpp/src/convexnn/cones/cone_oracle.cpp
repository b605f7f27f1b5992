// Dual active-set (Goldfarb-Idnani, Hessian = I) projection onto the cone of a sign pattern, and the
// per-pattern dual-constraint oracle built on it. See cone_oracle.hpp for the math.
#include "convexnn/cones/cone_oracle.hpp"

#include <omp.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "convexnn/core/blas.hpp"

namespace convexnn {
namespace {

using Word = PatternSet::Word;

// std::bad_alloc that names the size that was asked for (pybind11 maps it to MemoryError with this text).
class AllocationFailure : public std::bad_alloc {
 public:
  explicit AllocationFailure(std::string msg) : msg_(std::move(msg)) {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

template <class V>
void checked_resize(std::vector<V>& v, index_t count, const char* what) {
  constexpr auto max_count = static_cast<index_t>(std::numeric_limits<std::size_t>::max() / sizeof(V) / 2);
  if (count < 0 || count > max_count) {
    std::ostringstream os;
    os << "cone oracle: " << what << " needs " << count << " elements of " << sizeof(V)
       << " bytes, which overflows the address space";
    throw std::length_error(os.str());
  }
  try {
    v.assign(static_cast<std::size_t>(count), V{});
  } catch (const std::bad_alloc&) {
    std::ostringstream os;
    os << "cone oracle: cannot allocate " << count * static_cast<index_t>(sizeof(V)) << " bytes for " << what;
    throw AllocationFailure(os.str());
  }
}

// X seen in float64 with strides BLAS accepts: the caller's memory when T = double and the layout allows,
// otherwise a row-major float64 copy (float data is widened so every constraint value is double-accurate).
struct Float64Rows {
  const double* data = nullptr;
  index_t n = 0, d = 0;
  index_t row_stride = 0, col_stride = 1;
  bool row_major = true;
  std::vector<double> storage;

  double operator()(index_t k, index_t j) const { return data[k * row_stride + j * col_stride]; }
  index_t ld() const { return row_major ? row_stride : col_stride; }

  // v (n) = X u (d)
  void times(const double* u, double* v) const {
    blas::gemv<double>(row_major ? blas::Layout::RowMajor : blas::Layout::ColMajor, blas::Op::NoTrans, n, d, 1.0, data,
                       ld(), u, 1, 0.0, v, 1);
  }
  // g (d) = X^T w (n)
  void transpose_times(const double* w, double* g) const {
    blas::gemv<double>(row_major ? blas::Layout::RowMajor : blas::Layout::ColMajor, blas::Op::Trans, n, d, 1.0, data,
                       ld(), w, 1, 0.0, g, 1);
  }
};

template <class T>
void view_as_float64(MatrixView<T> X, Float64Rows& out) {
  out.n = X.rows;
  out.d = X.cols;
  if constexpr (std::is_same_v<T, double>) {
    // BLAS needs a leading dimension >= the inner extent and >= 1.
    if (X.row_major() && X.row_stride >= 1) {
      out.data = X.data;
      out.row_stride = X.row_stride;
      out.col_stride = 1;
      out.row_major = true;
      return;
    }
    if (X.col_major() && X.col_stride >= 1) {
      out.data = X.data;
      out.row_stride = 1;
      out.col_stride = X.col_stride;
      out.row_major = false;
      return;
    }
  }
  checked_resize(out.storage, X.rows * X.cols, "the float64 copy of X");
  for (index_t k = 0; k < X.rows; ++k)
    for (index_t j = 0; j < X.cols; ++j) out.storage[k * X.cols + j] = static_cast<double>(X(k, j));
  out.data = out.storage.data();
  out.row_stride = X.cols;
  out.col_stride = 1;
  out.row_major = true;
}

void row_norms(const Float64Rows& X, std::vector<double>& norms) {
  checked_resize(norms, X.n, "the row norms of X");
  for (index_t k = 0; k < X.n; ++k) {
    double s = 0.0;
    for (index_t j = 0; j < X.d; ++j) {
      const double x = X(k, j);
      s += x * x;
    }
    norms[k] = std::sqrt(s);
  }
}

inline bool mask_bit(const Word* mask, index_t k) {
  return (mask[k / PatternSet::kWordBits] >> (k % PatternSet::kWordBits)) & 1U;
}

// Below this sine of the angle between a new constraint row and the span of the active rows, the row is
// treated as linearly dependent (no primal step; only a dual step that drops a constraint).
constexpr double kDependentSine = 1e-12;

// Screening defaults (docs/tuning.md): OFF (min_rows 0). Measured on the pooled CNN's 48492 patch rows (d = 10,
// 95 patterns): half the passes were screened, but the near sets averaged 17.5k rows (thousands of rows sit at
// margin ~0: active constraints and duplicate background patches) and the solve was no faster (8.9-10.8 vs
// 8.3 CPU s, same iterates). Near sets are n / 16 rows on top of the margin-0 rows when a caller turns it on.
constexpr index_t kDefaultScreenMinRows = 0;
constexpr index_t kDefaultNearRowsDivisor = 16;

struct ProjectionOutcome {
  bool below = false;  // stopped early: ||Pi_K(g)|| <= norm <= stop_below
  double norm = 0.0;
  double max_violation = 0.0;
  index_t iterations = 0;
  index_t passes = 0;           // full O(n d) passes over the constraints (one gemv each)
  index_t screened_passes = 0;  // passes over the near rows only (see Screening)
  bool screened = false;        // initial_only: the starting point's first pass can be a screened one
  bool converged = false;
  bool interrupted = false;  // the caller's interrupt stopped it (u and norm are not the projection)
};

// Safe screening of the constraint passes for repeated projections onto one cone (PatternConeProjector).
// A full pass at a point u_ref gives every row's normalized margin m_k = s_k x_k^T u_ref / ||x_k||; the
// `near` rows are those with m_k < radius. At any u with ||u - u_ref|| < radius every other row keeps
// s_k x_k^T u / ||x_k|| >= m_k - ||u - u_ref|| > 0 (Cauchy-Schwarz), i.e. holds, so a pass over the near rows
// alone finds exactly the violated constraints a full pass would find. A solver's consecutive projections
// move u little, so most passes then cost O(|near| d) instead of O(n d).
struct Screening {
  index_t min_rows = 0;   // screen only when n >= min_rows (0: never)
  index_t near_rows = 0;  // rows kept in a near set (the smallest margins)
};

// One solver per thread: the workspace of the dual active-set method for a fixed X.
class ConeProjector {
 public:
  ConeProjector(const Float64Rows& X, const double* norms) : X_(X), norms_(norms), n_(X.n), d_(X.d) {
    checked_resize(values_, n_, "the constraint values");
    checked_resize(is_active_, n_, "the active-set flags");
    checked_resize(in_working_, n_, "the working-set flags");
    checked_resize(J_, d_ * d_, "the active-set factor J");
    checked_resize(R_, d_ * d_, "the active-set factor R");
    dvec_.resize(d_);
    r_.resize(d_);
    lambda_.resize(d_);
    active_.resize(d_);
    a_pending_.resize(d_);
    work_.resize(d_);
    coef_.resize(d_);
  }

  // The active set and its orthogonal factorization (J, R) left by a projection: a warm start for the next
  // projection onto the SAME cone (e.g. the same block column at the next solver iteration), and the near
  // rows of the screening (empty unless screening is on).
  struct Factorization {
    std::vector<index_t> active;  // q constraint indices
    std::vector<double> J, R;     // d x d each (empty: none stored)
    std::vector<index_t> near;    // rows with margin < radius at u_ref (ascending)
    std::vector<double> u_ref;    // (d) the point of the full pass that built `near` (empty: none)
    double radius = 0.0;          // every row not in `near` has margin >= radius at u_ref
  };

  void set_screening(Screening s) { screening_ = s; }

  // u (d) = Pi_K(g) for the cone of `mask`. `state` (optional, same mask as the call that filled it) is
  // the warm start: its factorization is reloaded, the multipliers lambda = -R^{-1} J_1^T g of the new g are
  // computed and negative ones dropped, which gives a valid Goldfarb-Idnani state (u = Pi_null(A_S) g,
  // lambda_S >= 0); on return it holds the final factorization. A nearby g then costs about one O(n d) pass
  // instead of ~d add steps (with screening, one pass over the near rows).
  // `stop_below` >= 0: stop as soon as ||u|| <= stop_below. Every iterate's norm is an upper bound on
  // ||Pi_K(g)|| (see the header), so the answer "the projection has norm <= stop_below" is then exact; the
  // outcome says so with `below` (u is then not the projection). The exact solver's prox needs only that.
  // `first_values` (optional, n): X u0 for the starting point u0 of this call (the warm start's or g), computed
  // by the caller (e.g. one GEMM for many projections); it replaces the first pass's gemv. `initial_only`:
  // return right after computing u0 into u (state untouched; `below` says whether u0 already proves
  // ||Pi_K(g)|| <= stop_below, `screened` whether its first pass will be a screened one), so a caller can
  // batch the first passes of many projections.
  ProjectionOutcome project(const Word* mask, const double* g, double tol, index_t max_iter, double* u,
                            Factorization* state = nullptr, double stop_below = -1.0,
                            const double* first_values = nullptr, bool initial_only = false,
                            const std::function<bool()>* interrupt = nullptr) {
    ProjectionOutcome out;
    const index_t d = d_;
    const double gnorm = norm_of(g);
    if (gnorm == 0.0) {
      std::fill(u, u + d, 0.0);
      out.converged = true;
      return out;  // the stored state stays valid for the next g
    }
    threshold_ = tol * gnorm;  // on the row-normalized violation -a_k^T u / ||x_k||
    stop_below_ = stop_below;
    max_iter_ = max_iter;
    start(mask, g, state, u);
    iterations_ = 0;
    stalled_ = false;
    below_ = small_enough(u);
    const bool screen = state != nullptr && screening_.min_rows > 0 && n_ >= screening_.min_rows;
    if (initial_only) {
      out.screened = screen && covered(*state, u);
      for (index_t j = 0; j < q_; ++j) is_active_[active_[j]] = 0;
      q_ = 0;
      out.below = below_;
      out.norm = norm_of(u);
      return out;
    }
    // Working-set screening: a full O(n d) pass collects the 4d + 16 most violated constraints into a
    // working set W, and the Goldfarb-Idnani steps then pick their entering constraint from W only
    // (O(|W| d) per step) until W is satisfied; then the next full pass. The method accepts any violated
    // constraint as the entering one, so this changes only the order of the steps, not the result; the
    // final full pass finds no violation, which is the termination test over all n constraints.
    working_.clear();
    for (index_t j = 0; j < q_; ++j) {  // the reloaded active constraints start the working set
      working_.push_back(active_[j]);
      in_working_[active_[j]] = 1;
    }
    while (!below_) {
      // Polled once per pass (a pass is O(n d); a cold projection on many rows takes thousands of them).
      if (interrupt != nullptr && (*interrupt)()) {
        out.interrupted = true;
        break;
      }
      if (screen && first_values == nullptr && covered(*state, u)) {
        out.max_violation = near_pass(*state, u);
        ++out.screened_passes;
      } else {
        const double* values = first_values;
        first_values = nullptr;
        if (values == nullptr) {
          X_.times(u, values_.data());
          values = values_.data();
        }
        out.max_violation = full_pass(values, screen ? state : nullptr, u);
        ++out.passes;
      }
      if (candidates_.empty() || stalled_ || iterations_ >= max_iter_) {
        out.converged = candidates_.empty() && out.max_violation <= threshold_;
        break;
      }
      refresh_working_set();
      const index_t iterations_before = iterations_;
      steps_on_working_set(u);
      // The pass (gemv) and the per-row dots round differently: a violation right at the threshold can look
      // violated to one and not to the other. Without a step in between, the next pass would see the same
      // u, so stop (not converged) instead of cycling through such candidates.
      if (iterations_ == iterations_before) stalled_ = true;
    }
    for (const index_t k : working_) in_working_[k] = 0;
    working_.clear();
    out.below = below_;
    if (below_) out.converged = true;  // the question "norm <= stop_below?" is answered exactly
    if (state != nullptr) {
      state->active.assign(active_.begin(), active_.begin() + q_);
      state->J.assign(J_.begin(), J_.end());
      state->R.assign(R_.begin(), R_.end());
    }
    for (index_t j = 0; j < q_; ++j) is_active_[active_[j]] = 0;
    q_ = 0;
    out.norm = norm_of(u);
    out.iterations = iterations_;
    return out;
  }

 private:
  double norm_of(const double* v) const {
    double s = 0.0;
    for (index_t j = 0; j < d_; ++j) s += v[j] * v[j];
    return std::sqrt(s);
  }

  bool small_enough(const double* u) const { return stop_below_ >= 0.0 && norm_of(u) <= stop_below_; }

  // The starting point: the warm start's factorization (multipliers restored for this g) or u = g.
  void start(const Word* mask, const double* g, const Factorization* state, double* u) {
    const index_t d = d_;
    mask_ = mask;
    g_ = g;
    q_ = 0;
    pending_ = -1;
    lambda_pending_ = 0.0;
    if (state != nullptr && !state->active.empty() && static_cast<index_t>(state->J.size()) == d * d) {
      std::copy(state->J.begin(), state->J.end(), J_.begin());
      std::copy(state->R.begin(), state->R.end(), R_.begin());
      q_ = static_cast<index_t>(state->active.size());
      std::copy(state->active.begin(), state->active.end(), active_.begin());
      for (index_t j = 0; j < q_; ++j) is_active_[active_[j]] = 1;
      restore_multipliers();
      primal_from_factor(u);
    } else {
      std::fill(J_.begin(), J_.end(), 0.0);
      for (index_t j = 0; j < d; ++j) J_[j * d + j] = 1.0;
      std::copy(g, g + d, u);
    }
  }

  // Whether the near rows of `state` certify every other row at u: ||u - u_ref|| below the radius, with a
  // relative slack for the rounding of the margins (|error| <~ d eps ||x_k|| ||u||).
  bool covered(const Factorization& state, const double* u) const {
    if (state.u_ref.size() != static_cast<std::size_t>(d_) || state.radius <= 0.0) return false;
    double dist2 = 0.0, ref2 = 0.0;
    for (index_t j = 0; j < d_; ++j) {
      const double e = u[j] - state.u_ref[j];
      dist2 += e * e;
      ref2 += state.u_ref[j] * state.u_ref[j];
    }
    const double slack = 1e-10 * (std::sqrt(ref2) + norm_of(u));
    return std::sqrt(dist2) < state.radius - slack;
  }

  // A full pass: values = X u; the violated candidates and the max normalized violation. With `screen` (the
  // slot's state) it also rebuilds the near rows around this u.
  double full_pass(const double* values, Factorization* screen, const double* u) {
    double max_violation = 0.0;
    candidates_.clear();
    for (index_t k = 0; k < n_; ++k) {
      if (norms_[k] == 0.0) continue;  // 0 >= 0 always holds
      const double c = mask_bit(mask_, k) ? values[k] : -values[k];
      const double violation = -c / norms_[k];
      if (violation > max_violation) max_violation = violation;
      if (violation > threshold_ && !is_active_[k] && !in_working_[k]) candidates_.push_back({violation, k});
    }
    if (screen != nullptr) rebuild_near_rows(values, *screen, u);
    return max_violation;
  }

  // The near rows at u: the near_rows smallest margins (radius = the next margin up).
  void rebuild_near_rows(const double* values, Factorization& state, const double* u) {
    margins_.resize(static_cast<std::size_t>(n_));
    for (index_t k = 0; k < n_; ++k) {
      const double c = mask_bit(mask_, k) ? values[k] : -values[k];
      margins_[k] = norms_[k] == 0.0 ? std::numeric_limits<double>::infinity() : c / norms_[k];
    }
    // Rows at margin ~0 (the active constraints and their duplicates, e.g. the many identical background
    // patches of an image set) always stay near: the near_rows come on top of them, or the radius would be 0.
    const double floor = 1e-9 * norm_of(u);
    index_t tight = 0;
    for (index_t k = 0; k < n_; ++k) tight += margins_[k] <= floor;
    const index_t keep = std::min(n_ - 1, tight + std::max<index_t>(screening_.near_rows, 4 * d_ + 16));
    sorted_.assign(margins_.begin(), margins_.end());
    std::nth_element(sorted_.begin(), sorted_.begin() + keep, sorted_.end());
    state.radius = sorted_[static_cast<std::size_t>(keep)];
    state.near.clear();
    for (index_t k = 0; k < n_; ++k)
      if (margins_[k] < state.radius) state.near.push_back(k);
    state.u_ref.assign(u, u + d_);
    if (!(state.radius > 0.0) || !std::isfinite(state.radius)) state.u_ref.clear();  // nothing to gain / all rows
  }

  // A pass over the near rows only (valid when covered(): every other row holds with a positive margin).
  double near_pass(const Factorization& state, const double* u) {
    double max_violation = 0.0;
    candidates_.clear();
    for (const index_t k : state.near) {
      double dot = 0.0;
      for (index_t j = 0; j < d_; ++j) dot += X_(k, j) * u[j];
      const double c = mask_bit(mask_, k) ? dot : -dot;
      const double violation = -c / norms_[k];
      if (violation > max_violation) max_violation = violation;
      if (violation > threshold_ && !is_active_[k] && !in_working_[k]) candidates_.push_back({violation, k});
    }
    return max_violation;
  }

  // W keeps the active constraints and the 4d + 16 most violated candidates only: the others hold at this
  // point, and a later pass brings any of them back once violated again (keeps the O(|W| d) scan per step near
  // O(d^2)). The most violated first; ties by index, so the order (and the result) is deterministic.
  void refresh_working_set() {
    const auto more_violated = [](const Candidate& x, const Candidate& y) {
      return x.violation > y.violation || (x.violation == y.violation && x.k < y.k);
    };
    const auto batch = std::min<std::size_t>(candidates_.size(), static_cast<std::size_t>(4 * d_ + 16));
    std::partial_sort(candidates_.begin(), candidates_.begin() + batch, candidates_.end(), more_violated);
    std::size_t kept = 0;
    for (const index_t k : working_) {
      if (is_active_[k]) {
        working_[kept++] = k;
      } else {
        in_working_[k] = 0;
      }
    }
    working_.resize(kept);
    for (std::size_t c = 0; c < batch; ++c) {
      working_.push_back(candidates_[c].k);
      in_working_[candidates_[c].k] = 1;
    }
    pack_working_rows();
  }

  // Goldfarb-Idnani steps whose entering constraint is the most violated one of the working set.
  void steps_on_working_set(double* u) {
    const index_t d = d_;
    const auto rows = static_cast<index_t>(working_.size());
    while (!stalled_ && !below_ && iterations_ < max_iter_) {
      index_t entering = -1;
      double entering_violation = threshold_;
      // working_violation[w] = -b_w^T u with b_w = s_k x_k / ||x_k||, the packed rows of the working set.
      blas::gemv<double>(blas::Layout::RowMajor, blas::Op::NoTrans, rows, d, -1.0, working_rows_.data(), d, u, 1, 0.0,
                         working_violation_.data(), 1);
      for (index_t w = 0; w < rows; ++w) {
        const index_t k = working_[static_cast<std::size_t>(w)];
        if (is_active_[k]) continue;
        const double violation = working_violation_[static_cast<std::size_t>(w)];
        if (violation > entering_violation) {
          entering_violation = violation;
          entering = k;
        }
      }
      if (entering < 0) break;
      stalled_ = !add_constraint(entering, max_iter_, iterations_, u);
      below_ = small_enough(u);
    }
  }
  // Multipliers of the reloaded active set for the current g: R lambda = -J_1^T g (from u - g = A_S^T lambda
  // and J_1^T u = 0). While one is negative the most negative constraint is dropped (its factor updated),
  // so the state satisfies the Goldfarb-Idnani invariant lambda_S >= 0 before the usual steps resume.
  void restore_multipliers() {
    const index_t d = d_;
    for (;;) {
      // dvec[0..q) = -J_1^T g (J_ holds the columns of J as rows).
      if (q_ > 0)
        blas::gemv<double>(blas::Layout::RowMajor, blas::Op::NoTrans, q_, d, -1.0, J_.data(), d, g_, 1, 0.0,
                           dvec_.data(), 1);
      index_t most_negative = -1;
      double lowest = 0.0;
      for (index_t i = q_ - 1; i >= 0; --i) {
        double s = dvec_[i];
        for (index_t j = i + 1; j < q_; ++j) s -= R_[j * d + i] * lambda_[j];
        lambda_[i] = s / R_[i * d + i];
      }
      for (index_t i = 0; i < q_; ++i)
        if (lambda_[i] < lowest) {
          lowest = lambda_[i];
          most_negative = i;
        }
      if (most_negative < 0) return;
      drop_active(most_negative);
    }
  }

  // Goldfarb-Idnani steps that make constraint p active: partial steps drop blocking constraints, the full
  // step adds p. Returns false when no step is possible (numerically infeasible: should not happen for a
  // cone, since u = 0 is feasible) so the caller stops with converged = false.
  bool add_constraint(index_t p, index_t max_iter, index_t& iterations, double* u) {
    const index_t d = d_;
    const double sign = mask_bit(mask_, p) ? 1.0 : -1.0;
    double ap2 = 0.0;
    for (index_t j = 0; j < d; ++j) {
      a_pending_[j] = sign * X_(p, j);
      ap2 += a_pending_[j] * a_pending_[j];
    }
    pending_ = p;
    lambda_pending_ = 0.0;
    while (iterations < max_iter) {
      ++iterations;
      // dvec = J^T a_p; r = R^{-1} dvec[0..q) expresses a_p's component in the active span;
      // z = sum_{i >= q} dvec_i J_i is the rest (the primal step direction), ||z||^2 = z^T a_p.
      blas::gemv<double>(blas::Layout::RowMajor, blas::Op::NoTrans, d, d, 1.0, J_.data(), d, a_pending_.data(), 1, 0.0,
                         dvec_.data(), 1);
      for (index_t i = q_ - 1; i >= 0; --i) {
        double s = dvec_[i];
        for (index_t j = i + 1; j < q_; ++j) s -= R_[j * d + i] * r_[j];
        r_[i] = s / R_[i * d + i];
      }
      double z2 = 0.0;
      for (index_t i = q_; i < d; ++i) z2 += dvec_[i] * dvec_[i];
      const bool dependent = z2 <= kDependentSine * kDependentSine * ap2;

      // Dual step length: the first active multiplier that reaches 0.
      double t1 = std::numeric_limits<double>::infinity();
      index_t blocking = -1;
      for (index_t j = 0; j < q_; ++j) {
        if (r_[j] > 0.0) {
          const double ratio = lambda_[j] / r_[j];
          if (ratio < t1) {
            t1 = ratio;
            blocking = j;
          }
        }
      }
      // Primal step length: where constraint p becomes tight.
      double t2 = std::numeric_limits<double>::infinity();
      if (!dependent) {
        double cp = 0.0;
        for (index_t j = 0; j < d; ++j) cp += a_pending_[j] * u[j];
        t2 = std::max(0.0, -cp) / z2;
      }
      const double t = std::min(t1, t2);
      if (!std::isfinite(t)) return false;

      for (index_t j = 0; j < q_; ++j) lambda_[j] = std::max(0.0, lambda_[j] - t * r_[j]);
      lambda_pending_ += t;
      if (!dependent && t2 <= t1) {
        append_active(p);
        primal_from_factor(u);
        return true;
      }
      drop_active(blocking);
      primal_from_factor(u);
    }
    return true;  // iteration cap: the caller re-evaluates and reports converged = false
  }

  // Appends the pending constraint to the factorization N_A = J_1 R using dvec = J^T a_p: Givens
  // rotations on columns q..d-1 of J zero dvec[q+1..d), and dvec[0..q] becomes R's new column.
  void append_active(index_t p) {
    const index_t d = d_;
    for (index_t i = d - 1; i > q_; --i) {
      const double b = dvec_[i];
      if (b == 0.0) continue;
      const double a = dvec_[i - 1];
      const double h = std::hypot(a, b);
      const double c = a / h, s = b / h;
      dvec_[i - 1] = h;
      dvec_[i] = 0.0;
      double* J0 = J_.data() + (i - 1) * d;
      double* J1 = J_.data() + i * d;
      for (index_t j = 0; j < d; ++j) {
        const double x = J0[j], y = J1[j];
        J0[j] = c * x + s * y;
        J1[j] = -s * x + c * y;
      }
    }
    for (index_t i = 0; i <= q_; ++i) R_[q_ * d + i] = dvec_[i];
    active_[q_] = p;
    lambda_[q_] = lambda_pending_;
    is_active_[p] = 1;
    ++q_;
    pending_ = -1;
    lambda_pending_ = 0.0;
  }

  // Removes active constraint number l: its column leaves R, Givens rotations on rows l..q-1 restore the
  // triangle, and the same rotations on J's columns keep N_A = J_1 R.
  void drop_active(index_t l) {
    const index_t d = d_;
    is_active_[active_[l]] = 0;
    for (index_t j = l; j + 1 < q_; ++j) {
      active_[j] = active_[j + 1];
      lambda_[j] = lambda_[j + 1];
      std::copy(R_.begin() + (j + 1) * d, R_.begin() + (j + 1) * d + (j + 2), R_.begin() + j * d);
    }
    --q_;
    for (index_t i = l; i < q_; ++i) {
      const double a = R_[i * d + i], b = R_[i * d + i + 1];
      if (b == 0.0) continue;
      const double h = std::hypot(a, b);
      const double c = a / h, s = b / h;
      for (index_t col = i; col < q_; ++col) {
        const double x = R_[col * d + i], y = R_[col * d + i + 1];
        R_[col * d + i] = c * x + s * y;
        R_[col * d + i + 1] = -s * x + c * y;
      }
      R_[i * d + i + 1] = 0.0;
      double* J0 = J_.data() + i * d;
      double* J1 = J_.data() + (i + 1) * d;
      for (index_t j = 0; j < d; ++j) {
        const double x = J0[j], y = J1[j];
        J0[j] = c * x + s * y;
        J1[j] = -s * x + c * y;
      }
    }
  }

  // u = Pi_null(A_S) (g + lambda_pending a_pending), the primal iterate written through the orthogonal
  // factor: J's columns q..d-1 span the null space of the active rows. It equals g + A_S^T lambda_S +
  // lambda_pending a_pending (the active rows are tight at every iterate), but forming that sum directly
  // loses accuracy when the cone is thin: nearly opposite active rows need multipliers ~ 1 / (their
  // angle), and the sum then cancels to eps / angle. The orthogonal form stays accurate to eps.
  void primal_from_factor(double* u) {
    const index_t d = d_;
    std::copy(g_, g_ + d, work_.begin());
    if (pending_ >= 0 && lambda_pending_ != 0.0)
      for (index_t j = 0; j < d; ++j) work_[j] += lambda_pending_ * a_pending_[j];
    if (q_ >= d) {
      std::fill(u, u + d, 0.0);
      return;
    }
    // coef = J_2^T work, u = J_2 coef (J_2: the columns q..d-1 of J, stored as rows q..d-1 of J_).
    const double* J2 = J_.data() + q_ * d;
    blas::gemv<double>(blas::Layout::RowMajor, blas::Op::NoTrans, d - q_, d, 1.0, J2, d, work_.data(), 1, 0.0,
                       coef_.data(), 1);
    blas::gemv<double>(blas::Layout::RowMajor, blas::Op::Trans, d - q_, d, 1.0, J2, d, coef_.data(), 1, 0.0, u, 1);
  }

  // Packs the working-set rows b_k = s_k x_k / ||x_k|| (|W| x d, row-major) for the per-step scan, a small gemv
  // instead of |W| strided dot products.
  void pack_working_rows() {
    const index_t d = d_;
    working_rows_.resize(working_.size() * static_cast<std::size_t>(d));
    working_violation_.resize(working_.size());
    double* dst = working_rows_.data();
    for (const index_t k : working_) {
      const double scale = (mask_bit(mask_, k) ? 1.0 : -1.0) / norms_[k];
      for (index_t j = 0; j < d; ++j) dst[j] = scale * X_(k, j);
      dst += d;
    }
  }

  const Float64Rows& X_;
  const double* norms_;
  index_t n_, d_;
  std::vector<double> values_;
  struct Candidate {
    double violation;
    index_t k;
  };
  std::vector<unsigned char> is_active_, in_working_;
  std::vector<index_t> working_;
  std::vector<Candidate> candidates_;
  std::vector<double> J_;  // d x d orthogonal, column i at J_[i*d ..]; the first q columns span the active rows
  std::vector<double> R_;  // q x q upper triangular, column-major with leading dimension d
  std::vector<double> dvec_, r_, lambda_, a_pending_, work_, coef_;
  std::vector<double> working_rows_, working_violation_;  // packed working-set rows and their violations
  std::vector<index_t> active_;
  const Word* mask_ = nullptr;
  const double* g_ = nullptr;
  index_t q_ = 0;
  index_t pending_ = -1;
  double lambda_pending_ = 0.0;
  // Per-call settings and progress of project() (shared with its helpers).
  double threshold_ = 0.0, stop_below_ = -1.0;
  index_t max_iter_ = 0, iterations_ = 0;
  bool stalled_ = false, below_ = false;
  Screening screening_;
  std::vector<double> margins_, sorted_;  // rebuild_near_rows workspace (n each, allocated on first use)
};

void check_tol(double tol) {
  CONVEXNN_CHECK(std::isfinite(tol) && tol >= 0.0, "tol must be a finite number >= 0, got " << tol);
}

template <class T>
void check_X(MatrixView<T> X) {
  CONVEXNN_CHECK(X.data != nullptr || X.rows * X.cols == 0, "X has no data");
  CONVEXNN_CHECK(X.rows >= 1, "X must have at least one row (n >= 1), got n = " << X.rows);
  CONVEXNN_CHECK(X.cols >= 1, "X must have at least one column (d >= 1), got d = " << X.cols);
}

template <class T>
ConeProjection<T> to_result(const ProjectionOutcome& o, std::vector<double> u) {
  ConeProjection<T> res;
  res.u = std::move(u);
  res.norm = o.norm;
  res.max_violation = o.max_violation;
  res.iterations = o.iterations;
  res.converged = o.converged;
  return res;
}

}  // namespace

index_t default_cone_max_iter(index_t n, index_t d) { return std::min<index_t>(100 * (d + 1), n + 10 * d) + 1000; }

template <class T>
ConeProjection<T> project_onto_sign_cone(MatrixView<T> X, const PatternSet::Word* mask, const double* g, double tol,
                                         index_t max_iter) {
  check_X(X);
  check_tol(tol);
  CONVEXNN_CHECK(mask != nullptr, "mask must not be null");
  CONVEXNN_CHECK(g != nullptr, "g must not be null");
  for (index_t j = 0; j < X.cols; ++j)
    CONVEXNN_CHECK(std::isfinite(g[j]), "g must be finite, got g[" << j << "] = " << g[j]);
  if (max_iter <= 0) max_iter = default_cone_max_iter(X.rows, X.cols);
  Float64Rows rows;
  view_as_float64(X, rows);
  std::vector<double> norms;
  row_norms(rows, norms);
  ConeProjector projector(rows, norms.data());
  std::vector<double> u(X.cols);
  // The O(n d) passes are too small for threaded BLAS to pay off (its spin-up dominates).
  const blas::SingleThreadedScope single_threaded_blas;
  const ProjectionOutcome o = projector.project(mask, g, tol, max_iter, u.data());
  return to_result<T>(o, std::move(u));
}

template <class T>
ConeProjection<T> project_onto_pattern_cone(MatrixView<T> X, const PatternSet& pats, index_t i, const double* g,
                                            double tol, index_t max_iter) {
  CONVEXNN_CHECK(X.rows == pats.n_samples() && X.cols == pats.dim(),
                 "X has shape (" << X.rows << ", " << X.cols << ") but the patterns were built on (" << pats.n_samples()
                                 << ", " << pats.dim() << ")");
  CONVEXNN_CHECK(i >= 0 && i < pats.n_patterns(),
                 "pattern index i = " << i << " out of range [0, " << pats.n_patterns() << ")");
  return project_onto_sign_cone(X, pats.mask(i), g, tol, max_iter);
}

template <class T>
ConeOracleInfo dual_constraint_oracle(MatrixView<T> X, const PatternSet& pats, const T* r, BlockSubset subset,
                                      double tol, double* values_pos, double* values_neg, double* maximizers,
                                      index_t max_iter) {
  check_X(X);
  check_tol(tol);
  CONVEXNN_CHECK(X.rows == pats.n_samples() && X.cols == pats.dim(),
                 "X has shape (" << X.rows << ", " << X.cols << ") but the patterns were built on (" << pats.n_samples()
                                 << ", " << pats.dim() << ")");
  CONVEXNN_CHECK(r != nullptr, "r must not be null");
  const index_t n = X.rows, d = X.cols, P = pats.n_patterns();
  const index_t S = subset.count(P);
  CONVEXNN_CHECK(subset.all() || subset.index != nullptr || S == 0, "subset has a size but no indices");
  for (index_t s = 0; s < S; ++s) {
    const index_t i = subset.block(s);
    CONVEXNN_CHECK(i >= 0 && i < P, "subset[" << s << "] = " << i << " out of range [0, " << P << ")");
  }
  for (index_t k = 0; k < n; ++k)
    CONVEXNN_CHECK(std::isfinite(static_cast<double>(r[k])), "r must be finite, got r[" << k << "] = " << r[k]);
  CONVEXNN_CHECK(S == 0 || (values_pos != nullptr && values_neg != nullptr), "values_pos/values_neg must not be null");
  if (max_iter <= 0) max_iter = default_cone_max_iter(n, d);
  ConeOracleInfo info;
  if (S == 0) return info;

  Float64Rows rows;
  view_as_float64(X, rows);
  std::vector<double> norms;
  row_norms(rows, norms);
  std::vector<double> r64;
  checked_resize(r64, n, "the float64 copy of r");
  for (index_t k = 0; k < n; ++k) r64[k] = static_cast<double>(r[k]);

  // Every thread must reach the worksharing loop (or the others wait at its barrier forever), so
  // failures are recorded and the remaining work skipped instead of leaving the region early.
  std::exception_ptr error;
  const blas::SingleThreadedScope single_threaded_blas;
#pragma omp parallel
  {
    ConeOracleInfo local;
    std::unique_ptr<ConeProjector> projector;
    std::vector<double> masked_r, g, minus_g, u_pos, u_neg;
    bool ready = false;
    try {
      projector = std::make_unique<ConeProjector>(rows, norms.data());
      checked_resize(masked_r, n, "the masked residual");
      g.resize(d);
      minus_g.resize(d);
      u_pos.resize(d);
      u_neg.resize(d);
      ready = true;
    } catch (...) {
#pragma omp critical(convexnn_cone_oracle_error)
      if (!error) error = std::current_exception();
    }
#pragma omp for schedule(dynamic, 1)
    for (index_t s = 0; s < S; ++s) {
      if (!ready) continue;
      try {
        const Word* mask = pats.mask(subset.block(s));
        for (index_t k = 0; k < n; ++k) masked_r[k] = mask_bit(mask, k) ? r64[k] : 0.0;
        rows.transpose_times(masked_r.data(), g.data());  // g = X^T D_i r
        for (index_t j = 0; j < d; ++j) minus_g[j] = -g[j];
        const ProjectionOutcome pos = projector->project(mask, g.data(), tol, max_iter, u_pos.data());
        const ProjectionOutcome neg = projector->project(mask, minus_g.data(), tol, max_iter, u_neg.data());
        values_pos[s] = pos.norm;
        values_neg[s] = neg.norm;
        if (maximizers != nullptr) {
          const bool use_pos = pos.norm >= neg.norm;
          const double* u = use_pos ? u_pos.data() : u_neg.data();
          const double norm = use_pos ? pos.norm : neg.norm;
          double* out = maximizers + s * d;
          for (index_t j = 0; j < d; ++j) out[j] = norm > 0.0 ? u[j] / norm : 0.0;
        }
        double gnorm = 0.0;
        for (index_t j = 0; j < d; ++j) gnorm += g[j] * g[j];
        gnorm = std::sqrt(gnorm);
        for (const ProjectionOutcome* o : {&pos, &neg}) {
          local.total_iterations += o->iterations;
          local.max_iterations = std::max(local.max_iterations, o->iterations);
          if (gnorm > 0.0)
            local.max_relative_violation = std::max(local.max_relative_violation, o->max_violation / gnorm);
          if (!o->converged) ++local.n_unconverged;
        }
      } catch (...) {
        ready = false;
#pragma omp critical(convexnn_cone_oracle_error)
        if (!error) error = std::current_exception();
      }
    }
#pragma omp critical(convexnn_cone_oracle_info)
    {
      info.total_iterations += local.total_iterations;
      info.max_iterations = std::max(info.max_iterations, local.max_iterations);
      info.max_relative_violation = std::max(info.max_relative_violation, local.max_relative_violation);
      info.n_unconverged += local.n_unconverged;
    }
  }
  if (error) std::rethrow_exception(error);
  return info;
}

template <class T>
struct PatternConeProjector<T>::Impl {
  const PatternSet& pats;
  Float64Rows rows;
  std::vector<double> norms;
  std::vector<std::unique_ptr<ConeProjector>> workspaces;       // one per OpenMP thread
  std::vector<ConeProjector::Factorization> warm;               // one per slot (allocated on first use)
  std::vector<index_t> warm_pattern;                            // the pattern whose cone each slot's state is for
  std::vector<typename PatternConeProjector<T>::Stats> stats;   // one per OpenMP thread
  std::vector<std::vector<double>> batch_values, batch_points;  // project_batch buffers, one per thread
  index_t max_iter = 0;
  Screening screening;
  explicit Impl(const PatternSet& p) : pats(p) {}
};

template <class T>
PatternConeProjector<T>::PatternConeProjector(MatrixView<T> X, const PatternSet& pats, index_t n_slots)
    : impl_(std::make_unique<Impl>(pats)) {
  check_X(X);
  CONVEXNN_CHECK(X.rows == pats.n_samples() && X.cols == pats.dim(),
                 "X has shape (" << X.rows << ", " << X.cols << ") but the patterns were built on (" << pats.n_samples()
                                 << ", " << pats.dim() << ")");
  CONVEXNN_CHECK(n_slots >= 0, "n_slots must be >= 0, got " << n_slots);
  view_as_float64(X, impl_->rows);
  row_norms(impl_->rows, impl_->norms);
  const int threads = std::max(1, omp_get_max_threads());
  impl_->workspaces.resize(static_cast<std::size_t>(threads));
  for (auto& w : impl_->workspaces) w = std::make_unique<ConeProjector>(impl_->rows, impl_->norms.data());
  impl_->stats.resize(static_cast<std::size_t>(threads));
  impl_->batch_values.resize(static_cast<std::size_t>(threads));
  impl_->batch_points.resize(static_cast<std::size_t>(threads));
  impl_->warm.resize(static_cast<std::size_t>(n_slots));
  impl_->warm_pattern.assign(static_cast<std::size_t>(n_slots), -1);
  impl_->max_iter = default_cone_max_iter(X.rows, X.cols);
  set_screening(kDefaultScreenMinRows, 0);
}

template <class T>
void PatternConeProjector<T>::set_screening(index_t min_rows, index_t near_rows) {
  CONVEXNN_CHECK(min_rows >= 0, "min_rows must be >= 0, got " << min_rows);
  CONVEXNN_CHECK(near_rows >= 0, "near_rows must be >= 0, got " << near_rows);
  Screening s;
  s.min_rows = min_rows;
  s.near_rows = near_rows > 0 ? near_rows : impl_->rows.n / kDefaultNearRowsDivisor;
  impl_->screening = s;
  for (auto& w : impl_->workspaces) w->set_screening(s);
  for (auto& f : impl_->warm) {  // near sets of another size: rebuilt at the next full pass
    f.near.clear();
    f.u_ref.clear();
  }
}

template <class T>
PatternConeProjector<T>::~PatternConeProjector() = default;

template <class T>
index_t PatternConeProjector<T>::n_slots() const {
  return static_cast<index_t>(impl_->warm.size());
}

template <class T>
void PatternConeProjector<T>::forget(index_t slot) {
  CONVEXNN_CHECK(slot >= 0 && slot < n_slots(), "slot " << slot << " out of range [0, " << n_slots() << ")");
  impl_->warm[static_cast<std::size_t>(slot)] = ConeProjector::Factorization{};
  impl_->warm_pattern[static_cast<std::size_t>(slot)] = -1;
}

template <class T>
void PatternConeProjector<T>::project_batch(index_t count, const index_t* slots, const index_t* patterns,
                                            const double* G, double tol, double* U, double* norms,
                                            const double* stop_below, const std::function<bool()>* interrupt) {
  check_tol(tol);
  if (count <= 0) return;
  const index_t d = impl_->rows.d, n = impl_->rows.n;
  const auto thread = static_cast<std::size_t>(omp_get_thread_num());
  CONVEXNN_CHECK(thread < impl_->workspaces.size(),
                 "PatternConeProjector used from thread " << thread << " but built for " << impl_->workspaces.size());
  ConeProjector& ws = *impl_->workspaces[thread];
  const auto warm_state = [&](index_t s) -> ConeProjector::Factorization& {
    const index_t slot = slots[s], pattern = patterns[s];
    CONVEXNN_CHECK(slot >= 0 && slot < n_slots(), "slot " << slot << " out of range [0, " << n_slots() << ")");
    CONVEXNN_CHECK(pattern >= 0 && pattern < impl_->pats.n_patterns(),
                   "pattern " << pattern << " out of range [0, " << impl_->pats.n_patterns() << ")");
    auto& warm = impl_->warm[static_cast<std::size_t>(slot)];
    if (impl_->warm_pattern[static_cast<std::size_t>(slot)] != pattern) {
      warm = ConeProjector::Factorization{};
      impl_->warm_pattern[static_cast<std::size_t>(slot)] = pattern;
    }
    return warm;
  };
  // 1. Starting points u0 (from the warm starts) of the projections that will need a pass.
  std::vector<double>& points = impl_->batch_points[thread];
  std::vector<index_t> needs;
  points.resize(static_cast<std::size_t>(count * d));
  for (index_t s = 0; s < count; ++s) {
    const double below = stop_below != nullptr ? stop_below[s] : -1.0;
    const ProjectionOutcome start = ws.project(impl_->pats.mask(patterns[s]), G + s * d, tol, impl_->max_iter,
                                               points.data() + needs.size() * d, &warm_state(s), below, nullptr, true);
    if (!start.below && start.norm > 0.0 && !start.screened) needs.push_back(s);
  }
  // 2. Their first passes in one product: values (m x n) = U0 (m x d) X^T.
  const auto m = static_cast<index_t>(needs.size());
  std::vector<double>& values = impl_->batch_values[thread];
  checked_resize(values, m * n, "the batched constraint values");
  const Float64Rows& X = impl_->rows;
  if (m > 0)
    blas::gemm<double>(blas::Layout::RowMajor, blas::Op::NoTrans, X.row_major ? blas::Op::Trans : blas::Op::NoTrans, m,
                       n, d, 1.0, points.data(), d, X.data, X.ld(), 0.0, values.data(), n);
  // 3. The projections, each starting from its precomputed pass.
  auto& counters = impl_->stats[thread];
  std::size_t next = 0;
  bool interrupted = false;
  for (index_t s = 0; s < count; ++s) {
    const double below = stop_below != nullptr ? stop_below[s] : -1.0;
    const double* first = nullptr;
    if (next < needs.size() && needs[next] == s) first = values.data() + static_cast<index_t>(next++) * n;
    if (interrupted) {
      norms[s] = 0.0;
      continue;
    }
    const ProjectionOutcome out = ws.project(impl_->pats.mask(patterns[s]), G + s * d, tol, impl_->max_iter, U + s * d,
                                             &warm_state(s), below, first, false, interrupt);
    interrupted = out.interrupted;
    norms[s] = out.norm;
    counters.projections += out.passes + out.screened_passes > 0 ? 1 : 0;
    counters.passes += out.passes;
    counters.screened_passes += out.screened_passes;
    counters.steps += out.iterations;
  }
}

template <class T>
void PatternConeProjector<T>::copy_warm_start(index_t from, index_t to) {
  CONVEXNN_CHECK(from >= 0 && from < n_slots(), "slot " << from << " out of range [0, " << n_slots() << ")");
  CONVEXNN_CHECK(to >= 0 && to < n_slots(), "slot " << to << " out of range [0, " << n_slots() << ")");
  const auto f = static_cast<std::size_t>(from), t = static_cast<std::size_t>(to);
  if (from == to || impl_->warm_pattern[f] < 0 || (impl_->warm[f].active.empty() && impl_->warm[f].u_ref.empty()))
    return;
  impl_->warm[t] = impl_->warm[f];
  impl_->warm_pattern[t] = impl_->warm_pattern[f];
}

template <class T>
double PatternConeProjector<T>::project(index_t slot, index_t pattern, const double* g, double tol, double* u,
                                        bool* converged, index_t* iterations, double stop_below,
                                        const std::function<bool()>* interrupt) {
  CONVEXNN_CHECK(slot >= 0 && slot < n_slots(), "slot " << slot << " out of range [0, " << n_slots() << ")");
  CONVEXNN_CHECK(pattern >= 0 && pattern < impl_->pats.n_patterns(),
                 "pattern " << pattern << " out of range [0, " << impl_->pats.n_patterns() << ")");
  check_tol(tol);
  const auto thread = static_cast<std::size_t>(omp_get_thread_num());
  CONVEXNN_CHECK(thread < impl_->workspaces.size(),
                 "PatternConeProjector used from thread " << thread << " but built for " << impl_->workspaces.size());
  auto& warm = impl_->warm[static_cast<std::size_t>(slot)];
  if (impl_->warm_pattern[static_cast<std::size_t>(slot)] != pattern) {
    warm = ConeProjector::Factorization{};  // a factorization is only valid for the cone it was built on
    impl_->warm_pattern[static_cast<std::size_t>(slot)] = pattern;
  }
  const ProjectionOutcome out =
      impl_->workspaces[thread]->project(impl_->pats.mask(pattern), g, tol, impl_->max_iter, u, &warm, stop_below,
                                         nullptr, false, interrupt);
  if (converged != nullptr) *converged = out.converged;
  if (iterations != nullptr) *iterations = out.iterations;
  auto& counters = impl_->stats[thread];
  counters.projections += out.passes + out.screened_passes > 0 ? 1 : 0;
  counters.passes += out.passes;
  counters.screened_passes += out.screened_passes;
  counters.steps += out.iterations;
  return out.norm;
}

template <class T>
void PatternConeProjector<T>::multiply_X(const double* B, index_t k, double* out) const {
  const Float64Rows& X = impl_->rows;
  if (k <= 0) return;
  if (X.row_major)
    blas::gemm<double>(blas::Layout::RowMajor, blas::Op::NoTrans, blas::Op::NoTrans, X.n, k, X.d, 1.0, X.data, X.ld(),
                       B, k, 0.0, out, k);
  else  // X column-major = X^T row-major: out = (X^T)^T B
    blas::gemm<double>(blas::Layout::RowMajor, blas::Op::Trans, blas::Op::NoTrans, X.n, k, X.d, 1.0, X.data, X.ld(), B,
                       k, 0.0, out, k);
}

template <class T>
typename PatternConeProjector<T>::Stats PatternConeProjector<T>::stats() const {
  Stats total;
  for (const auto& s : impl_->stats) {
    total.projections += s.projections;
    total.passes += s.passes;
    total.screened_passes += s.screened_passes;
    total.steps += s.steps;
  }
  return total;
}

template <class T>
void PatternConeProjector<T>::reset_stats() {
  for (auto& s : impl_->stats) s = Stats{};
}

template class PatternConeProjector<float>;
template class PatternConeProjector<double>;

#define CONVEXNN_INSTANTIATE_CONE_ORACLE(T)                                                                           \
  template ConeProjection<T> project_onto_sign_cone<T>(MatrixView<T>, const PatternSet::Word*, const double*, double, \
                                                       index_t);                                                      \
  template ConeProjection<T> project_onto_pattern_cone<T>(MatrixView<T>, const PatternSet&, index_t, const double*,   \
                                                          double, index_t);                                           \
  template ConeOracleInfo dual_constraint_oracle<T>(MatrixView<T>, const PatternSet&, const T*, BlockSubset, double,  \
                                                    double*, double*, double*, index_t);

CONVEXNN_INSTANTIATE_CONE_ORACLE(float)
CONVEXNN_INSTANTIATE_CONE_ORACLE(double)

}  // namespace convexnn
