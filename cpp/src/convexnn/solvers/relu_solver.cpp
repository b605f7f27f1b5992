// Exact ReLU program by FISTA with the exact cone-norm prox; see relu_solver.hpp for the method and the
// certificate.
#include "convexnn/solvers/relu_solver.hpp"
#include "convexnn/solvers/continuation.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "convexnn/core/blas.hpp"
#include "convexnn/cones/cone_oracle.hpp"

namespace convexnn {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Wall time per solver phase, printed to stderr at the end of solve() when CONVEXNN_RELU_PROFILE is set
// (a development aid: which part of an iteration to make faster).
struct PhaseTimes {
  enum Phase { kSetup, kGradient, kProx, kForward, kCertifyProducts, kCertifyOracle, kNewton, kOther, kCount };
  double seconds[kCount] = {};
  Clock::time_point mark = Clock::now();
  void lap(Phase p) {
    const auto now = Clock::now();
    seconds[p] += std::chrono::duration<double>(now - mark).count();
    mark = now;
  }
};

bool profiling_enabled() {
  static const bool enabled = std::getenv("CONVEXNN_RELU_PROFILE") != nullptr;
  return enabled;
}

// FISTA step-size control: multiplicative backtracking and the optimistic growth after a step that
// needed none (as in scnn's R-FISTA / Lassplore), so the step tracks the local curvature.
constexpr double kBacktrack = 0.5;
constexpr double kStepGrowth = 1.25;
// Sufficient-decrease slack: relative roundoff tolerated in the quadratic upper-bound test.
constexpr double kDecreaseSlack = 1e-12;
// Smallest step tried, relative to 1/L (L the initial Lipschitz estimate): below it backtracking stops.
constexpr double kMinStepRatio = 1e-16;
// Hinge smoothing continuation (continuation.hpp): the exact solver's preset.
constexpr const HingeContinuation& kHinge = kExactHingeContinuation;
// Ray Newton: largest number of nonzero columns (the reduced Hessian is eigen-decomposed: O(k^3)), largest
// n * c * k of the reduced design (two such float64 matrices are stored), Newton steps per attempt.
constexpr index_t kNewtonMaxDim = 400;
constexpr index_t kNewtonMaxEntries = index_t{1} << 23;
constexpr int kNewtonSteps = 20;
// At least one check in this many runs the full certificate (so a dual bound exists even while screening says a
// single certificate cannot reach tol: the ray-Newton acceptance rule and the history need it).
constexpr index_t kFullCertificateEvery = 4;
// Block columns per batched prox call (one GEMM for the first constraint pass of their projections).
constexpr index_t kProxChunk = 16;
// Power iterations for the initial Lipschitz estimate of the operator (the step is corrected by backtracking).
constexpr int kPowerIterations = 15;

// ||B_i[:, k]|| of block column col = i * c + k of a (P x d x c) C-contiguous array.
double column_norm(const std::vector<double>& B, index_t col, index_t d, index_t c) {
  const double* src = B.data() + (col / c) * d * c + col % c;
  double s = 0.0;
  for (index_t j = 0; j < d; ++j) s += src[j * c] * src[j * c];
  return std::sqrt(s);
}

// Copies block column col = i * c + k of a (P x d x c) array into g (d); returns its squared norm.
double gather_column(const std::vector<double>& B, index_t col, index_t d, index_t c, std::vector<double>& g) {
  const double* src = B.data() + (col / c) * d * c + col % c;
  double s = 0.0;
  for (index_t j = 0; j < d; ++j) {
    g[static_cast<std::size_t>(j)] = src[j * c];
    s += src[j * c] * src[j * c];
  }
  return s;
}

// sum of the column norms of V and W: the group penalty of the exact program (without beta).
double penalty_of(const std::vector<double>& V, const std::vector<double>& W, index_t n_cols, index_t d, index_t c) {
  double total = 0.0;
  for (index_t col = 0; col < n_cols; ++col) total += column_norm(V, col, d, c) + column_norm(W, col, d, c);
  return total;
}

}  // namespace

template <class T>
struct ReluSolver<T>::Point {
  std::vector<double> V, W;  // (P x d x c)
  std::vector<T> z;          // prediction A(V - W), (n x c)
  double loss = 0.0;         // L(z) (smoothed for the hinge while mu > 0)
};

template <class T>
ReluSolver<T>::ReluSolver(const BlockOperator<T>& op, MatrixView<T> X, const PatternSet& patterns, const double* y,
                          index_t c, Loss loss, const BlockOperator<double>* certify_op)
    : op_(op),
      cert_op_(certify_op),
      X_(X),
      pats_(patterns),
      n_(op.n_samples()),
      d_(op.block_dim()),
      p_(op.n_blocks()),
      c_(c),
      loss_(loss),
      masked_outputs_(X.rows == op.n_samples()) {
  CONVEXNN_CHECK(c >= 1, "c (number of outputs) must be >= 1, got " << c);
  CONVEXNN_CHECK(X.cols == d_, "X has " << X.cols << " columns but the operator's blocks have dimension " << d_);
  CONVEXNN_CHECK(patterns.n_samples() == X.rows && patterns.dim() == d_ && patterns.n_patterns() == p_,
                 "patterns (" << patterns.n_samples() << " rows x " << patterns.n_patterns()
                              << " patterns) do not match the constraint rows X (" << X.rows
                              << " rows) and the operator's " << p_ << " blocks");
  CONVEXNN_CHECK(y != nullptr, "y must not be null");
  CONVEXNN_CHECK(certify_op == nullptr ||
                     (certify_op->n_samples() == n_ && certify_op->block_dim() == d_ && certify_op->n_blocks() == p_),
                 "certify_op must have the blocks of op (" << n_ << " x " << d_ << " x " << p_ << ")");
  validate_targets(loss, y, n_, c_);
  y_.assign(y, y + n_ * c_);
  // ||X||_2 from the d x d Gram matrix (accumulated in double; d is small).
  std::vector<double> gram(static_cast<std::size_t>(d_ * d_), 0.0), eig(static_cast<std::size_t>(d_));
  for (index_t k = 0; k < X_.rows; ++k)
    for (index_t a = 0; a < d_; ++a) {
      const double xa = static_cast<double>(X_(k, a));
      if (xa == 0.0) continue;
      for (index_t b = a; b < d_; ++b) gram[a * d_ + b] += xa * static_cast<double>(X_(k, b));
    }
  for (index_t a = 0; a < d_; ++a)
    for (index_t b = 0; b < a; ++b) gram[a * d_ + b] = gram[b * d_ + a];
  CONVEXNN_CHECK(blas::syev<double>(d_, gram.data(), eig.data()) == 0, "eigen-decomposition of X^T X failed");
  x_norm_ = std::sqrt(std::max(0.0, eig[static_cast<std::size_t>(d_ - 1)]));
  projector_ = std::make_unique<PatternConeProjector<T>>(X_, pats_, 4 * p_ * c_);
}

