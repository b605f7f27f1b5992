// Exact enumeration of the regions of a central hyperplane arrangement (see enumerate.hpp for the method).
#include "convexnn/patterns/enumerate.hpp"

#include <lapacke.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace convexnn {

namespace {

using Word = PatternSet::Word;

constexpr double kPi = 3.14159265358979323846264338327950288;
// A row whose part inside the kept space is below this fraction of its norm is treated as a zero row.
constexpr double kInSpaceTol = 1e-6;
// Unit normals (sign fixed) that agree to this (per coordinate) define the same hyperplane.
constexpr double kSameHyperplaneTol = 1e-12;
// Gram-Schmidt residual (of unit vectors) below which a normal counts as dependent on the previous ones.
constexpr double kIndependentTol = 1e-7;
// A hyperplane with |h^T v| below this passes through the vertex v (unit vectors).
constexpr double kThroughVertexTol = 1e-10;
// Candidate directions closer than this to some hyperplane (unit vectors) are not trusted.
constexpr double kMinMargin = 1e-13;

index_t words_for(index_t n) { return (n + PatternSet::kWordBits - 1) / PatternSet::kWordBits; }

void check_bytes(double bytes, const char* what) {
  if (bytes > static_cast<double>(PatternSet::kMaxBytes)) {
    std::ostringstream os;
    os << what << " would need " << bytes << " bytes, more than the limit of " << PatternSet::kMaxBytes
       << " bytes (PatternSet::kMaxBytes)";
    throw std::length_error(os.str());
  }
}

double dot(const double* a, const double* b, index_t m) {
  double s = 0.0;
  for (index_t i = 0; i < m; ++i) s += a[i] * b[i];
  return s;
}

// Orthonormalizes v (length m) against the rows of Q (count x m) in place, twice (classical Gram-Schmidt with
// re-orthogonalization); coefficients are added to coef (count entries) when given. Returns the residual norm.
double orthogonalize(double* v, const double* Q, index_t count, index_t m, double* coef) {
  for (int pass = 0; pass < 2; ++pass) {
    for (index_t l = 0; l < count; ++l) {
      const double c = dot(Q + l * m, v, m);
      for (index_t i = 0; i < m; ++i) v[i] -= c * Q[l * m + i];
      if (coef != nullptr) coef[l] += c;
    }
  }
  return std::sqrt(dot(v, v, m));
}

// Result of the rank reduction: directions u in R^r, gates g = basis * u, hyperplanes with unit normals.
struct Reduction {
  index_t r = 0;
  index_t h = 0;
  index_t n_zero = 0;
  std::vector<double> basis;    // d x r, row-major
  std::vector<double> normals;  // h x r, row-major, unit rows
};

template <class T>
Reduction reduce(const MatrixView<T>& X) {
  CONVEXNN_CHECK(X.data != nullptr || X.rows * X.cols == 0, "X has no data");
  CONVEXNN_CHECK(X.rows >= 1, "X must have at least one row (sample), got n = " << X.rows);
  CONVEXNN_CHECK(X.cols >= 1, "X must have at least one column, got d = " << X.cols);
  const index_t n = X.rows, d = X.cols;
  check_bytes(static_cast<double>(n) * static_cast<double>(d) * 8.0, "the float64 copy of X");
  double max_abs = 0.0;
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < d; ++j) {
      const double x = static_cast<double>(X(i, j));
      CONVEXNN_CHECK(std::isfinite(x), "X must not contain NaN or Inf, got X[" << i << ", " << j << "] = " << x);
      max_abs = std::max(max_abs, std::abs(x));
    }
  Reduction red;
  if (max_abs == 0.0) {
    red.n_zero = n;
    return red;
  }
  // Column-major copy with unit-norm columns (after a global scaling that keeps the norms finite). Scaling a
  // column changes no pattern (g -> S g) and keeps badly scaled features from deciding the rank.
  std::vector<double> A(static_cast<std::size_t>(n * d)), col_scale(static_cast<std::size_t>(d), 0.0);
  for (index_t j = 0; j < d; ++j) {
    double* a = A.data() + j * n;
    double s = 0.0;
    for (index_t i = 0; i < n; ++i) {
      a[i] = static_cast<double>(X(i, j)) / max_abs;
      s += a[i] * a[i];
    }
    s = std::sqrt(s);
    col_scale[j] = s;
    if (s > 0.0)
      for (index_t i = 0; i < n; ++i) a[i] /= s;
  }
  std::vector<double> row_sq(static_cast<std::size_t>(n), 0.0);  // squared norms of the equilibrated rows
  for (index_t j = 0; j < d; ++j)
    for (index_t i = 0; i < n; ++i) row_sq[i] += A[j * n + i] * A[j * n + i];

