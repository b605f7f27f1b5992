// Bit-packed sign patterns D_i = diag(1[X g_i >= 0]) of a hyperplane arrangement, with their gates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "convexnn/core/common.hpp"

namespace convexnn {

// Masks are stored pattern-major: pattern i owns words [i*W, (i+1)*W), W = ceil(n / 64); bit (k % 64) of
// word (k / 64) is 1[x_k^T g_i >= 0]. Bits past n are zero. Gates are kept in float64, gate-major
// (gate i = gates[i*d .. i*d+d)), one per kept pattern and in the same order.
class PatternSet {
 public:
  static constexpr index_t kWordBits = 64;
  using Word = std::uint64_t;

  // Largest number of bytes (masks + gates, including the not yet deduplicated candidates) one set may
  // allocate: 8 GiB. Larger requests throw std::length_error stating the size instead of thrashing the
  // machine; at n = 1e5 samples this still allows ~5e5 patterns.
  static constexpr std::size_t kMaxBytes = std::size_t(8) << 30;

  PatternSet() = default;

  // Masks of the given gates (gate-major, n_gates x d) on X (n x d). With `deduplicate` identical masks
  // are merged (first occurrence kept, by hashing); with `drop_zero` the all-zero mask is dropped.
  // The products x_k^T g are accumulated in float64 whatever T is (BLAS tiles of X times gates^T).
  // Throws std::invalid_argument for n = 0, d = 0, NaN/Inf in X or in the gates.
  template <class T>
  static PatternSet from_gates(MatrixView<T> X, const double* gates, index_t n_gates, bool deduplicate = true,
                               bool drop_zero = true);

  // Gaussian gates (n_gates x d, gate-major, before deduplication). Feature entries are i.i.d. N(0, 1).
  // With `bias_column` the LAST column of X must be the ones column; the gate's last (bias) entry is then
  // g_b = -x_j[:d-1]^T g[:d-1] for a training point j drawn uniformly, so the gate's hyperplane passes
  // through x_j (x_j^T g = 0 up to rounding: x_j's own bit is decided by rounding).
  // Random stream: std::mt19937_64(seed); for each gate in order, its d' = d - bias_column normal draws, then
  // (with bias) one index draw. Normals come from our own Box-Muller transform of 53-bit uniforms and the
  // index from rejection sampling, NOT from std::normal_distribution / std::uniform_int_distribution, whose
  // algorithms differ between standard libraries. The stream is therefore the same on every platform (up to
  // the last-ulp accuracy of std::log/std::cos/std::sin), and the first k gates do not depend on n_gates.
  template <class T>
  static std::vector<double> gaussian_gates(MatrixView<T> X, index_t n_gates, std::uint64_t seed, bool bias_column);

  // from_gates(X, gaussian_gates(X, n_gates, seed, bias_column)), deduplicated, all-zero mask dropped.
  template <class T>
  static PatternSet sample(MatrixView<T> X, index_t n_gates, std::uint64_t seed, bool bias_column);

  // "Alg2" of Pilanci & Ergen (ICML 2020, Section 7): the patterns of a network's hidden neurons, i.e. from_gates with
  // the rows of W1 (m x d, row-major, one neuron per row) as gates. Deduplicated, all-zero mask dropped.
  template <class T>
  static PatternSet network_patterns(MatrixView<T> X, const double* W1, index_t m) {
    return from_gates(X, W1, m, true, true);
  }

  // "Alg3" of Pilanci & Ergen (ICML 2020, Section 7): for each gate g (gate-major, n_gates x d) its pattern, then for
  // every sample k with x_k != 0 and |x_k^T g| <= threshold * ||x_k|| * ||g|| (threshold is RELATIVE, >= 0) the pattern
  // with bit k flipped. A flipped pattern is kept only if a nearby gate realizes it: g' = g + c x_k with c chosen so
  // that x_k^T g' = -+1e-8 ||x_k|| ||g|| (just across x_k's hyperplane); g' is kept when from_gates(X, g')
  // gives exactly the flipped mask (otherwise the flip also moved other samples, and it is dropped).
  // Order: per gate, the base pattern, then its kept flips in sample order; deduplicated (first kept),
  // all-zero mask dropped. Every returned gate reproduces its mask: from_gates(X, gates()) == *this.
  template <class T>
  static PatternSet flip_patterns(MatrixView<T> X, const double* gates, index_t n_gates, double threshold);