// out = prox_{thresh (||.|| + indicator_K)} of every column of x_in; returns sum of the column norms of out.
template <class T>
double ReluSolver<T>::prox_columns(const std::vector<double>& x_in, double thresh, double cone_tol, SlotKind kind,
                                   std::vector<double>& out) const {
  const index_t n_cols = p_ * c_;
  out.assign(x_in.size(), 0.0);
  std::vector<double> col_norm(static_cast<std::size_t>(n_cols), 0.0);
  // Columns in chunks of kProxChunk: the first pass over the constraints of all projections of a chunk is one
  // GEMM (PatternConeProjector::project_batch); a warm-started projection usually needs only that pass.
  const index_t n_chunks = (n_cols + kProxChunk - 1) / kProxChunk;
  {
    const blas::SingleThreadedScope serial_blas;
#pragma omp parallel
    {
      std::vector<double> g(static_cast<std::size_t>(d_)), G(static_cast<std::size_t>(kProxChunk * d_)), U(G.size()),
          norms(static_cast<std::size_t>(kProxChunk)), below(norms.size());
      std::vector<index_t> cols, slots, patterns;
#pragma omp for schedule(dynamic, 1)
      for (index_t chunk = 0; chunk < n_chunks; ++chunk) {
        cols.clear();
        slots.clear();
        patterns.clear();
        for (index_t col = chunk * kProxChunk; col < std::min(n_cols, (chunk + 1) * kProxChunk); ++col) {
          const double nrm = gather_column(x_in, col, d_, c_, g);
          // ||Pi_K(x)|| <= ||x||: a column that shrinks to zero anyway needs no projection.
          if (std::sqrt(nrm) <= thresh || nrm == 0.0) continue;
          std::copy(g.begin(), g.end(), G.begin() + static_cast<std::ptrdiff_t>(cols.size() * d_));
          // Only "is ||Pi_K(x)|| <= thresh" matters for a column that ends at zero: stop once that is proven.
          below[cols.size()] = thresh;
          cols.push_back(col);
          slots.push_back(kind * n_cols + col);
          patterns.push_back(col / c_);
        }
        const auto count = static_cast<index_t>(cols.size());
        projector_->project_batch(count, slots.data(), patterns.data(), G.data(), cone_tol, U.data(), norms.data(),
                                  below.data());
        for (index_t s = 0; s < count; ++s) {
          const double pnorm = norms[static_cast<std::size_t>(s)];
          if (pnorm <= thresh) continue;
          const index_t col = cols[static_cast<std::size_t>(s)], i = col / c_, k = col % c_;
          const double scale = 1.0 - thresh / pnorm;
          double* dst = out.data() + i * d_ * c_ + k;
          for (index_t j = 0; j < d_; ++j) dst[j * c_] = scale * U[static_cast<std::size_t>(s * d_ + j)];
          col_norm[static_cast<std::size_t>(col)] = scale * pnorm;
        }
      }
    }
  }
  double total = 0.0;
  for (double v : col_norm) total += v;
  return total;
}

// An upper bound on max over patterns i, columns k and both signs of ||Pi_{K_i}(+-G_i[:, k])||, exact when the
// maximum exceeds `floor`: only "is it <= floor" matters for a projection whose value ends below floor (the
// certificate scales the dual point by min(1, beta / max), so floor = beta), and every active-set iterate's norm
// is an upper bound on the projection's (cone_oracle.hpp), so such projections stop as soon as that is proven,
// and columns with ||G_i[:, k]|| <= floor are not projected at all (||Pi_K(g)|| <= ||g||).
template <class T>
double ReluSolver<T>::dual_constraint_max(const std::vector<double>& G, double cone_tol, double floor) const {
  const index_t n_cols = p_ * c_;
  std::vector<double> worst(static_cast<std::size_t>(n_cols), 0.0);
  {
    const blas::SingleThreadedScope serial_blas;
#pragma omp parallel
    {
      std::vector<double> g(static_cast<std::size_t>(d_)), u(static_cast<std::size_t>(d_));
#pragma omp for schedule(dynamic, 1)
      for (index_t col = 0; col < n_cols; ++col) {
        const index_t i = col / c_;
        const double gnorm = std::sqrt(gather_column(G, col, d_, c_, g));
        if (gnorm <= floor) {
          worst[static_cast<std::size_t>(col)] = gnorm;
          continue;
        }
        // The prox projected y.W - (-t G) and y.V - t G onto the same cone: near a solution (and for zero
        // columns, exactly up to the factor t) the same directions, so their active sets start these projections.
        projector_->copy_warm_start(kSlotW * n_cols + col, kSlotDualPlus * n_cols + col);
        projector_->copy_warm_start(kSlotV * n_cols + col, kSlotDualMinus * n_cols + col);
        double w =
            projector_->project(kSlotDualPlus * n_cols + col, i, g.data(), cone_tol, u.data(), nullptr, nullptr, floor);
        for (index_t j = 0; j < d_; ++j) g[j] = -g[j];
        w = std::max(w, projector_->project(kSlotDualMinus * n_cols + col, i, g.data(), cone_tol, u.data(), nullptr,
                                            nullptr, floor));
        worst[static_cast<std::size_t>(col)] = w;
      }
    }
  }
  return worst.empty() ? 0.0 : *std::max_element(worst.begin(), worst.end());
}