  // Column-pivoted QR (LAPACK dgeqp3): A P = Q R. Unlike an eigen-decomposition of X^T X it does not square
  // the condition number, so the rank decision works at the level of singular values.
  if (n > std::numeric_limits<lapack_int>::max() || d > std::numeric_limits<lapack_int>::max())
    throw std::length_error("enumerate_patterns: X is too large for the 32-bit LAPACK integers");
  std::vector<lapack_int> jpvt(static_cast<std::size_t>(d), 0);
  const index_t g = std::min(n, d);
  std::vector<double> tau(static_cast<std::size_t>(g));
  int info = scipy_LAPACKE_dgeqp3(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(d), A.data(),
                                  static_cast<lapack_int>(n), jpvt.data(), tau.data());
  if (info != 0) throw std::runtime_error("enumerate_patterns: the pivoted QR factorization of X failed");
  // numpy.linalg.matrix_rank's rule with the input's precision: |R_ii| > max(n, d) * eps(T) * |R_00|.
  const double tol = static_cast<double>(std::max(n, d)) * std::numeric_limits<T>::epsilon() * std::abs(A[0]);
  index_t r = 0;
  while (r < g && std::abs(A[r * n + r]) > tol) ++r;
  std::vector<double> R(static_cast<std::size_t>(r * d), 0.0);  // leading r rows of R (pivoted columns)
  for (index_t i = 0; i < r; ++i)
    for (index_t j = i; j < d; ++j) R[i * d + j] = A[j * n + i];
  if (r > 0) {
    info = scipy_LAPACKE_dorgqr(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(r),
                                static_cast<lapack_int>(r), A.data(), static_cast<lapack_int>(n), tau.data());
    if (info != 0) throw std::runtime_error("enumerate_patterns: forming Q of the QR factorization failed");
  }
  // Y = Q_r (n x r, orthonormal columns): the patterns of X are those of Y. A direction u lifts to the gate
  // g = S^{-1} P [R11^{-1} u; 0], for which x_k^T g = y_k^T u (the discarded rows of R meet only zeros).
  std::vector<double> Y(static_cast<std::size_t>(n * r)), B(static_cast<std::size_t>(d * r), 0.0);
  for (index_t k = 0; k < n; ++k)
    for (index_t c = 0; c < r; ++c) Y[k * r + c] = A[c * n + k];
  std::vector<double> Rinv(static_cast<std::size_t>(r * r), 0.0);  // upper triangular inverse of R11
  for (index_t c = 0; c < r; ++c)
    for (index_t i = c; i >= 0; --i) {
      double acc = (i == c) ? 1.0 : 0.0;
      for (index_t l = i + 1; l <= c; ++l) acc -= R[i * d + l] * Rinv[l * r + c];
      Rinv[i * r + c] = acc / R[i * d + i];
    }
  for (index_t i = 0; i < r; ++i) {
    const index_t col = jpvt[i] - 1;  // LAPACK's pivots are 1-based
    for (index_t c = 0; c < r; ++c) B[col * r + c] = Rinv[i * r + c] / col_scale[col];
  }

