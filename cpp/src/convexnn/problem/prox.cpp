#include "convexnn/problem/prox.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace convexnn {

Groups parse_groups(const std::string& name) {
  if (name == "output") return Groups::output;
  if (name == "neuron") return Groups::neuron;
  fail_precondition("groups must be 'output' or 'neuron', got '" + name + "'");
}

const char* groups_name(Groups g) { return g == Groups::output ? "output" : "neuron"; }

template <class T>
double block_penalty(const T* u, index_t d, index_t c, Groups g) {
  if (g == Groups::neuron || c == 1) {
    double s = 0.0;
    for (index_t k = 0; k < d * c; ++k) s += static_cast<double>(u[k]) * static_cast<double>(u[k]);
    return std::sqrt(s);
  }
  double total = 0.0;
  for (index_t k = 0; k < c; ++k) {
    double s = 0.0;
    for (index_t j = 0; j < d; ++j) {
      const double v = static_cast<double>(u[j * c + k]);
      s += v * v;
    }
    total += std::sqrt(s);
  }
  return total;
}

template <class T>
double block_dual_norm(const T* g, index_t d, index_t c, Groups g_kind) {
  if (g_kind == Groups::neuron || c == 1) return block_penalty(g, d, c, Groups::neuron);
  double best = 0.0;
  for (index_t k = 0; k < c; ++k) {
    double s = 0.0;
    for (index_t j = 0; j < d; ++j) {
      const double v = static_cast<double>(g[j * c + k]);
      s += v * v;
    }
    best = std::max(best, s);
  }
  return std::sqrt(best);
}

template <class T>
bool block_soft_threshold(T* u, index_t d, index_t c, Groups g, double thresh) {
  bool nonzero = false;
  if (g == Groups::neuron || c == 1) {
    const double nrm = block_penalty(u, d, c, Groups::neuron);
    const double f = nrm > thresh ? 1.0 - thresh / nrm : 0.0;
    for (index_t k = 0; k < d * c; ++k) u[k] = static_cast<T>(f * static_cast<double>(u[k]));
    return f > 0.0;
  }
  for (index_t k = 0; k < c; ++k) {
    double s = 0.0;
    for (index_t j = 0; j < d; ++j) s += static_cast<double>(u[j * c + k]) * static_cast<double>(u[j * c + k]);
    const double nrm = std::sqrt(s);
    const double f = nrm > thresh ? 1.0 - thresh / nrm : 0.0;
    for (index_t j = 0; j < d; ++j) u[j * c + k] = static_cast<T>(f * static_cast<double>(u[j * c + k]));
    nonzero = nonzero || f > 0.0;
  }
  return nonzero;
}

double secular_norm(const double* w, const double* a, index_t m, double beta) {
  double wsum = 0.0, amax = 0.0;
  for (index_t j = 0; j < m; ++j) {
    wsum += w[j];
    if (w[j] > 0) amax = std::max(amax, a[j]);
  }
  // S(nu) = sum_j w_j / (a_j nu + beta)^2 is decreasing; we want S = 1, i.e. chi(nu) = S^{-1/2} - 1 = 0.
  auto eval = [&](double nu, double* dchi) {
    double S = 0.0, dS = 0.0;
    for (index_t j = 0; j < m; ++j) {
      if (w[j] <= 0) continue;
      const double den = a[j] * nu + beta;
      const double q = w[j] / (den * den);
      S += q;
      dS -= 2.0 * q * a[j] / den;
    }
    const double r = 1.0 / std::sqrt(S);
    if (dchi) *dchi = -0.5 * r * r * r * dS;
    return r - 1.0;
  };
  // Bracket: S(nu) >= wsum / (amax nu + beta)^2 gives the lower end.
  double lo = std::max(0.0, (std::sqrt(wsum) - beta) / amax);
  double hi = std::max(2.0 * lo, 1e-300);
  for (int it = 0; it < 2100 && eval(hi, nullptr) < 0; ++it) hi *= 2.0;
  double nu = lo;
  for (int it = 0; it < 200; ++it) {
    double dchi = 0.0;
    const double f = eval(nu, &dchi);
    if (f == 0.0) return nu;
    if (f < 0)
      lo = std::max(lo, nu);
    else
      hi = std::min(hi, nu);
    double next = (dchi > 0) ? nu - f / dchi : 0.5 * (lo + hi);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (std::abs(next - nu) <= 1e-15 * std::max(next, 1e-300) || hi - lo <= 1e-15 * hi) return next;
    nu = next;
  }
  return nu;
}

bool metric_group_solve(const double* B, const double* h, index_t d, index_t c, Groups g, double s, double beta,
                        double h_floor, double* V) {
  thread_local std::vector<double> a, w;
  a.resize(static_cast<std::size_t>(d));
  w.resize(static_cast<std::size_t>(d));
  for (index_t j = 0; j < d; ++j) a[j] = h[j] > h_floor ? s * h[j] : 0.0;
  auto solve_group = [&](index_t col_begin, index_t col_end) {
    // w_j = sum over the group's columns of B_jk^2 (flat directions dropped).
    double total = 0.0;
    for (index_t j = 0; j < d; ++j) {
      double acc = 0.0;
      if (a[j] > 0)
        for (index_t k = col_begin; k < col_end; ++k) acc += B[j * c + k] * B[j * c + k];
      w[j] = acc;
      total += acc;
    }
    if (total <= beta * beta) {
      for (index_t j = 0; j < d; ++j)
        for (index_t k = col_begin; k < col_end; ++k) V[j * c + k] = 0.0;
      return false;
    }
    if (beta <= 0) {  // plain (pseudo-inverse) Newton step
      for (index_t j = 0; j < d; ++j)
        for (index_t k = col_begin; k < col_end; ++k) V[j * c + k] = a[j] > 0 ? B[j * c + k] / a[j] : 0.0;
      return true;
    }
    const double nu = secular_norm(w.data(), a.data(), d, beta);
    const double lam = beta / nu;
    for (index_t j = 0; j < d; ++j)
      for (index_t k = col_begin; k < col_end; ++k) V[j * c + k] = a[j] > 0 ? B[j * c + k] / (a[j] + lam) : 0.0;
    return true;
  };
  if (g == Groups::neuron || c == 1) return solve_group(0, c);
  bool nonzero = false;
  for (index_t k = 0; k < c; ++k) nonzero = solve_group(k, k + 1) || nonzero;
  return nonzero;
}

template double block_penalty<float>(const float*, index_t, index_t, Groups);
template double block_penalty<double>(const double*, index_t, index_t, Groups);
template double block_dual_norm<float>(const float*, index_t, index_t, Groups);
template double block_dual_norm<double>(const double*, index_t, index_t, Groups);
template bool block_soft_threshold<float>(float*, index_t, index_t, Groups, double);
template bool block_soft_threshold<double>(double*, index_t, index_t, Groups, double);

}  // namespace convexnn
