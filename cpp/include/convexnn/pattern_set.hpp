// Bit-packed sign patterns D_i = diag(1[X g_i >= 0]) of a hyperplane arrangement, with their gates.
#pragma once

#include <cstdint>
#include <vector>

#include "convexnn/common.hpp"

namespace convexnn {

// Masks are stored pattern-major: pattern i owns words [i*W, (i+1)*W), W = ceil(n / 64); bit (k % 64) of
// word (k / 64) is 1[x_k^T g_i >= 0]. Bits past n are zero. Gates are kept in float64, gate-major
// (gate i = gates[i*d .. i*d+d)), one per kept pattern and in the same order.
class PatternSet {
 public:
  static constexpr index_t kWordBits = 64;
  using Word = std::uint64_t;

  PatternSet() = default;

  // Masks of the given gates (gate-major, n_gates x d) on X (n x d). With `deduplicate` identical masks
  // are merged (first occurrence kept, by hashing); with `drop_zero` the all-zero mask is dropped.
  template <class T>
  static PatternSet from_gates(MatrixView<T> X, const double* gates, index_t n_gates, bool deduplicate = true,
                               bool drop_zero = true);

  index_t n_samples() const { return n_; }
  index_t dim() const { return d_; }
  index_t n_patterns() const { return p_; }
  index_t words_per_pattern() const { return words_; }

  const Word* mask(index_t i) const { return masks_.data() + i * words_; }
  bool active(index_t k, index_t i) const { return (mask(i)[k / kWordBits] >> (k % kWordBits)) & 1U; }
  const double* gate(index_t i) const { return gates_.data() + i * d_; }
  const std::vector<double>& gates() const { return gates_; }
  const std::vector<Word>& words() const { return masks_; }

  // ... further members (sampling, subsets, merging, recomputation on new data, Alg2/Alg3 samplers)
  // are declared by the patterns work package below this line.

 private:
  index_t n_ = 0, d_ = 0, p_ = 0, words_ = 0;
  std::vector<Word> masks_;
  std::vector<double> gates_;
};

}  // namespace convexnn