  // Distinct hyperplanes: unit normals with a fixed sign, keyed by their rounded coordinates.
  std::map<std::vector<long long>, index_t> seen;
  std::vector<double> normals;
  std::vector<double> h(static_cast<std::size_t>(r));
  std::vector<long long> key(static_cast<std::size_t>(r));
  const double sign_pick = 0.5 / std::sqrt(static_cast<double>(std::max<index_t>(r, 1)));
  for (index_t k = 0; k < n; ++k) {
    const double* yk = Y.data() + k * r;
    const double full = row_sq[k];
    double kept_energy = 0.0;  // ||y_k R_top||^2: the part of the (equilibrated) row inside the kept space
    for (index_t j = 0; j < d; ++j) {
      double z = 0.0;
      for (index_t c = 0; c <= std::min(j, r - 1); ++c) z += yk[c] * R[c * d + j];
      kept_energy += z * z;
    }
    const double y_norm = std::sqrt(dot(yk, yk, r));
    if (full == 0.0 || kept_energy < kInSpaceTol * kInSpaceTol * full || y_norm == 0.0) {
      ++red.n_zero;
      continue;
    }
    double sign = 1.0;
    for (index_t c = 0; c < r; ++c)
      if (std::abs(yk[c]) / y_norm > sign_pick) {
        sign = yk[c] > 0 ? 1.0 : -1.0;
        break;
      }
    for (index_t c = 0; c < r; ++c) {
      h[c] = sign * yk[c] / y_norm;
      key[c] = std::llround(h[c] / kSameHyperplaneTol);
    }
    if (seen.emplace(key, static_cast<index_t>(seen.size())).second) normals.insert(normals.end(), h.begin(), h.end());
  }
  index_t n_h = static_cast<index_t>(seen.size());

  // Make the arrangement essential: if the normals span less than R^r (rows dropped as numerically zero),
  // restrict to their span.
  if (n_h > 0) {
    std::vector<double> Q;  // rows: orthonormal basis of span(normals)
    std::vector<double> v(static_cast<std::size_t>(r));
    for (index_t k = 0; k < n_h && static_cast<index_t>(Q.size()) < r * r; ++k) {
      std::copy(normals.begin() + k * r, normals.begin() + (k + 1) * r, v.begin());
      const double res = orthogonalize(v.data(), Q.data(), static_cast<index_t>(Q.size()) / r, r, nullptr);
      if (res > kIndependentTol) {
        for (double& x : v) x /= res;
        Q.insert(Q.end(), v.begin(), v.end());
      }
    }
    const index_t r2 = static_cast<index_t>(Q.size()) / r;
    if (r2 < r) {
      std::vector<double> N2(static_cast<std::size_t>(n_h * r2)), B2(static_cast<std::size_t>(d * r2));
      for (index_t k = 0; k < n_h; ++k) {
        for (index_t c = 0; c < r2; ++c) N2[k * r2 + c] = dot(normals.data() + k * r, Q.data() + c * r, r);
        const double nn = std::sqrt(dot(N2.data() + k * r2, N2.data() + k * r2, r2));
        for (index_t c = 0; c < r2; ++c) N2[k * r2 + c] /= nn;
      }
      for (index_t i = 0; i < d; ++i)
        for (index_t c = 0; c < r2; ++c) B2[i * r2 + c] = dot(B.data() + i * r, Q.data() + c * r, r);
      normals.swap(N2);
      B.swap(B2);
      r = r2;
    }
  } else {
    r = 0;
  }
  red.r = r;
  red.h = n_h;
  red.basis = std::move(B);
  red.normals = std::move(normals);
  return red;
}

std::vector<double> regions_of(index_t m, const double* H, index_t h, bool parallel);

