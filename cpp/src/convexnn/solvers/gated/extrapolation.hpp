// Snapshots of iterates and the extrapolation weights computed from them: Anderson acceleration of BCD and
// celer's dual extrapolation (Massias, Gramfort & Salmon, "Celer: a Fast Solver for the Lasso with Dual
// Extrapolation", ICML 2018, Sec. 3).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "convexnn/core/common.hpp"
#include "convexnn/core/vec_ops.hpp"

namespace convexnn::gated {

// A ring of the last `slots` snapshots of a vector (oldest first through at()).
template <class V>
class SnapshotRing {
 public:
  void reset(int slots, index_t len) {
    slots_ = slots;
    len_ = len;
    buf_.assign(static_cast<std::size_t>(std::max(slots, 0)) * static_cast<std::size_t>(len), V(0));
    count_ = head_ = 0;
  }
  void push(const V* x) {
    if (slots_ <= 0) return;
    std::copy(x, x + len_, buf_.data() + static_cast<std::size_t>(head_) * len_);
    head_ = (head_ + 1) % slots_;
    count_ = std::min(count_ + 1, slots_);
  }
  void clear() { count_ = head_ = 0; }
  bool full() const { return slots_ > 1 && count_ == slots_; }
  int slots() const { return slots_; }
  index_t len() const { return len_; }
  const V* at(int k) const {  // k = 0 oldest, slots-1 newest
    const int idx = (head_ + k) % slots_;
    return buf_.data() + static_cast<std::size_t>(idx) * len_;
  }

 private:
  int slots_ = 0, count_ = 0, head_ = 0;
  index_t len_ = 0;
  std::vector<V> buf_;
};

// Solves the K x K system C w = 1 in place (Gaussian elimination with partial pivoting); false if singular.
inline bool solve_ones_system(int K, std::vector<double>& C, std::vector<double>& w) {
  w.assign(static_cast<std::size_t>(K), 1.0);
  for (int col = 0; col < K; ++col) {
    int piv = col;
    for (int r = col + 1; r < K; ++r)
      if (std::abs(C[r * K + col]) > std::abs(C[piv * K + col])) piv = r;
    if (std::abs(C[piv * K + col]) <= 1e-300) return false;
    if (piv != col) {
      for (int j = 0; j < K; ++j) std::swap(C[col * K + j], C[piv * K + j]);
      std::swap(w[col], w[piv]);
    }
    for (int r = col + 1; r < K; ++r) {
      const double f = C[r * K + col] / C[col * K + col];
      for (int j = col; j < K; ++j) C[r * K + j] -= f * C[col * K + j];
      w[r] -= f * w[col];
    }
  }
  for (int r = K - 1; r >= 0; --r) {
    double s = w[r];
    for (int j = r + 1; j < K; ++j) s -= C[r * K + j] * w[j];
    w[r] = s / C[r * K + r];
  }
  return true;
}

// Anderson / dual-extrapolation weights from a full ring s_0..s_K: with u_k = s_{k+1} - s_k (first `len`
// entries), solve (U^T U) w = 1 and return c = w / sum(w) (K weights for s_1..s_K). False if degenerate.
template <class V>
bool extrapolation_weights(const SnapshotRing<V>& ring, index_t len, std::vector<double>& cw) {
  const int K = ring.slots() - 1;
  if (K < 1 || !ring.full()) return false;
  std::vector<double> C(static_cast<std::size_t>(K * K));
  for (int a = 0; a < K; ++a)
    for (int b = a; b < K; ++b) {
      const V *a0 = ring.at(a), *a1 = ring.at(a + 1), *b0 = ring.at(b), *b1 = ring.at(b + 1);
      const double v = vec::chunked_sum(len, [&](index_t j) {
        return (static_cast<double>(a1[j]) - static_cast<double>(a0[j])) *
               (static_cast<double>(b1[j]) - static_cast<double>(b0[j]));
      });
      C[a * K + b] = C[b * K + a] = v;
    }
  double trace = 0.0;
  for (int a = 0; a < K; ++a) trace += C[a * K + a];
  if (!(trace > 0) || !std::isfinite(trace)) return false;
  for (int a = 0; a < K; ++a) C[a * K + a] += 1e-12 * trace;  // tiny ridge: the differences are nearly collinear
  std::vector<double> w;
  if (!solve_ones_system(K, C, w)) return false;
  double total = 0.0;
  for (double v : w) total += v;
  if (!std::isfinite(total) || std::abs(total) < 1e-300) return false;
  cw.resize(static_cast<std::size_t>(K));
  for (int k = 0; k < K; ++k) cw[k] = w[k] / total;
  for (double v : cw)
    if (!std::isfinite(v)) return false;
  return true;
}

// out[j] = sum_k cw[k] * ring.at(k+1)[offset + j] for j < len.
template <class V, class O>
void combine_snapshots(const SnapshotRing<V>& ring, const std::vector<double>& cw, index_t offset, index_t len,
                       O* out) {
  const int K = static_cast<int>(cw.size());
  vec::parallel_for(len, [&](index_t j) {
    double s = 0.0;
    for (int k = 0; k < K; ++k) s += cw[k] * static_cast<double>(ring.at(k + 1)[offset + j]);
    out[j] = static_cast<O>(s);
  });
}

}  // namespace convexnn::gated