// Reduced design E (nc x k, column-major) of ray Newton: column a = +-A_i (v_a / ||v_a||) in output column k_out
// for the nonzero columns `entries` of x (+ for V, - for W).
template <class T>
std::vector<double> ReluSolver<T>::ray_design(const std::vector<RayColumn>& entries, const Point& x) const {
  using Entry = RayColumn;
  const index_t d = d_, nc = n_ * c_, k = static_cast<index_t>(entries.size());
  std::vector<double> dirs(static_cast<std::size_t>(d * k));
  for (index_t a = 0; a < k; ++a) {
    const Entry& e = entries[static_cast<std::size_t>(a)];
    const std::vector<double>& B = e.kind == kSlotV ? x.V : x.W;
    const double* src = B.data() + (e.col / c_) * d * c_ + e.col % c_;
    for (index_t j = 0; j < d; ++j) dirs[j * k + a] = src[j * c_] / e.norm;
  }
  std::vector<double> E(static_cast<std::size_t>(nc * k), 0.0);
  if (masked_outputs_) {
    // A_i = D_i X: the masked rows of X times the directions, in double.
    std::vector<double> XU(static_cast<std::size_t>(n_ * k));
    projector_->multiply_X(dirs.data(), k, XU.data());
    for (index_t a = 0; a < k; ++a) {
      const Entry& e = entries[static_cast<std::size_t>(a)];
      const index_t i = e.col / c_, kout = e.col % c_;
      const double sign = e.kind == kSlotV ? 1.0 : -1.0;
      const PatternSet::Word* mask = pats_.mask(i);
      double* Ea = E.data() + a * nc;
      for (index_t r = 0; r < n_; ++r)
        if ((mask[r / PatternSet::kWordBits] >> (r % PatternSet::kWordBits)) & 1U)
          Ea[r * c_ + kout] = sign * XU[r * k + a];
    }
  } else {
    // Outputs other than the constraint rows (e.g. pooled patches): column a = +-A_i (u_a in output column
    // kout) through the operator, one single-block forward product per column.
    std::vector<T> Ub(static_cast<std::size_t>(d * c_)), zb(static_cast<std::size_t>(nc));
    for (index_t a = 0; a < k; ++a) {
      const Entry& e = entries[static_cast<std::size_t>(a)];
      const index_t i = e.col / c_, kout = e.col % c_;
      const double sign = e.kind == kSlotV ? 1.0 : -1.0;
      std::fill(Ub.begin(), Ub.end(), T(0));
      for (index_t j = 0; j < d; ++j) Ub[static_cast<std::size_t>(j * c_ + kout)] = static_cast<T>(dirs[j * k + a]);
      op_.forward(Ub.data(), c_, zb.data(), BlockSubset{&i, 1});
      double* Ea = E.data() + a * nc;
      for (index_t r = 0; r < nc; ++r) Ea[r] = sign * static_cast<double>(zb[static_cast<std::size_t>(r)]);
    }
  }

  return E;
}