// r = 2: the 2h boundary rays sorted by angle; one region between consecutive rays (direction: the bisector).
std::vector<double> regions_2d(const double* H, index_t h) {
  if (h == 1) return {H[0], H[1], -H[0], -H[1]};
  struct Ray {
    double angle, x, y;
  };
  std::vector<Ray> rays;
  rays.reserve(static_cast<std::size_t>(2 * h));
  for (index_t k = 0; k < h; ++k) {
    const double x = -H[2 * k + 1], y = H[2 * k];
    rays.push_back({std::atan2(y, x), x, y});
    rays.push_back({std::atan2(-y, -x), -x, -y});
  }
  std::sort(rays.begin(), rays.end(), [](const Ray& a, const Ray& b) { return a.angle < b.angle; });
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(4 * h));
  const index_t nr = static_cast<index_t>(rays.size());
  for (index_t i = 0; i < nr; ++i) {
    const Ray& a = rays[i];
    const Ray& b = rays[(i + 1) % nr];
    double gap = b.angle - a.angle;
    if (i + 1 == nr) gap += 2.0 * kPi;
    if (gap <= 1e-12) continue;  // coincident rays (hyperplanes equal to rounding): no region between them
    double ux = a.x + b.x, uy = a.y + b.y;
    const double un = std::hypot(ux, uy);
    if (un < 1e-8) {  // gap of pi (cannot happen with two distinct lines, kept for safety)
      ux = -a.y;
      uy = a.x;
    } else {
      ux /= un;
      uy /= un;
    }
    out.push_back(ux);
    out.push_back(uy);
  }
  return out;
}