  // Rebuild a set from its packed words (n_patterns x W, pattern-major) and gates (n_patterns x d), e.g. when
  // unpickling. Validates sizes, that bits past n are zero, and that the gates are finite. Kept as given
  // (no deduplication).
  static PatternSet from_words(index_t n, index_t d, std::vector<Word> words, std::vector<double> gates);

  index_t n_samples() const { return n_; }
  index_t dim() const { return d_; }
  index_t n_patterns() const { return p_; }
  index_t words_per_pattern() const { return words_; }

  const Word* mask(index_t i) const { return masks_.data() + i * words_; }
  bool active(index_t k, index_t i) const { return (mask(i)[k / kWordBits] >> (k % kWordBits)) & 1U; }
  const double* gate(index_t i) const { return gates_.data() + i * d_; }
  const std::vector<double>& gates() const { return gates_; }
  const std::vector<Word>& words() const { return masks_; }

  // Number of active samples of pattern i.
  index_t popcount(index_t i) const;

  // The patterns with the given indices, in that order (indices in [0, n_patterns), no repeats).
  PatternSet subset(const std::vector<index_t>& indices) const;

  // Union of this set and `other` (same n and d): this set's patterns first, unchanged and in order, then
  // the patterns of `other` not present yet (compared by mask, first occurrence kept). Nothing is dropped.
  // Returns the merged set and, for each pattern j of `other`, its index in the merged set (used by cutting
  // planes to locate the patterns they add).
  std::pair<PatternSet, std::vector<index_t>> merge(const PatternSet& other) const;

  // The masks of the same gates on new data (X_new: m x d, same d). No deduplication and no dropping,
  // so pattern i of the result belongs to gate i of this set.
  template <class T>
  PatternSet recompute(MatrixView<T> X_new) const;

  // 64-bit hash of a mask (W words); equal masks hash equally.
  static std::uint64_t hash_words(const Word* w, index_t n_words);

 private:
  friend class PatternSetBuilder;

  index_t n_ = 0, d_ = 0, p_ = 0, words_ = 0;
  std::vector<Word> masks_;
  std::vector<double> gates_;
};

// Appends masks (with their gates) to a new PatternSet of n samples and dimension d, optionally rejecting
// masks already present (`indexed`: open addressing on the 64-bit mask hash; on equal hashes the words are
// compared, so hash collisions are harmless). Used by the samplers, merge and the enumeration (which also
// uses it to group sign vectors over hyperplanes).
class PatternSetBuilder {
 public:
  PatternSetBuilder(index_t n, index_t d, bool indexed);
  // Start from a copy of an existing set (duplicates in it are kept; lookups return the first of them).
  PatternSetBuilder(const PatternSet& start, bool indexed);

  // Reserve room for `count` patterns (throws std::length_error above PatternSet::kMaxBytes).
  void reserve(index_t count);
  // Index of a pattern with these words (words_per_pattern of them), or -1 (always -1 when not indexed).
  index_t find(const PatternSet::Word* w) const;
  // Appends unconditionally; returns the new index.
  index_t append(const PatternSet::Word* w, const double* gate);
  // Appends unless an equal mask is present; returns the index of the (new or existing) pattern.
  index_t add_unique(const PatternSet::Word* w, const double* gate);

  index_t size() const { return set_.p_; }
  index_t words_per_pattern() const { return set_.words_; }
  const PatternSet::Word* mask(index_t i) const { return set_.mask(i); }
  const double* gate(index_t i) const { return set_.gate(i); }
  PatternSet finish() { return std::move(set_); }

 private:
  index_t find_hashed(const PatternSet::Word* w, std::uint64_t h) const;
  void insert(index_t idx, std::uint64_t h);
  void rehash();

  PatternSet set_;
  bool indexed_;
  std::vector<index_t> table_;
  std::vector<std::uint64_t> hashes_;
};

}  // namespace convexnn