template <class T>
bool ReluSolver<T>::ray_newton(Point& x, double& penalty, double beta, double mu) const {
  if (loss_ == Loss::hinge) return false;  // no Hessian on the kinks
  const index_t n_cols = p_ * c_, d = d_, nc = n_ * c_;
  const blas::SingleThreadedScope serial_blas;  // small products: threads cost more than they give
  using Entry = RayColumn;
  std::vector<Entry> entries;
  for (const SlotKind kind : {kSlotV, kSlotW}) {
    const std::vector<double>& B = kind == kSlotV ? x.V : x.W;
    for (index_t col = 0; col < n_cols; ++col) {
      const double cnorm = column_norm(B, col, d, c_);
      if (cnorm > 0.0) entries.push_back({kind, col, cnorm});
    }
  }
  const auto k = static_cast<index_t>(entries.size());
  if (k == 0 || k > kNewtonMaxDim || nc * k > kNewtonMaxEntries) return false;

  const std::vector<double> E = ray_design(entries, x);

  // F(s) = L(E s) + beta * sum s over s >= 0; the gradient of L into `g` when given.
  const auto reduced_objective = [&](const std::vector<double>& sc, std::vector<double>& zz, std::vector<double>* g) {
    blas::gemv<double>(blas::Layout::ColMajor, blas::Op::NoTrans, nc, k, 1.0, E.data(), nc, sc.data(), 1, 0.0,
                       zz.data(), 1);
    const double value = g != nullptr ? loss_value_grad(loss_, zz.data(), y_.data(), n_, c_, g->data(), mu)
                                      : loss_value(loss_, zz.data(), y_.data(), n_, c_, mu);
    double total = 0.0;
    for (double v : sc) total += v;
    return value + beta * total;
  };

  const bool quadratic = loss_ == Loss::squared;  // constant loss Hessian (the identity)
  std::vector<double> scale(static_cast<std::size_t>(k)), z(static_cast<std::size_t>(nc)), zt(z.size()), grad(z.size()),
      gs(scale.size()), dir(scale.size()), trial(scale.size()), eig(scale.size()),
      Hloss(static_cast<std::size_t>(k * k)), H(Hloss.size()), HE;
  for (index_t a = 0; a < k; ++a) scale[a] = entries[static_cast<std::size_t>(a)].norm;
  double F = reduced_objective(scale, z, &grad);
  const double F_start = F;
  bool have_hessian = false;
  for (int step = 0; step < kNewtonSteps; ++step) {
    blas::gemv<double>(blas::Layout::ColMajor, blas::Op::Trans, nc, k, 1.0, E.data(), nc, grad.data(), 1, 0.0,
                       gs.data(), 1);
    for (double& g : gs) g += beta;
    if (!quadratic || !have_hessian) {
      // E^T Hess E; the squared loss's Hessian is the identity (and constant: formed once).
      const double* HEp = E.data();
      if (!quadratic) {
        HE.resize(E.size());
        const LossCurvature curvature(loss_, z.data(), y_.data(), n_, c_, mu);
        for (index_t a = 0; a < k; ++a) curvature.apply(E.data() + a * nc, HE.data() + a * nc);
        HEp = HE.data();
      }
      blas::gemm<double>(blas::Layout::ColMajor, blas::Op::Trans, blas::Op::NoTrans, k, k, nc, 1.0, E.data(), nc, HEp,
                         nc, 0.0, Hloss.data(), k);
      have_hessian = true;
    }
    // Newton on the free scales (s > 0); scales at 0 stay there (FISTA may bring their columns back).
    H = Hloss;
    for (index_t a = 0; a < k; ++a) {
      if (scale[a] > 0.0) continue;
      gs[a] = 0.0;
      for (index_t b = 0; b < k; ++b) H[a * k + b] = H[b * k + a] = 0.0;
      H[a * k + a] = 1.0;
    }
    // dir = -H^+ gs (eigen-decomposition: H may be singular, e.g. two columns with proportional products).
    if (blas::syev<double>(k, H.data(), eig.data()) != 0) return false;
    const double cutoff = 1e-12 * std::max(std::abs(eig[static_cast<std::size_t>(k - 1)]), 1e-300);
    std::fill(dir.begin(), dir.end(), 0.0);
    for (index_t j = 0; j < k; ++j) {
      if (!(eig[j] > cutoff)) continue;
      double proj = 0.0;
      for (index_t a = 0; a < k; ++a) proj += H[a * k + j] * gs[a];
      const double w = -proj / eig[j];
      for (index_t a = 0; a < k; ++a) dir[a] += w * H[a * k + j];
    }
    double slope = 0.0;
    for (index_t a = 0; a < k; ++a) {
      if (scale[a] <= 0.0) dir[a] = 0.0;
      slope += gs[a] * dir[a];
    }
    if (!(slope < 0.0)) break;
    // The step stops where the first scale reaches 0 (that column then leaves).
    double alpha = 1.0;
    index_t blocking = -1;
    for (index_t a = 0; a < k; ++a)
      if (dir[a] < 0.0 && -scale[a] / dir[a] < alpha) {
        alpha = -scale[a] / dir[a];
        blocking = a;
      }
    bool accepted = false;
    double F_trial = F;
    for (int halving = 0; halving < 40; ++halving) {
      for (index_t a = 0; a < k; ++a) trial[a] = std::max(0.0, scale[a] + alpha * dir[a]);
      if (blocking >= 0 && halving == 0) trial[blocking] = 0.0;
      F_trial = reduced_objective(trial, zt, nullptr);
      if (std::isfinite(F_trial) && F_trial <= F + 1e-4 * alpha * slope) {
        accepted = true;
        break;
      }
      alpha *= 0.5;
    }
    if (!accepted) break;
    const double decrease = F - F_trial;
    scale = trial;
    F = reduced_objective(scale, z, &grad);
    if (decrease <= 1e-15 * std::abs(F)) break;
  }
  if (!(F < F_start)) return false;

  // Back to the blocks: every column rescaled along its own ray (exactly feasible), then the true objective.
  Point cand;
  cand.V = x.V;
  cand.W = x.W;
  for (index_t a = 0; a < k; ++a) {
    const Entry& e = entries[static_cast<std::size_t>(a)];
    std::vector<double>& B = e.kind == kSlotV ? cand.V : cand.W;
    double* dst = B.data() + (e.col / c_) * d * c_ + e.col % c_;
    const double ratio = scale[a] / e.norm;
    for (index_t j = 0; j < d; ++j) dst[j * c_] *= ratio;
  }
  const index_t m = p_ * d_ * c_;
  std::vector<T> diff(static_cast<std::size_t>(m));
  for (index_t e = 0; e < m; ++e) diff[e] = static_cast<T>(cand.V[e] - cand.W[e]);
  cand.z.resize(static_cast<std::size_t>(nc));
  op_.forward(diff.data(), c_, cand.z.data());
  cand.loss = loss_value(loss_, cand.z.data(), y_.data(), n_, c_, mu);
  const double cand_penalty = penalty_of(cand.V, cand.W, n_cols, d_, c_);
  if (!(cand.loss + beta * cand_penalty < x.loss + beta * penalty)) return false;
  x = std::move(cand);
  penalty = cand_penalty;
  return true;
}