// Candidate directions around the vertex (1-dim intersection) of the hyperplanes T[0..m-2], appended to
// `out` (count x m, unit rows); nothing when those hyperplanes are dependent, or when T is not the
// lexicographically first basis among the hyperplanes through the vertex (that basis visits it).
void vertex_candidates(index_t m, const double* H, index_t h, const index_t* T, std::vector<double>& out) {
  const index_t q = m - 1;
  std::vector<double> Q(static_cast<std::size_t>(q * m)), R(static_cast<std::size_t>(q * q), 0.0);
  for (index_t i = 0; i < q; ++i) {
    double* v = Q.data() + i * m;
    std::copy(H + T[i] * m, H + (T[i] + 1) * m, v);
    const double res = orthogonalize(v, Q.data(), i, m, R.data() + i * q);
    if (res <= kIndependentTol) return;
    R[i * q + i] = res;
    for (index_t c = 0; c < m; ++c) v[c] /= res;
  }
  // The vertex: the unit vector orthogonal to span(Q), from the coordinate axis farthest from that span.
  std::vector<double> v(static_cast<std::size_t>(m));
  index_t best = 0;
  double best_res = -1.0;
  for (index_t j = 0; j < m; ++j) {
    double inside = 0.0;
    for (index_t l = 0; l < q; ++l) inside += Q[l * m + j] * Q[l * m + j];
    if (1.0 - inside > best_res) {
      best_res = 1.0 - inside;
      best = j;
    }
  }
  std::fill(v.begin(), v.end(), 0.0);
  v[best] = 1.0;
  const double vn = orthogonalize(v.data(), Q.data(), q, m, nullptr);
  for (double& x : v) x /= vn;

  // Hyperplanes through the vertex, and the distance to the nearest other one.
  std::vector<index_t> through;
  double margin_others = std::numeric_limits<double>::infinity();
  for (index_t k = 0, t = 0; k < h; ++k) {
    const bool in_T = t < q && T[t] == k;
    if (in_T) ++t;
    const double c = std::abs(dot(H + k * m, v.data(), m));
    if (in_T || c <= kThroughVertexTol)
      through.push_back(k);
    else
      margin_others = std::min(margin_others, c);
  }
  const index_t s = static_cast<index_t>(through.size());
  if (s > q) {
    // Visit a degenerate vertex once: only from the greedy (lexicographically first) basis of `through`.
    std::vector<double> G;
    std::vector<double> w(static_cast<std::size_t>(m));
    index_t picked = 0;
    for (index_t k : through) {
      std::copy(H + k * m, H + (k + 1) * m, w.begin());
      const double res = orthogonalize(w.data(), G.data(), picked, m, nullptr);
      if (res <= kIndependentTol) continue;
      if (T[picked] != k) return;
      for (double& x : w) x /= res;
      G.insert(G.end(), w.begin(), w.end());
      if (++picked == q) break;
    }
    if (picked < q) return;
  }
  const double t_step = 0.5 * std::min(margin_others, 1.0);

  // Interior directions of the local regions (in v^perp = span(Q)), as unit vectors of R^m.
  std::vector<double> local;
  if (s == q) {
    // Orthant arrangement: the dual basis a_j (h_{T_i}^T a_j = delta_ij) is Q^T R^{-1}; directions sum_j +-a_j.
    std::vector<double> Cinv(static_cast<std::size_t>(q * q), 0.0);  // R C = I, R lower triangular
    for (index_t j = 0; j < q; ++j)
      for (index_t i = j; i < q; ++i) {
        double acc = (i == j) ? 1.0 : 0.0;
        for (index_t l = j; l < i; ++l) acc -= R[i * q + l] * Cinv[l * q + j];
        Cinv[i * q + j] = acc / R[i * q + i];
      }
    std::vector<double> A(static_cast<std::size_t>(q * m), 0.0);  // rows a_j
    for (index_t j = 0; j < q; ++j)
      for (index_t l = 0; l < q; ++l)
        for (index_t c = 0; c < m; ++c) A[j * m + c] += Cinv[l * q + j] * Q[l * m + c];
    const index_t combos = index_t(1) << q;
    local.assign(static_cast<std::size_t>(combos * m), 0.0);
    for (index_t bits = 0; bits < combos; ++bits) {
      double* w = local.data() + bits * m;
      for (index_t j = 0; j < q; ++j) {
        const double sj = ((bits >> j) & 1) ? -1.0 : 1.0;
        for (index_t c = 0; c < m; ++c) w[c] += sj * A[j * m + c];
      }
      const double wn = std::sqrt(dot(w, w, m));
      for (index_t c = 0; c < m; ++c) w[c] /= wn;
    }
  } else {
    // Local arrangement of the hyperplanes through v, in the coordinates of the orthonormal basis Q.
    std::vector<double> Hloc(static_cast<std::size_t>(s * q));
    for (index_t i = 0; i < s; ++i) {
      double* hl = Hloc.data() + i * q;
      for (index_t l = 0; l < q; ++l) hl[l] = dot(Q.data() + l * m, H + through[i] * m, m);
      const double nn = std::sqrt(dot(hl, hl, q));
      for (index_t l = 0; l < q; ++l) hl[l] /= nn;
    }
    const std::vector<double> wloc = regions_of(q, Hloc.data(), s, false);
    const index_t count = static_cast<index_t>(wloc.size()) / q;
    local.assign(static_cast<std::size_t>(count * m), 0.0);
    for (index_t i = 0; i < count; ++i) {
      double* w = local.data() + i * m;
      for (index_t l = 0; l < q; ++l)
        for (index_t c = 0; c < m; ++c) w[c] += wloc[i * q + l] * Q[l * m + c];
      const double wn = std::sqrt(dot(w, w, m));
      for (index_t c = 0; c < m; ++c) w[c] /= wn;
    }
  }
  const index_t n_local = static_cast<index_t>(local.size()) / m;
  for (double sigma : {1.0, -1.0})
    for (index_t i = 0; i < n_local; ++i) {
      const double* w = local.data() + i * m;
      const double un = std::sqrt(1.0 + t_step * t_step);  // v and w are orthogonal unit vectors
      for (index_t c = 0; c < m; ++c) out.push_back((sigma * v[c] + t_step * w[c]) / un);
    }
}

// Sign vector (bit k = 1[h_k^T u > 0]) and margin min_k |h_k^T u| of a direction.
double sign_words(const double* H, index_t h, index_t m, const double* u, Word* words) {
  const index_t W = words_for(h);
  std::fill(words, words + W, Word(0));
  double margin = std::numeric_limits<double>::infinity();
  for (index_t k = 0; k < h; ++k) {
    const double z = dot(H + k * m, u, m);
    margin = std::min(margin, std::abs(z));
    words[k / PatternSet::kWordBits] |= static_cast<Word>(z > 0.0) << (k % PatternSet::kWordBits);
  }
  return margin;
}

