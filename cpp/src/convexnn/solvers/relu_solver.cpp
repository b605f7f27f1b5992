// Exact ReLU program by FISTA with the exact cone-norm prox; see relu_solver.hpp for the method and the
// certificate.
#include "convexnn/solvers/relu_solver.hpp"
#include "convexnn/solvers/continuation.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "convexnn/core/blas.hpp"
#include "convexnn/cones/cone_oracle.hpp"

namespace convexnn {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Wall time per solver phase, returned as ReluResult::timings (which part of an iteration to make faster).
struct PhaseTimes {
  enum Phase { kSetup, kGradient, kProx, kForward, kCertifyProducts, kCertifyOracle, kNewton, kOther, kCount };
  static constexpr const char* kNames[kCount] = {"setup",  "gradient", "prox",       "forward", "certificate_products",
                                                 "certificate_oracle", "ray_newton", "other"};
  double seconds[kCount] = {};
  Clock::time_point mark = Clock::now();
  void lap(Phase p) {
    const auto now = Clock::now();
    seconds[p] += std::chrono::duration<double>(now - mark).count();
    mark = now;
  }
};

// Stop polling (StopControl): the interrupt hook at most this often, the callback between checks at most this
// often (seconds of wall time). A GIL round trip for Python's signal check costs microseconds.
constexpr double kInterruptPollSeconds = 0.05;
constexpr double kCallbackSeconds = 0.5;
// A solve stopped by its time limit (interrupt) certifies its last iterate only when the last full certificate
// took at most this share of the time limit (these seconds); otherwise it returns the point of the last check
// with that check's certificate, so the stop is prompt.
constexpr double kFinalCertificateShare = 0.05;
constexpr double kInterruptCertificateSeconds = 0.25;

// FISTA step-size control: multiplicative backtracking and the optimistic growth after a step that
// needed none (as in scnn's R-FISTA / Lassplore), so the step tracks the local curvature.
constexpr double kBacktrack = 0.5;
constexpr double kStepGrowth = 1.25;
// Sufficient-decrease slack: relative roundoff tolerated in the quadratic upper-bound test.
constexpr double kDecreaseSlack = 1e-12;
// Smallest step tried, relative to 1/L (L the initial Lipschitz estimate): below it backtracking stops.
constexpr double kMinStepRatio = 1e-16;
// Largest step, relative to 1/L (and absolutely): the growth after steps without backtracking stops there.
// Without a cap a run whose gradient vanishes (an exactly interpolating iterate) grows the step to inf, and
// halving inf never ends. A step this large never occurs in a run that still makes progress.
constexpr double kMaxStepRatio = 1e30;
constexpr double kMaxStep = 1e300;
// Backtracking halvings per iteration at most (more than from the largest to the smallest double).
constexpr int kMaxBacktracks = 2200;
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

namespace detail {

// Time limit, interrupt hook and between-check callback of one solve, polled from the solver's loops on a
// wall-time budget, also from the OpenMP workers of the cone projections; the hooks run only on the thread
// that called solve() (they may take Python's GIL). Once stopped it stays stopped; a hook's exception stops
// the solve and is rethrown by solve().
class StopControl {
 public:
  StopControl(Clock::time_point t0, const ReluOptions& options)
      : t0_(t0), time_limit_(options.time_limit), owner_(std::this_thread::get_id()),
        interrupt_(options.interrupt), callback_(options.callback) {
    info_.objective = std::numeric_limits<double>::infinity();
    info_.dual_objective = -std::numeric_limits<double>::infinity();
    info_.gap = std::numeric_limits<double>::infinity();
  }