// For the certificate's screening: an upper bound (up to the ternary search's resolution) on the dual value
// any certificate built from theta = -grad can reach. The oracle value of pattern i is at least
// <-G_i[:, k], v / ||v||> for every nonzero column v of V in K_i (a feasible unit direction; <+G, w / ||w||> for
// W), so the certificate's scale is at most s_max = min(1, beta / that), and the dual -L*(s grad) is concave in
// s: its maximum over [0, s_max] bounds the certificate's value. Costs O(P d c + n c) instead of the oracle's
// projections. Only used to skip a certificate that cannot succeed, never as a reported bound.
template <class T>
double ReluSolver<T>::dual_value_bound(const std::vector<double>& V, const std::vector<double>& W,
                                       const std::vector<double>& grad, const std::vector<double>& G,
                                       double beta) const {
  double oracle_lower = 0.0;
  for (index_t col = 0; col < p_ * c_; ++col) {
    const std::size_t base = static_cast<std::size_t>((col / c_) * d_ * c_ + col % c_);
    double vn = 0.0, wn = 0.0, gv = 0.0, gw = 0.0;
    for (index_t j = 0; j < d_; ++j) {
      const std::size_t e = base + static_cast<std::size_t>(j * c_);
      vn += V[e] * V[e];
      wn += W[e] * W[e];
      gv += G[e] * V[e];
      gw += G[e] * W[e];
    }
    if (vn > 0.0) oracle_lower = std::max(oracle_lower, -gv / std::sqrt(vn));
    if (wn > 0.0) oracle_lower = std::max(oracle_lower, gw / std::sqrt(wn));
  }
  const double s_max = oracle_lower > beta ? beta / oracle_lower : 1.0;
  std::vector<double> t(grad.size());
  const auto dual_at = [&](double s) {
    for (std::size_t e = 0; e < grad.size(); ++e) t[e] = s * grad[e];
    const double v = -loss_conjugate(loss_, t.data(), y_.data(), n_, c_);
    return std::isfinite(v) ? v : -std::numeric_limits<double>::infinity();
  };
  double lo = 0.0, hi = s_max;
  for (int iter = 0; iter < 60; ++iter) {
    const double m1 = lo + (hi - lo) / 3.0, m2 = hi - (hi - lo) / 3.0;
    if (dual_at(m1) < dual_at(m2))
      lo = m1;
    else
      hi = m2;
  }
  return std::max({dual_at(lo), dual_at(hi), dual_at(0.5 * (lo + hi))});
}

template <class T>
double ReluSolver<T>::relative_violation(const T* V, const T* W) const {
  if (x_norm_ == 0.0) return 0.0;
  double worst = 0.0;
  std::vector<double> col(static_cast<std::size_t>(d_));
  for (const T* B : {V, W}) {
    for (index_t i = 0; i < p_; ++i)
      for (index_t k = 0; k < c_; ++k) {
        double nrm = 0.0;
        for (index_t j = 0; j < d_; ++j) {
          col[j] = static_cast<double>(B[(i * d_ + j) * c_ + k]);
          nrm += col[j] * col[j];
        }
        if (nrm == 0.0) continue;
        nrm = std::sqrt(nrm);
        const PatternSet::Word* mask = pats_.mask(i);
        double v = 0.0;
        for (index_t r = 0; r < X_.rows; ++r) {
          double xv = 0.0;
          for (index_t j = 0; j < d_; ++j) xv += static_cast<double>(X_(r, j)) * col[j];
          const bool on = (mask[r / PatternSet::kWordBits] >> (r % PatternSet::kWordBits)) & 1U;
          v = std::max(v, on ? -xv : xv);
        }
        worst = std::max(worst, v / (x_norm_ * nrm));
      }
  }
  return worst;
}

template <class T>
double ReluSolver<T>::loss_gradient_adjoint(const std::vector<double>& V, const std::vector<double>& W, double mu,
                                            std::vector<double>& grad, std::vector<double>& G,
                                            std::vector<double>* z_out) const {
  const index_t m = p_ * d_ * c_;
  grad.resize(static_cast<std::size_t>(n_ * c_));
  G.resize(static_cast<std::size_t>(m));
  double value = 0.0;
  if (cert_op_ != nullptr) {
    std::vector<double> diff(static_cast<std::size_t>(m)), z(static_cast<std::size_t>(n_ * c_));
    for (index_t e = 0; e < m; ++e) diff[e] = V[e] - W[e];
    cert_op_->forward(diff.data(), c_, z.data());
    value = loss_value_grad(loss_, z.data(), y_.data(), n_, c_, grad.data(), mu);
    cert_op_->adjoint(grad.data(), c_, G.data());
    if (z_out != nullptr) *z_out = std::move(z);
  } else {
    std::vector<T> diff(static_cast<std::size_t>(m)), z(static_cast<std::size_t>(n_ * c_)), gradT(z.size()),
        GT(static_cast<std::size_t>(m));
    for (index_t e = 0; e < m; ++e) diff[e] = static_cast<T>(V[e] - W[e]);
    op_.forward(diff.data(), c_, z.data());
    value = loss_value_grad(loss_, z.data(), y_.data(), n_, c_, grad.data(), mu);
    for (std::size_t e = 0; e < grad.size(); ++e) gradT[e] = static_cast<T>(grad[e]);
    op_.adjoint(gradT.data(), c_, GT.data());
    for (index_t e = 0; e < m; ++e) G[e] = static_cast<double>(GT[e]);
    if (z_out != nullptr) z_out->assign(z.begin(), z.end());
  }
  return value;
}

template <class T>
ReluCertificate ReluSolver<T>::certificate(const T* V, const T* W, double beta, double cone_tol) const {
  const index_t m = p_ * d_ * c_;
  std::vector<double> v(V, V + m), w(W, W + m), grad, G;
  const double penalty = penalty_of(v, w, p_ * c_, d_, c_);
  const double value = loss_gradient_adjoint(v, w, 0.0, grad, G);
  ReluCertificate cert;
  cert.primal = value + beta * penalty;
  cert.max_dual_constraint = dual_constraint_max(G, cone_tol, beta);
  const double scale = cert.max_dual_constraint > beta ? beta / cert.max_dual_constraint : 1.0;
  for (double& g : grad) g *= scale;
  cert.dual = -loss_conjugate(loss_, grad.data(), y_.data(), n_, c_);
  cert.gap = relative_gap(cert.primal, cert.dual);
  cert.max_violation = relative_violation(V, W);
  return cert;
}

