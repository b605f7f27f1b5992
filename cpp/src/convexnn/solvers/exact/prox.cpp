// The exact cone-norm prox of every block column (a batched projection onto its pattern's cone, then the
// group shrinkage) and the dual-constraint oracle of the certificate (the largest cone projection of +-G).
#include <algorithm>
#include <cmath>
#include <vector>

#include "convexnn/core/blas.hpp"
#include "convexnn/solvers/exact/run.hpp"

namespace convexnn {

using exact::gather_column;
using exact::kProxChunk;

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

#define CONVEXNN_EXACT_PROX(T)                                                                                    \
  template double ReluSolver<T>::prox_columns(const std::vector<double>&, double, double, SlotKind,              \
                                              std::vector<double>&, Stop*) const;                                 \
  template double ReluSolver<T>::dual_constraint_max(const std::vector<double>&, double, double, Stop*) const;
CONVEXNN_EXACT_PROX(float)
CONVEXNN_EXACT_PROX(double)
#undef CONVEXNN_EXACT_PROX

}  // namespace convexnn