  // True once the solve must stop.
  bool poll() {
    if (stopped()) return true;
    const double now = seconds_since(t0_);
    if (now > time_limit_) {
      request(kTimeLimit);
      return true;
    }
    if (std::this_thread::get_id() != owner_) return false;
    if (interrupt_ && now >= next_interrupt_) {
      next_interrupt_ = now + kInterruptPollSeconds;
      if (!run_hook([this] { return !interrupt_(); })) request(kInterrupted);
    }
    if (callback_ && !stopped() && now >= next_callback_) {
      info_.time = now;
      call_callback(info_);
    }
    return stopped();
  }
  // Only the time limit (cheap; the end of every iteration in between the hooks' budgets).
  bool past_time_limit() const { return seconds_since(t0_) > time_limit_; }
  // The callback at a check (on the owner thread); false -> stop "interrupted".
  bool call_callback(const IterInfo& info) {
    info_ = info;
    next_callback_ = info.time + kCallbackSeconds;
    if (!callback_ || run_hook([this] { return callback_(info_); })) return true;
    request(kInterrupted);
    return false;
  }
  // What a callback between checks sees (its iteration; the last check's values).
  void set_iteration(index_t iteration) { info_.iteration = iteration; }
  bool stopped() const { return reason_.load(std::memory_order_relaxed) != kRunning; }
  const char* status() const { return reason_.load() == kTimeLimit ? "time_limit" : "interrupted"; }
  bool interrupted() const { return reason_.load() == kInterrupted; }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  enum Reason : int { kRunning = 0, kTimeLimit = 1, kInterrupted = 2 };
  void request(Reason r) {
    int expected = kRunning;
    reason_.compare_exchange_strong(expected, r);
  }
  // Runs hook() -> bool "keep going"; an exception counts as a stop and is kept for rethrow().
  template <class F>
  bool run_hook(F hook) {
    try {
      return hook();
    } catch (...) {
      if (!error_) error_ = std::current_exception();
      return false;
    }
  }

