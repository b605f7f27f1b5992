// Bit-packed sign patterns: computation from gates (BLAS tiles + bit packing), deduplication by hashing,
// Gaussian sampling with a portable random stream, the Alg2/Alg3 samplers, subsets, merging.
#include "convexnn/patterns/pattern_set.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <type_traits>

#include "convexnn/core/blas.hpp"

namespace convexnn {

using Word = PatternSet::Word;

namespace {

constexpr index_t kBits = PatternSet::kWordBits;

index_t words_for(index_t n) { return (n + kBits - 1) / kBits; }

// Refuse allocations of more than PatternSet::kMaxBytes, stating the size.
void check_bytes(double bytes, const char* what) {
  if (bytes > static_cast<double>(PatternSet::kMaxBytes)) {
    std::ostringstream os;
    os << what << " would need " << static_cast<double>(bytes) << " bytes, more than the limit of "
       << PatternSet::kMaxBytes << " bytes (PatternSet::kMaxBytes)";
    throw std::length_error(os.str());
  }
}

template <class T>
void check_data(const MatrixView<T>& X, const char* name) {
  CONVEXNN_CHECK(X.data != nullptr || X.rows * X.cols == 0, name << " has no data");
  CONVEXNN_CHECK(X.rows >= 1, name << " must have at least one row (sample), got n = " << X.rows);
  CONVEXNN_CHECK(X.cols >= 1, name << " must have at least one column, got d = " << X.cols);
  for (index_t i = 0; i < X.rows; ++i)
    for (index_t j = 0; j < X.cols; ++j)
      CONVEXNN_CHECK(std::isfinite(static_cast<double>(X(i, j))), name << " must not contain NaN or Inf, got " << name
                                                                       << "[" << i << ", " << j << "] = " << X(i, j));
}

void check_gates(const double* gates, index_t n_gates, index_t d, const char* name) {
  CONVEXNN_CHECK(n_gates >= 0, "the number of " << name << " must be >= 0, got " << n_gates);
  CONVEXNN_CHECK(n_gates == 0 || gates != nullptr, name << " must not be null");
  for (index_t i = 0; i < n_gates * d; ++i)
    CONVEXNN_CHECK(std::isfinite(gates[i]), name << " must not contain NaN or Inf, got " << name << "[" << i / d << ", "
                                                 << i % d << "] = " << gates[i]);
}

// Calls fn(g0, gcount, row0, rows, prod) for every (row tile, gate block) pair, where prod is the
// (gcount x rows) row-major float64 block prod[i][k] = x_{row0+k}^T g_{g0+i}. Tiles run in parallel (one
// BLAS call per tile, single-threaded BLAS); their layout does not depend on the thread count, so results
// are deterministic. Row tiles are multiples of 64 rows, so tiles own whole mask words.
template <class T, class Fn>
void for_each_product_tile(const MatrixView<T>& X, const double* gates, index_t n_gates, Fn&& fn) {
  constexpr index_t kRowTile = 256, kGateBlock = 128, kColTile = 512;
  const index_t n = X.rows, d = X.cols;
  if (n_gates == 0 || n == 0) return;
  const bool direct = std::is_same<T, double>::value && X.blas_compatible();
  const index_t n_row_tiles = (n + kRowTile - 1) / kRowTile;
  const index_t n_gate_blocks = (n_gates + kGateBlock - 1) / kGateBlock;
  const index_t n_tasks = n_row_tiles * n_gate_blocks;
  const index_t col_tile = std::min(d, kColTile);
  const int n_threads = n_tasks > 1 ? omp_get_max_threads() : 1;
  // Per-thread buffers allocated up front: nothing inside the parallel region may throw.
  std::vector<double> prod_all(static_cast<std::size_t>(n_threads) * kGateBlock * kRowTile);
  std::vector<double> x_all(direct ? 0 : static_cast<std::size_t>(n_threads) * kRowTile * col_tile);
  // Only a parallel loop needs single-threaded BLAS; a lone tile may use OpenBLAS's own threads.
  std::optional<blas::SingleThreadedScope> single_threaded_blas;
  if (n_threads > 1) single_threaded_blas.emplace();
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (n_tasks > 1)
  for (index_t t = 0; t < n_tasks; ++t) {
    const int tid = omp_get_thread_num();
    double* prod = prod_all.data() + static_cast<std::size_t>(tid) * kGateBlock * kRowTile;
    const index_t row0 = (t / n_gate_blocks) * kRowTile;
    const index_t rows = std::min(kRowTile, n - row0);
    const index_t g0 = (t % n_gate_blocks) * kGateBlock;
    const index_t gcount = std::min(kGateBlock, n_gates - g0);
    const double* g = gates + g0 * d;
    if constexpr (std::is_same<T, double>::value) {
      if (direct) {
        if (X.row_major()) {
          blas::gemm<double>(blas::Layout::RowMajor, blas::Op::NoTrans, blas::Op::Trans, gcount, rows, d, 1.0, g, d,
                             X.data + row0 * X.row_stride, X.row_stride, 0.0, prod, rows);
        } else {
          // Column-major X: rows row0.. of X^T form a row-major (d x rows) block with leading dimension col_stride.
          blas::gemm<double>(blas::Layout::RowMajor, blas::Op::NoTrans, blas::Op::NoTrans, gcount, rows, d, 1.0, g, d,
                             X.data + row0, X.col_stride, 0.0, prod, rows);
        }
      }
    }
    if (!direct) {
      double* xbuf = x_all.data() + static_cast<std::size_t>(tid) * kRowTile * col_tile;
      for (index_t k0 = 0; k0 < d; k0 += col_tile) {
        const index_t kc = std::min(col_tile, d - k0);
        if (X.col_major()) {
          for (index_t j = 0; j < kc; ++j)
            for (index_t i = 0; i < rows; ++i) xbuf[i * kc + j] = static_cast<double>(X(row0 + i, k0 + j));
        } else {
          for (index_t i = 0; i < rows; ++i)
            for (index_t j = 0; j < kc; ++j) xbuf[i * kc + j] = static_cast<double>(X(row0 + i, k0 + j));
        }
        blas::gemm<double>(blas::Layout::RowMajor, blas::Op::NoTrans, blas::Op::Trans, gcount, rows, kc, 1.0, g + k0, d,
                           xbuf, kc, k0 == 0 ? 0.0 : 1.0, prod, rows);
      }
    }
    fn(g0, gcount, row0, rows, static_cast<const double*>(prod));
  }
}

// Packed masks (n_gates x W words, pattern-major) of the gates on X.
template <class T>
void compute_masks(const MatrixView<T>& X, const double* gates, index_t n_gates, Word* out) {
  const index_t W = words_for(X.rows);
  for_each_product_tile(X, gates, n_gates,
                        [&](index_t g0, index_t gcount, index_t row0, index_t rows, const double* prod) {
                          for (index_t gi = 0; gi < gcount; ++gi) {
                            const double* z = prod + gi * rows;
                            Word* dst = out + (g0 + gi) * W + row0 / kBits;
                            for (index_t w0 = 0; w0 < rows; w0 += kBits) {
                              const index_t lim = std::min(kBits, rows - w0);
                              Word word = 0;
                              for (index_t b = 0; b < lim; ++b) word |= static_cast<Word>(z[w0 + b] >= 0.0) << b;
                              dst[w0 / kBits] = word;
                            }
                          }
                        });
}

bool all_zero(const Word* w, index_t n_words) {
  for (index_t i = 0; i < n_words; ++i)
    if (w[i] != 0) return false;
  return true;
}

bool same_words(const Word* a, const Word* b, index_t n_words) { return std::equal(a, a + n_words, b); }

std::uint64_t mix64(std::uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Portable Gaussian stream (see PatternSet::gaussian_gates).
class PortableNormalStream {
 public:
  explicit PortableNormalStream(std::uint64_t seed) : engine_(seed) {}

  // Uniform in the open interval (0, 1): 53 random bits, centred in their cell.
  double uniform_open() { return (static_cast<double>(engine_() >> 11) + 0.5) * 0x1.0p-53; }

  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = uniform_open();
    const double u2 = uniform_open();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586476925286766559 * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

  // Uniform in {0, ..., n-1}, by rejection (no modulo bias).
  std::uint64_t index(std::uint64_t n) {
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t limit = max - (max % n + 1) % n;  // largest multiple of n, minus one
    std::uint64_t x;
    do {
      x = engine_();
    } while (x > limit);
    return x % n;
  }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace

PatternSetBuilder::PatternSetBuilder(index_t n, index_t d, bool indexed) : indexed_(indexed) {
  CONVEXNN_CHECK(n >= 0 && d >= 0, "PatternSetBuilder needs n, d >= 0, got " << n << ", " << d);
  set_.n_ = n;
  set_.d_ = d;
  set_.words_ = words_for(n);
}

PatternSetBuilder::PatternSetBuilder(const PatternSet& start, bool indexed)
    : PatternSetBuilder(start.n_samples(), start.dim(), indexed) {
  reserve(start.n_patterns());
  for (index_t i = 0; i < start.n_patterns(); ++i) append(start.mask(i), start.gate(i));
}

void PatternSetBuilder::reserve(index_t count) {
  check_bytes(static_cast<double>(count) * static_cast<double>(set_.words_ + set_.d_) * 8.0, "the pattern set");
  set_.masks_.reserve(count * set_.words_);
  set_.gates_.reserve(count * set_.d_);
}

index_t PatternSetBuilder::find(const Word* w) const {
  return indexed_ ? find_hashed(w, PatternSet::hash_words(w, set_.words_)) : -1;
}

index_t PatternSetBuilder::append(const Word* w, const double* gate) {
  const index_t idx = set_.p_;
  const double bytes = static_cast<double>(idx + 1) * static_cast<double>(set_.words_ + set_.d_) * 8.0;
  if (bytes > static_cast<double>(PatternSet::kMaxBytes)) check_bytes(bytes, "the pattern set");
  set_.masks_.insert(set_.masks_.end(), w, w + set_.words_);
  set_.gates_.insert(set_.gates_.end(), gate, gate + set_.d_);
  ++set_.p_;
  if (indexed_) {
    hashes_.push_back(PatternSet::hash_words(w, set_.words_));
    if (2 * set_.p_ > static_cast<index_t>(table_.size()))
      rehash();
    else
      insert(idx, hashes_.back());
  }
  return idx;
}

index_t PatternSetBuilder::add_unique(const Word* w, const double* gate) {
  const index_t found = find(w);
  return found >= 0 ? found : append(w, gate);
}

index_t PatternSetBuilder::find_hashed(const Word* w, std::uint64_t h) const {
  if (table_.empty()) return -1;
  const std::uint64_t m = table_.size() - 1;
  for (std::uint64_t slot = h & m;; slot = (slot + 1) & m) {
    const index_t e = table_[slot];
    if (e < 0) return -1;
    if (hashes_[e] == h && same_words(set_.mask(e), w, set_.words_)) return e;
  }
}

void PatternSetBuilder::insert(index_t idx, std::uint64_t h) {
  const std::uint64_t m = table_.size() - 1;
  std::uint64_t slot = h & m;
  while (table_[slot] >= 0) slot = (slot + 1) & m;
  table_[slot] = idx;
}

void PatternSetBuilder::rehash() {
  std::size_t cap = 16;
  while (cap < static_cast<std::size_t>(4 * set_.p_)) cap *= 2;
  table_.assign(cap, -1);
  // Re-inserting in index order keeps the earliest of equal masks first along each probe sequence.
  for (index_t i = 0; i < set_.p_; ++i) insert(i, hashes_[i]);
}

std::uint64_t PatternSet::hash_words(const Word* w, index_t n_words) {
  std::uint64_t h = 0x243f6a8885a308d3ULL ^ static_cast<std::uint64_t>(n_words);
  for (index_t i = 0; i < n_words; ++i) h = mix64(h ^ (w[i] + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
  return h;
}

template <class T>
PatternSet PatternSet::from_gates(MatrixView<T> X, const double* gates, index_t n_gates, bool deduplicate,
                                  bool drop_zero) {
  check_data(X, "X");
  const index_t d = X.cols, W = words_for(X.rows);
  check_bytes(static_cast<double>(n_gates) * static_cast<double>(W + d) * 8.0, "the masks of the gates");
  check_gates(gates, n_gates, d, "gates");
  std::vector<Word> raw(static_cast<std::size_t>(n_gates * W));
  compute_masks(X, gates, n_gates, raw.data());
  if (!deduplicate && !drop_zero) {
    PatternSet out;
    out.n_ = X.rows;
    out.d_ = d;
    out.p_ = n_gates;
    out.words_ = W;
    out.masks_ = std::move(raw);
    out.gates_.assign(gates, gates + n_gates * d);
    return out;
  }
  PatternSetBuilder builder(X.rows, d, deduplicate);
  for (index_t i = 0; i < n_gates; ++i) {
    const Word* w = raw.data() + i * W;
    if (drop_zero && all_zero(w, W)) continue;
    if (deduplicate)
      builder.add_unique(w, gates + i * d);
    else
      builder.append(w, gates + i * d);
  }
  return builder.finish();
}

template <class T>
std::vector<double> PatternSet::gaussian_gates(MatrixView<T> X, index_t n_gates, std::uint64_t seed, bool bias_column) {
  check_data(X, "X");
  CONVEXNN_CHECK(n_gates >= 1, "n_gates must be >= 1, got " << n_gates);
  const index_t n = X.rows, d = X.cols;
  if (bias_column) {
    for (index_t k = 0; k < n; ++k)
      CONVEXNN_CHECK(X(k, d - 1) == T(1), "bias_column=True needs the last column of X to be all ones, got X["
                                              << k << ", " << d - 1 << "] = " << X(k, d - 1));
  }
  check_bytes(static_cast<double>(n_gates) * static_cast<double>(d) * 8.0, "the gates");
  const index_t d_feat = bias_column ? d - 1 : d;
  std::vector<double> G(static_cast<std::size_t>(n_gates * d));
  PortableNormalStream stream(seed);
  for (index_t i = 0; i < n_gates; ++i) {
    double* g = G.data() + i * d;
    for (index_t j = 0; j < d_feat; ++j) g[j] = stream.normal();
    if (bias_column) {
      const index_t k = static_cast<index_t>(stream.index(static_cast<std::uint64_t>(n)));
      double s = 0.0;
      for (index_t j = 0; j < d_feat; ++j) s += static_cast<double>(X(k, j)) * g[j];
      g[d - 1] = -s;
    }
  }
  return G;
}

template <class T>
PatternSet PatternSet::sample(MatrixView<T> X, index_t n_gates, std::uint64_t seed, bool bias_column) {
  const std::vector<double> G = gaussian_gates(X, n_gates, seed, bias_column);
  return from_gates(X, G.data(), n_gates, true, true);
}

template <class T>
PatternSet PatternSet::flip_patterns(MatrixView<T> X, const double* gates, index_t n_gates, double threshold) {
  check_data(X, "X");
  const index_t n = X.rows, d = X.cols, W = words_for(n);
  check_gates(gates, n_gates, d, "gates");
  CONVEXNN_CHECK(std::isfinite(threshold) && threshold >= 0.0,
                 "threshold must be a finite number >= 0, got " << threshold);
  // Base masks and all products, gate block by gate block (bounded memory).
  std::vector<double> x_norm(n);
  for (index_t k = 0; k < n; ++k) {
    double s = 0.0;
    for (index_t j = 0; j < d; ++j) s += static_cast<double>(X(k, j)) * static_cast<double>(X(k, j));
    x_norm[k] = std::sqrt(s);
  }
  constexpr index_t kGateBlock = 64, kPendingFlips = 4096;
  // Relative distance just across a sample's hyperplane, far above rounding (~1e-16 relative).
  constexpr double kCrossing = 1e-8;
  PatternSetBuilder builder(n, d, true);
  std::vector<double> Z(static_cast<std::size_t>(std::min(kGateBlock, n_gates) * n));
  std::vector<Word> base(static_cast<std::size_t>(std::min(kGateBlock, n_gates) * W));
  std::vector<double> cand_gates;
  std::vector<index_t> cand_sample;
  std::vector<Word> cand_masks;
  for (index_t b0 = 0; b0 < n_gates; b0 += kGateBlock) {
    const index_t bc = std::min(kGateBlock, n_gates - b0);
    for_each_product_tile(X, gates + b0 * d, bc,
                          [&](index_t g0, index_t gcount, index_t row0, index_t rows, const double* prod) {
                            for (index_t gi = 0; gi < gcount; ++gi)
                              std::copy(prod + gi * rows, prod + (gi + 1) * rows, Z.data() + (g0 + gi) * n + row0);
                          });
    // Candidates of consecutive gates are evaluated together (one compute_masks call per ~kPendingFlips), then
    // added in order: base pattern of a gate, then its realized flips.
    index_t first_pending = 0;
    std::vector<index_t> cand_end;  // per pending gate: end of its candidates in cand_sample
    auto flush = [&](index_t end_gate) {
      const index_t n_cand = static_cast<index_t>(cand_sample.size());
      if (n_cand > 0) {
        check_bytes(static_cast<double>(n_cand) * static_cast<double>(W) * 8.0, "the flipped masks");
        cand_masks.assign(static_cast<std::size_t>(n_cand * W), Word(0));
        compute_masks(X, cand_gates.data(), n_cand, cand_masks.data());
      }
      index_t c = 0;
      for (index_t gi = first_pending; gi < end_gate; ++gi) {
        const Word* bw = base.data() + gi * W;
        if (!all_zero(bw, W)) builder.add_unique(bw, gates + (b0 + gi) * d);
        for (; c < cand_end[gi - first_pending]; ++c) {
          const Word* cw = cand_masks.data() + c * W;
          const index_t k = cand_sample[c];
          bool realized = true;
          for (index_t w = 0; w < W && realized; ++w) {
            const Word expect = bw[w] ^ (w == k / kBits ? (Word(1) << (k % kBits)) : Word(0));
            realized = cw[w] == expect;
          }
          if (realized && !all_zero(cw, W)) builder.add_unique(cw, cand_gates.data() + c * d);
        }
      }
      first_pending = end_gate;
      cand_end.clear();
      cand_gates.clear();
      cand_sample.clear();
    };
    for (index_t gi = 0; gi < bc; ++gi) {
      const double* g = gates + (b0 + gi) * d;
      const double* z = Z.data() + gi * n;
      Word* bw = base.data() + gi * W;
      std::fill(bw, bw + W, Word(0));
      for (index_t k = 0; k < n; ++k) bw[k / kBits] |= static_cast<Word>(z[k] >= 0.0) << (k % kBits);
      double g_norm = 0.0;
      for (index_t j = 0; j < d; ++j) g_norm += g[j] * g[j];
      g_norm = std::sqrt(g_norm);
      for (index_t k = 0; k < n; ++k) {
        if (x_norm[k] == 0.0 || !(std::abs(z[k]) <= threshold * x_norm[k] * g_norm)) continue;
        const double delta = kCrossing * x_norm[k] * g_norm;
        const double target = z[k] >= 0.0 ? -delta : delta;
        const double step = (target - z[k]) / (x_norm[k] * x_norm[k]);
        check_bytes(static_cast<double>(cand_gates.size() + d) * 8.0, "the flipped gates");
        for (index_t j = 0; j < d; ++j) cand_gates.push_back(g[j] + step * static_cast<double>(X(k, j)));
        cand_sample.push_back(k);
      }
      cand_end.push_back(static_cast<index_t>(cand_sample.size()));
      if (static_cast<index_t>(cand_sample.size()) >= kPendingFlips) flush(gi + 1);
    }
    flush(bc);
  }
  return builder.finish();
}

PatternSet PatternSet::from_words(index_t n, index_t d, std::vector<Word> words, std::vector<double> gates) {
  CONVEXNN_CHECK(n >= 1, "n (number of samples) must be >= 1, got " << n);
  CONVEXNN_CHECK(d >= 1, "d (gate dimension) must be >= 1, got " << d);
  CONVEXNN_CHECK(gates.size() % static_cast<std::size_t>(d) == 0,
                 "gates must hold n_patterns * d = n_patterns * " << d << " values, got " << gates.size());
  const index_t p = static_cast<index_t>(gates.size()) / d;
  const index_t W = words_for(n);
  CONVEXNN_CHECK(words.size() == static_cast<std::size_t>(p * W),
                 "words must hold n_patterns * ceil(n / 64) = " << p << " * " << W << " words, got " << words.size());
  check_gates(gates.data(), p, d, "gates");
  const index_t tail = n % kBits;
  if (tail != 0) {
    const Word tail_mask = ~((Word(1) << tail) - 1);
    for (index_t i = 0; i < p; ++i)
      CONVEXNN_CHECK((words[i * W + W - 1] & tail_mask) == 0,
                     "words of pattern " << i << " have bits set past n = " << n);
  }
  PatternSet out;
  out.n_ = n;
  out.d_ = d;
  out.p_ = p;
  out.words_ = W;
  out.masks_ = std::move(words);
  out.gates_ = std::move(gates);
  return out;
}

index_t PatternSet::popcount(index_t i) const {
  CONVEXNN_CHECK(i >= 0 && i < p_, "pattern index " << i << " out of range [0, " << p_ << ")");
  index_t c = 0;
  const Word* w = mask(i);
  for (index_t j = 0; j < words_; ++j) c += __builtin_popcountll(w[j]);
  return c;
}

PatternSet PatternSet::subset(const std::vector<index_t>& indices) const {
  std::vector<char> seen(static_cast<std::size_t>(p_), 0);
  for (index_t i : indices) {
    CONVEXNN_CHECK(i >= 0 && i < p_, "indices must lie in [0, " << p_ << "), got " << i);
    CONVEXNN_CHECK(!seen[i], "indices must not repeat, got " << i << " twice");
    seen[i] = 1;
  }
  PatternSetBuilder builder(n_, d_, false);
  builder.reserve(static_cast<index_t>(indices.size()));
  for (index_t i : indices) builder.append(mask(i), gate(i));
  return builder.finish();
}

std::pair<PatternSet, std::vector<index_t>> PatternSet::merge(const PatternSet& other) const {
  CONVEXNN_CHECK(other.n_ == n_, "other must have the same number of samples n = " << n_ << ", got " << other.n_);
  CONVEXNN_CHECK(other.d_ == d_, "other must have the same gate dimension d = " << d_ << ", got " << other.d_);
  PatternSetBuilder builder(*this, true);
  std::vector<index_t> where(static_cast<std::size_t>(other.p_));
  for (index_t j = 0; j < other.p_; ++j) where[j] = builder.add_unique(other.mask(j), other.gate(j));
  return {builder.finish(), std::move(where)};
}

template <class T>
PatternSet PatternSet::recompute(MatrixView<T> X_new) const {
  CONVEXNN_CHECK(X_new.cols == d_,
                 "X_new must have d = " << d_ << " columns (the gates' dimension), got " << X_new.cols);
  return from_gates(X_new, gates_.data(), p_, false, false);
}

#define CONVEXNN_INSTANTIATE_PATTERN_SET(T)                                                                \
  template PatternSet PatternSet::from_gates<T>(MatrixView<T>, const double*, index_t, bool, bool);        \
  template std::vector<double> PatternSet::gaussian_gates<T>(MatrixView<T>, index_t, std::uint64_t, bool); \
  template PatternSet PatternSet::sample<T>(MatrixView<T>, index_t, std::uint64_t, bool);                  \
  template PatternSet PatternSet::flip_patterns<T>(MatrixView<T>, const double*, index_t, double);         \
  template PatternSet PatternSet::recompute<T>(MatrixView<T>) const;

CONVEXNN_INSTANTIATE_PATTERN_SET(float)
CONVEXNN_INSTANTIATE_PATTERN_SET(double)

#undef CONVEXNN_INSTANTIATE_PATTERN_SET

}  // namespace convexnn