template <class T>
ReluResult<T> ReluSolver<T>::solve(double beta, const ReluOptions& options, const T* V0, const T* W0) {
  CONVEXNN_CHECK(std::isfinite(beta) && beta >= 0.0, "beta must be finite and >= 0, got " << beta);
  CONVEXNN_CHECK(options.tol > 0.0, "tol must be > 0, got " << options.tol);
  CONVEXNN_CHECK(options.max_iter >= 1, "max_iter must be >= 1, got " << options.max_iter);
  CONVEXNN_CHECK(options.check_every >= 1, "check_every must be >= 1, got " << options.check_every);
  const auto t0 = Clock::now();
  PhaseTimes times;
  projector_->reset_stats();
  const index_t m = p_ * d_ * c_;
  const bool hinge = loss_ == Loss::hinge;
  double mu = hinge ? kHinge.mu_start : 0.0;

  std::vector<T> diffT(static_cast<std::size_t>(m)), gradT(static_cast<std::size_t>(n_ * c_)),
      GT(static_cast<std::size_t>(m));
  std::vector<double> grad(static_cast<std::size_t>(n_ * c_)), G(static_cast<std::size_t>(m));

  auto predict = [&](Point& pt) {
    for (index_t e = 0; e < m; ++e) diffT[e] = static_cast<T>(pt.V[e] - pt.W[e]);
    pt.z.resize(static_cast<std::size_t>(n_ * c_));
    op_.forward(diffT.data(), c_, pt.z.data());
    pt.loss = loss_value(loss_, pt.z.data(), y_.data(), n_, c_, mu);
  };
  // G = A^T grad L(z) in double; also leaves grad L(z) in `grad`. Returns L(z).
  auto gradient = [&](const Point& pt) {
    const double value = loss_value_grad(loss_, pt.z.data(), y_.data(), n_, c_, grad.data(), mu);
    for (std::size_t e = 0; e < grad.size(); ++e) gradT[e] = static_cast<T>(grad[e]);
    op_.adjoint(gradT.data(), c_, GT.data());
    for (index_t e = 0; e < m; ++e) G[e] = static_cast<double>(GT[e]);
    return value;
  };

  // Lipschitz estimate of z -> A(V - W): 2 lambda_max(A^T A), by power iteration.
  double lipschitz = 1.0;
  {
    std::vector<T> u(static_cast<std::size_t>(m)), zz(static_cast<std::size_t>(n_ * c_));
    for (index_t e = 0; e < m; ++e) u[e] = static_cast<T>(1.0 + 0.001 * static_cast<double>(e % 97));
    double lam = 0.0;
    for (int it = 0; it < kPowerIterations; ++it) {
      double nu = 0.0;
      for (T v : u) nu += static_cast<double>(v) * static_cast<double>(v);
      nu = std::sqrt(nu);
      if (nu == 0.0) break;
      for (T& v : u) v = static_cast<T>(static_cast<double>(v) / nu);
      op_.forward(u.data(), c_, zz.data());
      op_.adjoint(zz.data(), c_, u.data());
      double s = 0.0;
      for (T v : u) s += static_cast<double>(v) * static_cast<double>(v);
      lam = std::sqrt(s);
    }
    const double smooth = hinge ? 1.0 / mu : loss_smoothness(loss_);
    lipschitz = std::max(1e-300, 2.0 * lam * smooth);
  }
  double step = 1.0 / lipschitz;
  times.lap(PhaseTimes::kSetup);

  Point x, y_pt, x_new;
  x.V.assign(static_cast<std::size_t>(m), 0.0);
  x.W.assign(static_cast<std::size_t>(m), 0.0);
  if (V0 != nullptr && W0 != nullptr) {
    // A warm start is made feasible by projecting every column onto its cone (threshold 0).
    std::vector<double> v0(V0, V0 + m), w0(W0, W0 + m);
    prox_columns(v0, 0.0, options.cone_tol, kSlotV, x.V);
    prox_columns(w0, 0.0, options.cone_tol, kSlotW, x.W);
  }
  predict(x);
  y_pt = x;
  double momentum = 1.0;

  ReluResult<T> result;
  result.status = "max_iter";
  double best_dual = -std::numeric_limits<double>::infinity();
  double penalty_x = penalty_of(x.V, x.W, p_ * c_, d_, c_);

  std::vector<double> cert_grad, cert_G, cert_z;
  bool last_certificate_full = false;
  index_t screened_in_a_row = 0;
  // allow_screen: the cone projections of the certificate (the oracle: every pattern, both signs) are skipped
  // when this theta provably cannot certify tol (see dual_value_bound); the history then keeps the best dual
  // bound found so far, which stays valid.
  auto certify = [&](const Point& pt, double penalty, index_t iteration, bool allow_screen) {
    // True-loss certificate at pt, in double (hinge: the smoothed gradient lies in the hinge conjugate's
    // domain, so it still gives a valid dual point of the true problem).
    times.lap(PhaseTimes::kOther);
    const double smoothed_loss = loss_gradient_adjoint(pt.V, pt.W, mu, cert_grad, cert_G, &cert_z);
    const double true_loss = hinge ? loss_value(loss_, cert_z.data(), y_.data(), n_, c_) : smoothed_loss;
    const double primal = true_loss + beta * penalty;
    times.lap(PhaseTimes::kCertifyProducts);
    if (allow_screen && !hinge && screened_in_a_row + 1 < kFullCertificateEvery) {
      const double bound = dual_value_bound(pt.V, pt.W, cert_grad, cert_G, beta);
      if (relative_gap(primal, std::max(best_dual, bound)) > options.tol) {
        const double gap = relative_gap(primal, best_dual);
        result.history.push_back({iteration, primal, best_dual, gap, seconds_since(t0), 0});
        result.objective = primal;
        result.dual_objective = best_dual;
        result.gap = gap;
        last_certificate_full = false;
        ++screened_in_a_row;
        return false;
      }
    }
    last_certificate_full = true;
    screened_in_a_row = 0;
    const double worst = dual_constraint_max(cert_G, options.cone_tol, beta);
    times.lap(PhaseTimes::kCertifyOracle);
    const double scale = worst > beta ? beta / worst : 1.0;
    std::vector<double> t(cert_grad);
    for (double& v : t) v *= scale;
    const double dual = -loss_conjugate(loss_, t.data(), y_.data(), n_, c_);
    best_dual = std::max(best_dual, dual);
    const double gap = relative_gap(primal, best_dual);
    result.history.push_back({iteration, primal, best_dual, gap, seconds_since(t0), 0});
    result.objective = primal;
    result.dual_objective = best_dual;
    result.gap = gap;
    result.max_dual_constraint = worst;
    if (hinge && mu > 0.0) {
      const double smoothed_primal = smoothed_loss + beta * penalty;
      const double smoothed_dual = -loss_conjugate(loss_, t.data(), y_.data(), n_, c_, mu);
      if (kHinge.should_shrink(relative_gap(smoothed_primal, smoothed_dual), gap)) {
        mu = kHinge.next(mu);
        return false;  // keep going on the sharper problem
      }
    }
    return gap <= options.tol;
  };

  std::vector<char> last_support;
  int newton_rejections = 0;
  index_t newton_interval = 1, checks_since_newton = 0, newton_misses = 0;
  index_t it = 0;
  for (it = 1; it <= options.max_iter; ++it) {
    times.lap(PhaseTimes::kOther);
    const double fy = gradient(y_pt);
    // Absolute rounding scale of L(z) ~ sum_k |grad_k| |z_k|: the loss is often tiny next to the predictions
    // (a near-interpolating fit), so a slack relative to the loss alone is below its rounding.
    double loss_rounding = 0.0;
    for (std::size_t e = 0; e < grad.size(); ++e)
      loss_rounding += std::abs(grad[e]) * std::abs(static_cast<double>(y_pt.z[e]));
    times.lap(PhaseTimes::kGradient);
    std::vector<double> xv(static_cast<std::size_t>(m)), xw(static_cast<std::size_t>(m));
    double penalty_new = 0.0;
    bool backtracked = false;
    for (;;) {
      for (index_t e = 0; e < m; ++e) {
        xv[e] = y_pt.V[e] - step * G[e];
        xw[e] = y_pt.W[e] + step * G[e];
      }
      penalty_new = prox_columns(xv, step * beta, options.cone_tol, kSlotV, x_new.V);
      penalty_new += prox_columns(xw, step * beta, options.cone_tol, kSlotW, x_new.W);
      times.lap(PhaseTimes::kProx);
      predict(x_new);
      times.lap(PhaseTimes::kForward);
      double lin = 0.0, quad = 0.0;
      for (index_t e = 0; e < m; ++e) {
        const double dv = x_new.V[e] - y_pt.V[e], dw = x_new.W[e] - y_pt.W[e];
        lin += G[e] * (dv - dw);
        quad += dv * dv + dw * dw;
      }
      const double bound = fy + lin + quad / (2.0 * step);
      if (!std::isfinite(x_new.loss)) {
        step *= kBacktrack;
        backtracked = true;
        if (step < 1e-300) break;
        continue;
      }
      if (x_new.loss <= bound + kDecreaseSlack * (std::abs(bound) + loss_rounding)) break;
      // A step this far below 1/L is never needed (1/L satisfies the bound exactly): only rounding is left,
      // so accept the (feasible) prox point instead of halving forever.
      if (step < kMinStepRatio / lipschitz) break;
      step *= kBacktrack;
      backtracked = true;
    }
    if (!std::isfinite(x_new.loss)) {
      result.status = "diverged";
      break;
    }
    // Gradient-based adaptive restart (O'Donoghue & Candes): drop momentum when it points uphill.
    double restart_dot = 0.0;
    for (index_t e = 0; e < m; ++e)
      restart_dot +=
          (y_pt.V[e] - x_new.V[e]) * (x_new.V[e] - x.V[e]) + (y_pt.W[e] - x_new.W[e]) * (x_new.W[e] - x.W[e]);
    Point y_next;
    if (restart_dot > 0.0) {
      momentum = 1.0;
      y_next = x_new;
    } else {
      const double next = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * momentum * momentum));
      const double beta_k = (momentum - 1.0) / next;
      momentum = next;
      y_next.V.resize(static_cast<std::size_t>(m));
      y_next.W.resize(static_cast<std::size_t>(m));
      for (index_t e = 0; e < m; ++e) {
        y_next.V[e] = x_new.V[e] + beta_k * (x_new.V[e] - x.V[e]);
        y_next.W[e] = x_new.W[e] + beta_k * (x_new.W[e] - x.W[e]);
      }
      // The extrapolated point may leave the cones; that is fine for FISTA (the prox restores feasibility).
      // In double its prediction is the same combination of the two fresh ones (the operator is linear): one
      // forward product less per iteration, and no drift since both are recomputed every iteration. In float32
      // the combination's rounding (~1e-7) would make L(y) disagree with the forward products that the
      // backtracking test compares it with, so y is predicted afresh there.
      if constexpr (std::is_same_v<T, double>) {
        y_next.z.resize(x_new.z.size());
        for (std::size_t e = 0; e < x_new.z.size(); ++e) y_next.z[e] = x_new.z[e] + beta_k * (x_new.z[e] - x.z[e]);
        y_next.loss = loss_value(loss_, y_next.z.data(), y_.data(), n_, c_, mu);
      } else {
        times.lap(PhaseTimes::kOther);
        predict(y_next);
        times.lap(PhaseTimes::kForward);
      }
    }
    x = x_new;
    penalty_x = penalty_new;
    y_pt = std::move(y_next);
    if (!backtracked) step *= kStepGrowth;

    if (profiling_enabled() && std::getenv("CONVEXNN_RELU_PROFILE")[0] == '2') {  // one line per iteration
      const auto st = projector_->stats();
      std::fprintf(stderr,
                   "[relu it %lld] t=%.3f step=%.3e backtracked=%d restart=%d passes=%lld steps=%lld prox=%.3f "
                   "oracle=%.3f\n",
                   static_cast<long long>(it), seconds_since(t0), step, int(backtracked), int(restart_dot > 0.0),
                   static_cast<long long>(st.passes), static_cast<long long>(st.steps),
                   times.seconds[PhaseTimes::kProx], times.seconds[PhaseTimes::kCertifyOracle]);
    }
    const bool check = (it % options.check_every == 0) || it == options.max_iter;
    if (check) {
      bool newton_accepted = false;
      if (options.ray_newton && !hinge) {
        // Ray Newton before the check's certificate. Accepting restarts FISTA's momentum, which ill-conditioned
        // problems (thousands of iterations) pay for dearly when it happens every check, so every second
        // accepted step that the certificate does not declare converged doubles the number of checks between
        // attempts. Two rejected attempts on one support (set of nonzero columns): wait for a new one.
        std::vector<char> support(static_cast<std::size_t>(2 * p_ * c_));
        for (index_t col = 0; col < p_ * c_; ++col) {
          support[static_cast<std::size_t>(col)] = column_norm(x.V, col, d_, c_) > 0.0;
          support[static_cast<std::size_t>(p_ * c_ + col)] = column_norm(x.W, col, d_, c_) > 0.0;
        }
        if (support != last_support) newton_rejections = 0;
        ++checks_since_newton;
        if (newton_rejections < 2 && checks_since_newton >= newton_interval) {
          times.lap(PhaseTimes::kOther);
          newton_accepted = ray_newton(x, penalty_x, beta, mu);
          times.lap(PhaseTimes::kNewton);
          if (newton_accepted) {
            ++result.n_newton;
            y_pt = x;
            momentum = 1.0;
            checks_since_newton = 0;
          } else {
            ++newton_rejections;
          }
        }
        last_support = std::move(support);
      }
      const bool done = certify(x, penalty_x, it, true);
      if (newton_accepted && !done && ++newton_misses % 2 == 0) newton_interval *= 2;
      if (options.callback) {
        IterInfo info;
        info.iteration = it;
        info.objective = result.objective;
        info.dual_objective = result.dual_objective;
        info.gap = result.gap;
        info.time = seconds_since(t0);
        for (index_t col = 0; col < p_ * c_; ++col)
          info.n_active += (column_norm(x.V, col, d_, c_) > 0.0) + (column_norm(x.W, col, d_, c_) > 0.0);
        info.working_set = 2 * p_ * c_;  // every column is projected each iteration (no working sets yet)
        if (!options.callback(info)) {
          result.status = "interrupted";
          break;
        }
      }
      if (done) {
        result.status = "converged";
        break;
      }
    }
    if (seconds_since(t0) > options.time_limit) {
      result.status = "time_limit";
      break;
    }
  }
  if (it > options.max_iter) it = options.max_iter;
  // Final certificate at x (also for stops between checks).
  if (result.history.empty() || result.history.back().iteration != it || !last_certificate_full)
    certify(x, penalty_x, it, false);
  result.V.assign(static_cast<std::size_t>(m), T(0));
  result.W.assign(static_cast<std::size_t>(m), T(0));
  for (index_t e = 0; e < m; ++e) {
    result.V[e] = static_cast<T>(x.V[e]);
    result.W[e] = static_cast<T>(x.W[e]);
  }
  result.max_violation = relative_violation(result.V.data(), result.W.data());
  result.kkt_residual = std::max(0.0, result.gap);
  if (result.status == "converged" && result.max_violation > options.tol) result.status = "max_iter";
  if (result.status == "max_iter" && result.gap <= options.tol && result.max_violation <= options.tol)
    result.status = "converged";
  for (index_t col = 0; col < p_ * c_; ++col)
    result.n_active += (column_norm(x.V, col, d_, c_) > 0.0) + (column_norm(x.W, col, d_, c_) > 0.0);
  result.n_iter = it;
  result.time = seconds_since(t0);
  if (profiling_enabled()) {
    times.lap(PhaseTimes::kOther);
    const auto st = projector_->stats();
    std::fprintf(
        stderr,
        "[relu profile] %lld iterations, %.3f s: setup %.3f, gradient %.3f, prox %.3f, forward %.3f, "
        "certificate products %.3f, certificate oracle %.3f, newton %.3f (%lld accepted), other %.3f; "
        "projections %lld, passes %lld, steps %lld\n",
        static_cast<long long>(it), result.time, times.seconds[PhaseTimes::kSetup],
        times.seconds[PhaseTimes::kGradient], times.seconds[PhaseTimes::kProx], times.seconds[PhaseTimes::kForward],
        times.seconds[PhaseTimes::kCertifyProducts], times.seconds[PhaseTimes::kCertifyOracle],
        times.seconds[PhaseTimes::kNewton], static_cast<long long>(result.n_newton), times.seconds[PhaseTimes::kOther],
        static_cast<long long>(st.projections), static_cast<long long>(st.passes), static_cast<long long>(st.steps));
  }
  return result;
}

template class ReluSolver<float>;
template class ReluSolver<double>;

}  // namespace convexnn