// One unit interior direction per region of the essential central arrangement of the h hyperplanes with
// unit normals H (h x m) in R^m, as rows of the result (count x m), in a deterministic order.
std::vector<double> regions_of(index_t m, const double* H, index_t h, bool parallel) {
  if (m == 1) return {1.0, -1.0};
  if (m == 2) return regions_2d(H, h);
  const index_t q = m - 1;
  const index_t W = words_for(h);
  // Group candidates by sign vector: a PatternSet over the h hyperplanes whose "gates" are the first candidates.
  PatternSetBuilder groups(h, m, true);
  std::vector<double> sums;

  // (m-1)-subsets in lexicographic order, processed in batches (parallel inside a batch, merged in order).
  const index_t batch_size = std::max<index_t>(16, (index_t(1) << 16) >> std::min<index_t>(q + 1, 12));
  std::vector<index_t> comb(static_cast<std::size_t>(q));
  std::iota(comb.begin(), comb.end(), 0);
  bool more = h >= q;
  struct Out {
    std::vector<double> u;
    std::vector<Word> words;
  };
  std::vector<index_t> batch;
  std::vector<Out> outs;
  while (more) {
    batch.clear();
    while (more && static_cast<index_t>(batch.size()) < batch_size * q) {
      batch.insert(batch.end(), comb.begin(), comb.end());
      // Next combination.
      index_t i = q - 1;
      while (i >= 0 && comb[i] == h - q + i) --i;
      if (i < 0) {
        more = false;
      } else {
        ++comb[i];
        for (index_t j = i + 1; j < q; ++j) comb[j] = comb[j - 1] + 1;
      }
    }
    const index_t nb = static_cast<index_t>(batch.size()) / q;
    outs.assign(static_cast<std::size_t>(nb), Out{});
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(nb));
#pragma omp parallel for schedule(dynamic, 8) if (parallel && nb > 8)
    for (index_t b = 0; b < nb; ++b) {
      try {
        std::vector<double> cand;
        vertex_candidates(m, H, h, batch.data() + b * q, cand);
        const index_t nc = static_cast<index_t>(cand.size()) / m;
        Out& o = outs[b];
        o.u.reserve(cand.size());
        o.words.resize(static_cast<std::size_t>(nc * W));
        index_t kept = 0;
        for (index_t c = 0; c < nc; ++c) {
          const double* u = cand.data() + c * m;
          if (sign_words(H, h, m, u, o.words.data() + kept * W) <= kMinMargin) continue;
          o.u.insert(o.u.end(), u, u + m);
          ++kept;
        }
        o.words.resize(static_cast<std::size_t>(kept * W));
      } catch (...) {
        errors[b] = std::current_exception();
      }
    }
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
    for (const Out& o : outs) {
      const index_t nc = static_cast<index_t>(o.u.size()) / m;
      for (index_t c = 0; c < nc; ++c) {
        const double* u = o.u.data() + c * m;
        index_t id = groups.find(o.words.data() + c * W);
        if (id < 0) {
          id = groups.append(o.words.data() + c * W, u);
          sums.resize(static_cast<std::size_t>((id + 1) * m), 0.0);
        }
        for (index_t i = 0; i < m; ++i) sums[id * m + i] += u[i];
      }
    }
  }

  // Each region's direction: the normalized mean of its candidates when it keeps the region's signs.
  const index_t n_regions = groups.size();
  std::vector<double> result(static_cast<std::size_t>(n_regions * m));
  std::vector<Word> check(static_cast<std::size_t>(W));
  for (index_t id = 0; id < n_regions; ++id) {
    double* u = result.data() + id * m;
    const double* s = sums.data() + id * m;
    const double sn = std::sqrt(dot(s, s, m));
    bool ok = sn > 0.0;
    if (ok) {
      for (index_t i = 0; i < m; ++i) u[i] = s[i] / sn;
      ok = sign_words(H, h, m, u, check.data()) > kMinMargin && std::equal(check.begin(), check.end(), groups.mask(id));
    }
    if (!ok) std::copy(groups.gate(id), groups.gate(id) + m, u);
  }
  return result;
}

}  // namespace