  Clock::time_point t0_;
  double time_limit_;
  std::thread::id owner_;
  const std::function<bool()>& interrupt_;
  const std::function<bool(const IterInfo&)>& callback_;
  std::atomic<int> reason_{kRunning};
  double next_interrupt_ = 0.0, next_callback_ = kCallbackSeconds;
  IterInfo info_;
  std::exception_ptr error_;
};

}  // namespace detail

template <class T>
struct ReluSolver<T>::Point {
  std::vector<double> V, W;  // (P x d x c)
  std::vector<T> z;          // prediction A(V - W), (n x c)
  double loss = 0.0;         // L(z) (smoothed for the hinge while mu > 0)
};

template <class T>
ReluSolver<T>::ReluSolver(const BlockOperator<T>& op, MatrixView<T> X, const PatternSet& patterns, const double* y,
                          index_t c, Loss loss, const BlockOperator<double>* certify_op,
                          const double* sample_weight)
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
  if (sample_weight != nullptr) {
    validate_weights(sample_weight, n_);
    w_.assign(sample_weight, sample_weight + n_);
  }
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
                                   std::vector<double>& out, Stop* stop) const {
  const index_t n_cols = p_ * c_;
  out.assign(x_in.size(), 0.0);
  std::vector<double> col_norm(static_cast<std::size_t>(n_cols), 0.0);
  // Columns in chunks of kProxChunk: the first pass over the constraints of all projections of a chunk is one
  // GEMM (PatternConeProjector::project_batch); a warm-started projection usually needs only that pass.
  const index_t n_chunks = (n_cols + kProxChunk - 1) / kProxChunk;
  {
    const blas::SingleThreadedScope serial_blas;
    // One chunk: no thread team (on a loaded machine its fork and join cost more than the chunk).
#pragma omp parallel if (n_chunks > 1)
    {
      std::vector<double> g(static_cast<std::size_t>(d_)), G(static_cast<std::size_t>(kProxChunk * d_)), U(G.size()),
          norms(static_cast<std::size_t>(kProxChunk)), below(norms.size());
      std::vector<index_t> cols, slots, patterns;
#pragma omp for schedule(dynamic, 1)
      for (index_t chunk = 0; chunk < n_chunks; ++chunk) {
        if (stop != nullptr && stop->poll()) continue;  // the caller discards `out`
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
double ReluSolver<T>::dual_constraint_max(const std::vector<double>& G, double cone_tol, double floor,
                                          Stop* stop) const {
  const index_t n_cols = p_ * c_;
  std::vector<double> worst(static_cast<std::size_t>(n_cols), 0.0);
  {
    const blas::SingleThreadedScope serial_blas;
#pragma omp parallel if (n_cols > 1)
    {
      std::vector<double> g(static_cast<std::size_t>(d_)), u(static_cast<std::size_t>(d_));
#pragma omp for schedule(dynamic, 1)
      for (index_t col = 0; col < n_cols; ++col) {
        if (stop != nullptr && stop->poll()) continue;  // the caller discards the value
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
bool ReluSolver<T>::ray_newton(Point& x, double& penalty, double beta, double mu, Stop* stop) const {
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
    const double value = g != nullptr ? loss_value_grad(loss_, zz.data(), y_.data(), n_, c_, g->data(), mu, w())
                                      : loss_value(loss_, zz.data(), y_.data(), n_, c_, mu, w());
    double total = 0.0;
    for (double v : sc) total += v;
    return value + beta * total;
  };

  const bool quadratic = loss_ == Loss::squared && w_.empty();  // constant loss Hessian (the identity)
  std::vector<double> scale(static_cast<std::size_t>(k)), z(static_cast<std::size_t>(nc)), zt(z.size()), grad(z.size()),
      gs(scale.size()), dir(scale.size()), trial(scale.size()), eig(scale.size()),
      Hloss(static_cast<std::size_t>(k * k)), H(Hloss.size()), HE;
  for (index_t a = 0; a < k; ++a) scale[a] = entries[static_cast<std::size_t>(a)].norm;
  double F = reduced_objective(scale, z, &grad);
  const double F_start = F;
  bool have_hessian = false;
  for (int step = 0; step < kNewtonSteps; ++step) {
    if (stop != nullptr && stop->poll()) return false;  // x unchanged
    blas::gemv<double>(blas::Layout::ColMajor, blas::Op::Trans, nc, k, 1.0, E.data(), nc, grad.data(), 1, 0.0,
                       gs.data(), 1);
    for (double& g : gs) g += beta;
    if (!quadratic || !have_hessian) {
      // E^T Hess E; the squared loss's Hessian is the identity (and constant: formed once).
      const double* HEp = E.data();
      if (!quadratic) {
        HE.resize(E.size());
        const LossCurvature curvature(loss_, z.data(), y_.data(), n_, c_, mu, w());
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
  cand.loss = loss_value(loss_, cand.z.data(), y_.data(), n_, c_, mu, w());
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
    const double v = -loss_conjugate(loss_, t.data(), y_.data(), n_, c_, 0.0, w());
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
    value = loss_value_grad(loss_, z.data(), y_.data(), n_, c_, grad.data(), mu, w());
    cert_op_->adjoint(grad.data(), c_, G.data());
    if (z_out != nullptr) *z_out = std::move(z);
  } else {
    std::vector<T> diff(static_cast<std::size_t>(m)), z(static_cast<std::size_t>(n_ * c_)), gradT(z.size()),
        GT(static_cast<std::size_t>(m));
    for (index_t e = 0; e < m; ++e) diff[e] = static_cast<T>(V[e] - W[e]);
    op_.forward(diff.data(), c_, z.data());
    value = loss_value_grad(loss_, z.data(), y_.data(), n_, c_, grad.data(), mu, w());
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
  cert.dual = -loss_conjugate(loss_, grad.data(), y_.data(), n_, c_, 0.0, this->w());
  cert.gap = relative_gap(cert.primal, cert.dual);
  cert.max_violation = relative_violation(V, W);
  return cert;
}

// The state of one solve(): FISTA with the exact cone prox (fista_step), the checks (check: ray Newton, the
// certificate, the callback) and the final certificate (finish).
template <class T>
class ReluSolver<T>::Run {
 public:
  Run(const ReluSolver& solver, double beta, const ReluOptions& options, Clock::time_point t0)
      : s_(solver),
        beta_(beta),
        opt_(options),
        t0_(t0),
        stop_(t0, options),
        m_(solver.p_ * solver.d_ * solver.c_),
        nc_(solver.n_ * solver.c_),
        hinge_(solver.loss_ == Loss::hinge),
        mu_(hinge_ ? kHinge.mu_start : 0.0),
        diffT_(static_cast<std::size_t>(m_)),
        gradT_(static_cast<std::size_t>(nc_)),
        GT_(static_cast<std::size_t>(m_)),
        grad_(static_cast<std::size_t>(nc_)),
        G_(static_cast<std::size_t>(m_)) {}

  ReluResult<T> execute(const T* V0, const T* W0) {
    estimate_lipschitz();
    start(V0, W0);
    if (stop_.stopped()) {  // stopped during the Lipschitz estimate: no iteration
      result_.status = stop_.status();
      index_t none = 0;
      finish(none);
      stop_.rethrow();
      return std::move(result_);
    }
    index_t it = 0;
    for (it = 1; it <= opt_.max_iter; ++it) {
      stop_.set_iteration(it - 1);
      const StepOutcome outcome = fista_step();
      if (outcome == StepOutcome::kDiverged) {
        result_.status = "diverged";
        break;
      }
      if (outcome == StepOutcome::kStopped) {  // iteration `it` abandoned: x is the iterate of it - 1
        result_.status = stop_.status();
        --it;
        break;
      }
      const bool is_check = (it % opt_.check_every == 0) || it == opt_.max_iter;
      if (is_check && check(it)) break;
      if (stop_.past_time_limit() || stop_.poll()) {
        result_.status = stop_.past_time_limit() ? "time_limit" : stop_.status();
        break;
      }
    }
    if (it > opt_.max_iter) it = opt_.max_iter;
    finish(it);
    stop_.rethrow();
    return std::move(result_);
  }

 private:
  enum class StepOutcome { kAccepted, kDiverged, kStopped };
  enum class CertifyOutcome { kContinue, kDone, kStopped };

  void predict(Point& pt) {
    for (index_t e = 0; e < m_; ++e) diffT_[e] = static_cast<T>(pt.V[e] - pt.W[e]);
    pt.z.resize(static_cast<std::size_t>(nc_));
    s_.op_.forward(diffT_.data(), s_.c_, pt.z.data());
    pt.loss = loss_value(s_.loss_, pt.z.data(), s_.y_.data(), s_.n_, s_.c_, mu_, s_.w());
  }
  // G = A^T grad L(z) in double; also leaves grad L(z) in `grad_`. Returns L(z).
  double gradient(const Point& pt) {
    const double value = loss_value_grad(s_.loss_, pt.z.data(), s_.y_.data(), s_.n_, s_.c_, grad_.data(), mu_, s_.w());
    for (std::size_t e = 0; e < grad_.size(); ++e) gradT_[e] = static_cast<T>(grad_[e]);
    s_.op_.adjoint(gradT_.data(), s_.c_, GT_.data());
    for (index_t e = 0; e < m_; ++e) G_[e] = static_cast<double>(GT_[e]);
    return value;
  }

  // Lipschitz estimate of z -> A(V - W): 2 lambda_max(A^T A), by power iteration.
  void estimate_lipschitz() {
    std::vector<T> u(static_cast<std::size_t>(m_)), zz(static_cast<std::size_t>(nc_));
    for (index_t e = 0; e < m_; ++e) u[e] = static_cast<T>(1.0 + 0.001 * static_cast<double>(e % 97));
    double lam = 0.0;
    for (int it = 0; it < kPowerIterations; ++it) {
      if (it > 0 && stop_.poll()) break;  // each step is a full forward + adjoint (seconds at n = 2e4, P = 1e3)
      double nu = 0.0;
      for (T v : u) nu += static_cast<double>(v) * static_cast<double>(v);
      nu = std::sqrt(nu);
      if (nu == 0.0) break;
      for (T& v : u) v = static_cast<T>(static_cast<double>(v) / nu);
      s_.op_.forward(u.data(), s_.c_, zz.data());
      s_.op_.adjoint(zz.data(), s_.c_, u.data());
      double sq = 0.0;
      for (T v : u) sq += static_cast<double>(v) * static_cast<double>(v);
      lam = std::sqrt(sq);
    }
    const double smooth = (hinge_ ? 1.0 / mu_ : loss_smoothness(s_.loss_)) * max_weight(s_.w(), s_.n_);
    lipschitz_ = std::max(1e-300, 2.0 * lam * smooth);
    step_ = 1.0 / lipschitz_;
    max_step_ = std::min(kMaxStep, kMaxStepRatio / lipschitz_);
    times_.lap(PhaseTimes::kSetup);
  }

  void start(const T* V0, const T* W0) {
    x_.V.assign(static_cast<std::size_t>(m_), 0.0);
    x_.W.assign(static_cast<std::size_t>(m_), 0.0);
    if (V0 != nullptr && W0 != nullptr) {
      // A warm start is made feasible by projecting every column onto its cone (threshold 0).
      std::vector<double> v0(V0, V0 + m_), w0(W0, W0 + m_);
      s_.prox_columns(v0, 0.0, opt_.cone_tol, kSlotV, x_.V);
      s_.prox_columns(w0, 0.0, opt_.cone_tol, kSlotW, x_.W);
    }
    predict(x_);
    y_pt_ = x_;
    result_.status = "max_iter";
    penalty_x_ = penalty_of(x_.V, x_.W, s_.p_ * s_.c_, s_.d_, s_.c_);
  }

  // One FISTA iteration: the prox-gradient step from y with backtracking, then the momentum update.
  StepOutcome fista_step() {
    times_.lap(PhaseTimes::kOther);
    const double fy = gradient(y_pt_);
    // Absolute rounding scale of L(z) ~ sum_k |grad_k| |z_k|: the loss is often tiny next to the predictions
    // (a near-interpolating fit), so a slack relative to the loss alone is below its rounding.
    double loss_rounding = 0.0;
    for (std::size_t e = 0; e < grad_.size(); ++e)
      loss_rounding += std::abs(grad_[e]) * std::abs(static_cast<double>(y_pt_.z[e]));
    times_.lap(PhaseTimes::kGradient);
    xv_.resize(static_cast<std::size_t>(m_));
    xw_.resize(static_cast<std::size_t>(m_));
    double penalty_new = 0.0;
    bool backtracked = false;
    for (int backtracks = 0;; ++backtracks) {
      for (index_t e = 0; e < m_; ++e) {
        xv_[e] = y_pt_.V[e] - step_ * G_[e];
        xw_[e] = y_pt_.W[e] + step_ * G_[e];
      }
      penalty_new = s_.prox_columns(xv_, step_ * beta_, opt_.cone_tol, kSlotV, x_new_.V, &stop_);
      if (!stop_.stopped()) penalty_new += s_.prox_columns(xw_, step_ * beta_, opt_.cone_tol, kSlotW, x_new_.W, &stop_);
      times_.lap(PhaseTimes::kProx);
      if (stop_.stopped()) return StepOutcome::kStopped;
      predict(x_new_);
      times_.lap(PhaseTimes::kForward);
      double lin = 0.0, quad = 0.0;
      for (index_t e = 0; e < m_; ++e) {
        const double dv = x_new_.V[e] - y_pt_.V[e], dw = x_new_.W[e] - y_pt_.W[e];
        lin += G_[e] * (dv - dw);
        quad += dv * dv + dw * dw;
      }
      const double bound = fy + lin + quad / (2.0 * step_);
      if (!std::isfinite(x_new_.loss)) {
        step_ *= kBacktrack;
        backtracked = true;
        if (step_ < 1e-300 || backtracks >= kMaxBacktracks) break;
        continue;
      }
      if (x_new_.loss <= bound + kDecreaseSlack * (std::abs(bound) + loss_rounding)) break;
      // A step this far below 1/L is never needed (1/L satisfies the bound exactly): only rounding is left,
      // so accept the (feasible) prox point instead of halving forever.
      if (step_ < kMinStepRatio / lipschitz_ || backtracks >= kMaxBacktracks) break;
      step_ *= kBacktrack;
      backtracked = true;
    }
    if (!std::isfinite(x_new_.loss)) return StepOutcome::kDiverged;
    extrapolate();
    x_ = x_new_;
    penalty_x_ = penalty_new;
    y_pt_ = std::move(y_next_);
    if (!backtracked) step_ = std::min(step_ * kStepGrowth, max_step_);
    return StepOutcome::kAccepted;
  }

  // The next extrapolation point y_next_ from x_ (previous iterate) and x_new_, with the adaptive restart.
  void extrapolate() {
    // Gradient-based adaptive restart (O'Donoghue & Candes): drop momentum when it points uphill.
    double restart_dot = 0.0;
    for (index_t e = 0; e < m_; ++e)
      restart_dot +=
          (y_pt_.V[e] - x_new_.V[e]) * (x_new_.V[e] - x_.V[e]) + (y_pt_.W[e] - x_new_.W[e]) * (x_new_.W[e] - x_.W[e]);
    if (restart_dot > 0.0) {
      momentum_ = 1.0;
      y_next_ = x_new_;
      return;
    }
    const double next = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * momentum_ * momentum_));
    const double beta_k = (momentum_ - 1.0) / next;
    momentum_ = next;
    y_next_.V.resize(static_cast<std::size_t>(m_));
    y_next_.W.resize(static_cast<std::size_t>(m_));
    for (index_t e = 0; e < m_; ++e) {
      y_next_.V[e] = x_new_.V[e] + beta_k * (x_new_.V[e] - x_.V[e]);
      y_next_.W[e] = x_new_.W[e] + beta_k * (x_new_.W[e] - x_.W[e]);
    }
    // The extrapolated point may leave the cones; that is fine for FISTA (the prox restores feasibility).
    // In double its prediction is the same combination of the two fresh ones (the operator is linear): one
    // forward product less per iteration, and no drift since both are recomputed every iteration. In float32
    // the combination's rounding (~1e-7) would make L(y) disagree with the forward products that the
    // backtracking test compares it with, so y is predicted afresh there.
    if constexpr (std::is_same_v<T, double>) {
      y_next_.z.resize(x_new_.z.size());
      for (std::size_t e = 0; e < x_new_.z.size(); ++e) y_next_.z[e] = x_new_.z[e] + beta_k * (x_new_.z[e] - x_.z[e]);
      y_next_.loss = loss_value(s_.loss_, y_next_.z.data(), s_.y_.data(), s_.n_, s_.c_, mu_, s_.w());
    } else {
      times_.lap(PhaseTimes::kOther);
      predict(y_next_);
      times_.lap(PhaseTimes::kForward);
    }
  }

  // Ray Newton before a check's certificate. Accepting restarts FISTA's momentum, which ill-conditioned
  // problems (thousands of iterations) pay for dearly when it happens every check, so every second accepted
  // step that the certificate does not declare converged doubles the number of checks between attempts (see
  // check). Two rejected attempts on one support (set of nonzero columns): wait for a new one.
  bool maybe_ray_newton() {
    const index_t n_cols = s_.p_ * s_.c_;
    std::vector<char> support(static_cast<std::size_t>(2 * n_cols));
    for (index_t col = 0; col < n_cols; ++col) {
      support[static_cast<std::size_t>(col)] = column_norm(x_.V, col, s_.d_, s_.c_) > 0.0;
      support[static_cast<std::size_t>(n_cols + col)] = column_norm(x_.W, col, s_.d_, s_.c_) > 0.0;
    }
    if (support != last_support_) newton_rejections_ = 0;
    ++checks_since_newton_;
    bool accepted = false;
    if (newton_rejections_ < 2 && checks_since_newton_ >= newton_interval_) {
      times_.lap(PhaseTimes::kOther);
      accepted = s_.ray_newton(x_, penalty_x_, beta_, mu_, &stop_);
      times_.lap(PhaseTimes::kNewton);
      if (accepted) {
        ++result_.n_newton;
        y_pt_ = x_;
        momentum_ = 1.0;
        checks_since_newton_ = 0;
      } else if (!stop_.stopped()) {
        ++newton_rejections_;
      }
    }
    last_support_ = std::move(support);
    return accepted;
  }

  // A check at iteration `it`: ray Newton, the certificate, the callback. True: stop (status set).
  bool check(index_t it) {
    const bool newton_accepted = opt_.ray_newton && !hinge_ && maybe_ray_newton();
    const CertifyOutcome outcome = stop_.stopped() ? CertifyOutcome::kStopped : certify(x_, penalty_x_, it, true);
    if (outcome == CertifyOutcome::kStopped) {
      result_.status = stop_.status();
      return true;
    }
    if (!std::isfinite(result_.objective)) {  // NaN / Inf objective (e.g. overflowing data): no certificate
      result_.status = "diverged";
      return true;
    }
    const bool done = outcome == CertifyOutcome::kDone;
    if (newton_accepted && !done && ++newton_misses_ % 2 == 0) newton_interval_ *= 2;
    save_checkpoint(it);
    if (opt_.callback) {
      IterInfo info;
      info.iteration = it;
      info.objective = result_.objective;
      info.dual_objective = result_.dual_objective;
      info.gap = result_.gap;
      info.time = seconds_since(t0_);
      info.n_active = count_active();
      info.working_set = 2 * s_.p_ * s_.c_;  // every column is projected each iteration (no working sets yet)
      if (!stop_.call_callback(info)) {
        result_.status = "interrupted";
        return true;
      }
    }
    if (done) {
      result_.status = "converged";
      return true;
    }
    return false;
  }

  index_t count_active() const {
    index_t active = 0;
    for (index_t col = 0; col < s_.p_ * s_.c_; ++col)
      active += (column_norm(x_.V, col, s_.d_, s_.c_) > 0.0) + (column_norm(x_.W, col, s_.d_, s_.c_) > 0.0);
    return active;
  }

  // The certificate at pt (its history entry and the result's objective, bound and gap). allow_screen: the
  // cone projections (the oracle: every pattern, both signs) are skipped when this theta provably cannot
  // certify tol (see dual_value_bound); the history then keeps the best dual bound found so far, which stays
  // valid. With `stoppable` the oracle returns early on a stop (kStopped, nothing recorded).
  CertifyOutcome certify(const Point& pt, double penalty, index_t iteration, bool allow_screen,
                         bool stoppable = true) {
    // True-loss certificate at pt, in double (hinge: the smoothed gradient lies in the hinge conjugate's
    // domain, so it still gives a valid dual point of the true problem).
    const auto started = Clock::now();
    times_.lap(PhaseTimes::kOther);
    const double smoothed_loss = s_.loss_gradient_adjoint(pt.V, pt.W, mu_, cert_grad_, cert_G_, &cert_z_);
    const double true_loss = hinge_ ? loss_value(s_.loss_, cert_z_.data(), s_.y_.data(), s_.n_, s_.c_, 0.0, s_.w())
                                     : smoothed_loss;
    const double primal = true_loss + beta_ * penalty;
    times_.lap(PhaseTimes::kCertifyProducts);
    if (allow_screen && !hinge_ && screened_in_a_row_ + 1 < kFullCertificateEvery) {
      const double bound = s_.dual_value_bound(pt.V, pt.W, cert_grad_, cert_G_, beta_);
      if (relative_gap(primal, std::max(best_dual_, bound)) > opt_.tol) {
        record(iteration, primal, relative_gap(primal, best_dual_));
        last_certificate_full_ = false;
        ++screened_in_a_row_;
        return CertifyOutcome::kContinue;
      }
    }
    const double worst = s_.dual_constraint_max(cert_G_, opt_.cone_tol, beta_, stoppable ? &stop_ : nullptr);
    times_.lap(PhaseTimes::kCertifyOracle);
    if (stoppable && stop_.stopped()) return CertifyOutcome::kStopped;
    last_certificate_full_ = true;
    screened_in_a_row_ = 0;
    const double scale = worst > beta_ ? beta_ / worst : 1.0;
    std::vector<double> t(cert_grad_);
    for (double& v : t) v *= scale;
    const double dual = -loss_conjugate(s_.loss_, t.data(), s_.y_.data(), s_.n_, s_.c_, 0.0, s_.w());
    best_dual_ = std::max(best_dual_, dual);
    const double gap = relative_gap(primal, best_dual_);
    record(iteration, primal, gap);
    result_.max_dual_constraint = worst;
    full_certificate_seconds_ = seconds_since(started);
    // The certificate is of the true problem: once it holds, stop (shrinking mu further only loses it).
    if (gap <= opt_.tol) return CertifyOutcome::kDone;
    if (hinge_ && mu_ > 0.0) {
      const double smoothed_primal = smoothed_loss + beta_ * penalty;
      const double smoothed_dual = -loss_conjugate(s_.loss_, t.data(), s_.y_.data(), s_.n_, s_.c_, mu_, s_.w());
      if (kHinge.should_shrink(relative_gap(smoothed_primal, smoothed_dual), gap)) {
        mu_ = kHinge.next(mu_);
        return CertifyOutcome::kContinue;  // keep going on the sharper problem
      }
    }
    return CertifyOutcome::kContinue;
  }

  void record(index_t iteration, double primal, double gap) {
    result_.history.push_back({iteration, primal, best_dual_, gap, seconds_since(t0_), 0});
    result_.objective = primal;
    result_.dual_objective = best_dual_;
    result_.gap = gap;
  }

  // The point of the last check with its certificate: what a prompt stop returns (see finish).
  struct Checkpoint {
    bool valid = false;
    index_t iteration = 0;
    std::vector<double> V, W;
    double penalty = 0.0, objective = 0.0, dual = 0.0, gap = 0.0, max_dual_constraint = 0.0;
  };
  void save_checkpoint(index_t it) {
    checkpoint_.valid = true;
    checkpoint_.iteration = it;
    checkpoint_.V = x_.V;
    checkpoint_.W = x_.W;
    checkpoint_.penalty = penalty_x_;
    checkpoint_.objective = result_.objective;
    checkpoint_.dual = result_.dual_objective;
    checkpoint_.gap = result_.gap;
    // The oracle's value belongs to this point only when this check ran it.
    checkpoint_.max_dual_constraint =
        last_certificate_full_ ? result_.max_dual_constraint : std::numeric_limits<double>::quiet_NaN();
    stop_.set_iteration(it);
  }

  // The final certificate at x (also for stops between checks); a stop by the time limit or an interrupt
  // returns the last checkpoint instead when certifying x would take long (kFinalCertificateShare).
  void finish(index_t& it) {
    if (result_.history.empty() || result_.history.back().iteration != it || !last_certificate_full_) {
      const bool limited = result_.status == "time_limit" || result_.status == "interrupted";
      const double allowed = result_.status == "time_limit" ? kFinalCertificateShare * opt_.time_limit
                                                            : kInterruptCertificateSeconds;
      if (limited && checkpoint_.valid && full_certificate_seconds_ > allowed) {
        restore_checkpoint(it);
      } else {
        certify(x_, penalty_x_, it, false, false);
      }
    }
    result_.V.assign(static_cast<std::size_t>(m_), T(0));
    result_.W.assign(static_cast<std::size_t>(m_), T(0));
    for (index_t e = 0; e < m_; ++e) {
      result_.V[e] = static_cast<T>(x_.V[e]);
      result_.W[e] = static_cast<T>(x_.W[e]);
    }
    result_.max_violation = s_.relative_violation(result_.V.data(), result_.W.data());
    result_.kkt_residual = std::max(0.0, result_.gap);
    if (result_.status == "converged" && result_.max_violation > opt_.tol) result_.status = "max_iter";
    if (result_.status == "max_iter" && result_.gap <= opt_.tol && result_.max_violation <= opt_.tol)
      result_.status = "converged";
    if (!std::isfinite(result_.objective)) result_.status = "diverged";  // no certificate holds
    result_.n_active = count_active();
    result_.n_iter = it;
    result_.time = seconds_since(t0_);
    times_.lap(PhaseTimes::kOther);
    for (int p = 0; p < PhaseTimes::kCount; ++p) result_.timings[PhaseTimes::kNames[p]] = times_.seconds[p];
    result_.timings["total"] = result_.time;
  }

  void restore_checkpoint(index_t& it) {
    x_.V = std::move(checkpoint_.V);
    x_.W = std::move(checkpoint_.W);
    penalty_x_ = checkpoint_.penalty;
    it = checkpoint_.iteration;
    result_.objective = checkpoint_.objective;
    result_.dual_objective = checkpoint_.dual;
    result_.gap = checkpoint_.gap;
    result_.max_dual_constraint = checkpoint_.max_dual_constraint;
    while (!result_.history.empty() && result_.history.back().iteration > it) result_.history.pop_back();
  }

  const ReluSolver& s_;
  const double beta_;
  const ReluOptions& opt_;
  const Clock::time_point t0_;
  detail::StopControl stop_;
  const index_t m_, nc_;
  const bool hinge_;
  double mu_;
  PhaseTimes times_;
  ReluResult<T> result_;
  double lipschitz_ = 1.0, step_ = 1.0, max_step_ = kMaxStep, momentum_ = 1.0, penalty_x_ = 0.0;
  double best_dual_ = -std::numeric_limits<double>::infinity();
  Point x_, y_pt_, x_new_, y_next_;
  std::vector<T> diffT_, gradT_, GT_;
  std::vector<double> grad_, G_, xv_, xw_;
  std::vector<double> cert_grad_, cert_G_, cert_z_;
  bool last_certificate_full_ = false;
  index_t screened_in_a_row_ = 0;
  double full_certificate_seconds_ = 0.0;
  Checkpoint checkpoint_;
  // Ray Newton's schedule (maybe_ray_newton).
  std::vector<char> last_support_;
  int newton_rejections_ = 0;
  index_t newton_interval_ = 1, checks_since_newton_ = 0, newton_misses_ = 0;
};

template <class T>
ReluResult<T> ReluSolver<T>::solve(double beta, const ReluOptions& options, const T* V0, const T* W0) {
  CONVEXNN_CHECK(std::isfinite(beta) && beta >= 0.0, "beta must be finite and >= 0, got " << beta);
  CONVEXNN_CHECK(options.tol > 0.0, "tol must be > 0, got " << options.tol);
  CONVEXNN_CHECK(options.max_iter >= 1, "max_iter must be >= 1, got " << options.max_iter);
  CONVEXNN_CHECK(options.check_every >= 1, "check_every must be >= 1, got " << options.check_every);
  const auto t0 = Clock::now();
  projector_->reset_stats();
  Run run(*this, beta, options, t0);
  return run.execute(V0, W0);
}

template class ReluSolver<float>;
template class ReluSolver<double>;

}  // namespace convexnn