std::uint64_t cover_count(index_t n_hyperplanes, index_t rank) {
  CONVEXNN_CHECK(n_hyperplanes >= 0 && rank >= 0,
                 "cover_count needs n, r >= 0, got n = " << n_hyperplanes << ", r = " << rank);
  if (n_hyperplanes == 0 || rank == 0) return 1;
  using u128 = unsigned __int128;
  const u128 max64 = std::numeric_limits<std::uint64_t>::max();
  const u128 N = static_cast<u128>(n_hyperplanes - 1);
  u128 total = 0, c = 1;  // c = C(N, k)
  for (index_t k = 0; k < rank && static_cast<u128>(k) <= N; ++k) {
    total += c;
    if (2 * total > max64) return std::numeric_limits<std::uint64_t>::max();
    c = c * (N - static_cast<u128>(k)) / static_cast<u128>(k + 1);  // exact: C(N,k) (N-k) / (k+1) = C(N,k+1)
  }
  return static_cast<std::uint64_t>(2 * total);
}

template <class T>
ArrangementSummary summarize_arrangement(MatrixView<T> X) {
  const Reduction red = reduce(X);
  ArrangementSummary s;
  s.rank = red.r;
  s.n_hyperplanes = red.h;
  s.n_zero_rows = red.n_zero;
  s.region_bound = cover_count(red.h, red.r);
  return s;
}

template <class T>
std::uint64_t estimate_region_count(MatrixView<T> X) {
  return summarize_arrangement(X).region_bound;
}

template <class T>
PatternSet enumerate_patterns(MatrixView<T> X, std::uint64_t max_patterns) {
  const Reduction red = reduce(X);
  const std::uint64_t bound = cover_count(red.h, red.r);
  if (bound > max_patterns) {
    std::ostringstream os;
    os << "enumerate_patterns: X's arrangement may have up to " << bound << " regions (Cover's bound for " << red.h
       << " distinct hyperplanes in rank " << red.r << "), more than max_patterns = " << max_patterns
       << "; raise max_patterns or sample patterns instead";
    throw std::length_error(os.str());
  }
  const index_t d = X.cols, r = red.r;
  if (r == 0) {  // X == 0: one region, every sample active
    std::vector<double> e1(static_cast<std::size_t>(d), 0.0);
    e1[0] = 1.0;
    return PatternSet::from_gates(X, e1.data(), 1, true, true);
  }
  const std::vector<double> dirs = regions_of(r, red.normals.data(), red.h, true);
  const index_t count = static_cast<index_t>(dirs.size()) / r;
  check_bytes(static_cast<double>(count) * static_cast<double>(d) * 8.0, "the enumerated gates");
  std::vector<double> G(static_cast<std::size_t>(count * d));
  for (index_t p = 0; p < count; ++p) {
    double* g = G.data() + p * d;
    for (index_t i = 0; i < d; ++i) g[i] = dot(red.basis.data() + i * r, dirs.data() + p * r, r);
    const double gn = std::sqrt(dot(g, g, d));
    for (index_t i = 0; i < d; ++i) g[i] /= gn;
  }
  return PatternSet::from_gates(X, G.data(), count, true, true);
}

#define CONVEXNN_INSTANTIATE_ENUMERATE(T)                              \
  template ArrangementSummary summarize_arrangement<T>(MatrixView<T>); \
  template std::uint64_t estimate_region_count<T>(MatrixView<T>);      \
  template PatternSet enumerate_patterns<T>(MatrixView<T>, std::uint64_t);

CONVEXNN_INSTANTIATE_ENUMERATE(float)
CONVEXNN_INSTANTIATE_ENUMERATE(double)

#undef CONVEXNN_INSTANTIATE_ENUMERATE

}  // namespace convexnn
