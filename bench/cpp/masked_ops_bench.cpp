// Micro-benchmark of the masked products (bench/README.md, results in bench/RESULTS.md).
//
// Problem (the reference point): n = 10000, d = 50, P = 500, c = 1, X C-ordered with Gaussian
// entries, masks 1[X g_i >= 0] from Gaussian gates (about half the rows active per pattern).
// A forward + adjoint pair costs 4 n d P flops (two GEMM-shaped products); GFLOP/s counts that.
//
//   BM_MaskedForwardAdjoint  MaskedOperator::forward + ::adjoint (what a solver iteration calls)
//   BM_MaskedForward / BM_MaskedAdjoint   each half alone (2 n d P flops each)
//   BM_TwoGemmFloor          the same flops as two plain BLAS GEMMs without masks:
//                            T = X U^T (n x P, k = d) and G = X^T M (d x P, k = n), M a dense n x P matrix.
//                            This is the floor: the masked products cannot beat the GEMMs they contain.
// Every benchmark takes the thread count as its first argument: OpenMP threads (with single-threaded BLAS
// inside) for the operator, OpenBLAS threads for the plain GEMMs. The masked benchmarks take the product
// method as their second: 0 = GEMM tiles with mask epilogues, 1 = subset-sum tables (masked_tables.cpp),
// 2 = AMX tiles (float only, masked_amx.cpp; reported as skipped where the machine has no AMX), 3 = AVX-512 BF16
// dot products (float only, masked_bf16.cpp; skipped where the CPU has no AVX512_BF16).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <random>
#include <vector>

#include "convexnn/core/blas.hpp"
#include "convexnn/operator/masked_operator.hpp"

namespace cnn = convexnn;
using cnn::index_t;

namespace {

constexpr index_t kN = 10000, kD = 50, kP = 500;
constexpr double kPairFlops = 4.0 * kN * kD * kP;

cnn::ProductMethod method_of(const benchmark::State& state) {
  const auto m = state.range(1);
  return m == 0 ? cnn::ProductMethod::Gemm
         : m == 1 ? cnn::ProductMethod::Tables
         : m == 2 ? cnn::ProductMethod::Amx
                  : cnn::ProductMethod::Bf16;
}
const char* method_label(const benchmark::State& state) {
  const auto m = state.range(1);
  return m == 0 ? " gemm" : m == 1 ? " tables" : m == 2 ? " amx" : " bf16";
}
// The reason a method cannot run here, or null.
const char* unavailable(const benchmark::State& state) {
  if (method_of(state) == cnn::ProductMethod::Amx && !cnn::amx_available()) return "this machine has no AMX";
  if (method_of(state) == cnn::ProductMethod::Bf16 && !cnn::bf16_available()) return "this CPU has no AVX512_BF16";
  return nullptr;
}

template <class T>
struct Problem {
  std::vector<T> X, U, R, z, G;
  std::vector<std::uint64_t> words;
  Problem() : X(kN * kD), U(kP * kD), R(kN), z(kN), G(kP * kD) {
    std::mt19937_64 rng(42);
    std::normal_distribution<double> gauss;
    std::vector<double> Xd(kN * kD), gates(kP * kD);
    for (auto& v : Xd) v = gauss(rng);
    for (auto& v : gates) v = gauss(rng);
    for (index_t i = 0; i < kN * kD; ++i) X[i] = static_cast<T>(Xd[i]);
    for (auto& v : U) v = static_cast<T>(gauss(rng));
    for (auto& v : R) v = static_cast<T>(gauss(rng));
    std::vector<std::uint8_t> dense(kN * kP);
    for (index_t k = 0; k < kN; ++k)
      for (index_t i = 0; i < kP; ++i) {
        double s = 0;
        for (index_t r = 0; r < kD; ++r) s += Xd[k * kD + r] * gates[i * kD + r];
        dense[k * kP + i] = s >= 0;
      }
    words = cnn::pack_masks(dense.data(), kN, kP, kP, 1);
  }
  cnn::MaskedOperator<T> op(const benchmark::State& state) const {
    cnn::MaskedOperator<T> o(cnn::MatrixView<T>::c_order(X.data(), kN, kD), words, kP);
    o.set_product_method(method_of(state));
    return o;
  }
};

template <class T>
const Problem<T>& problem() {
  static const Problem<T> p;
  return p;
}

void set_rate(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

struct Threads {
  int omp_saved = omp_get_max_threads(), blas_saved = cnn::blas::get_num_threads();
  Threads(int omp, int blas) {
    omp_set_num_threads(omp);
    cnn::blas::set_num_threads(blas);
  }
  ~Threads() {
    omp_set_num_threads(omp_saved);
    cnn::blas::set_num_threads(blas_saved);
  }
};

template <class T>
void BM_MaskedForwardAdjoint(benchmark::State& state) {
  Threads threads(static_cast<int>(state.range(0)), 1);
  const auto& p = problem<T>();
  if (const char* why = unavailable(state)) {
    state.SkipWithError(why);
    return;
  }
  const auto op = p.op(state);
  std::vector<T> z(kN), G(kP * kD);
  for (auto _ : state) {
    op.forward(p.U.data(), 1, z.data());
    op.adjoint(p.R.data(), 1, G.data());
    benchmark::DoNotOptimize(z.data());
    benchmark::DoNotOptimize(G.data());
  }
  set_rate(state, kPairFlops);
  state.SetLabel(cnn::masked_kernel_isa() + method_label(state));
}

template <class T>
void BM_MaskedForward(benchmark::State& state) {
  Threads threads(static_cast<int>(state.range(0)), 1);
  const auto& p = problem<T>();
  if (const char* why = unavailable(state)) {
    state.SkipWithError(why);
    return;
  }
  const auto op = p.op(state);
  std::vector<T> z(kN);
  for (auto _ : state) {
    op.forward(p.U.data(), 1, z.data());
    benchmark::DoNotOptimize(z.data());
  }
  set_rate(state, kPairFlops / 2);
}

template <class T>
void BM_MaskedAdjoint(benchmark::State& state) {
  Threads threads(static_cast<int>(state.range(0)), 1);
  const auto& p = problem<T>();
  if (const char* why = unavailable(state)) {
    state.SkipWithError(why);
    return;
  }
  const auto op = p.op(state);
  std::vector<T> G(kP * kD);
  for (auto _ : state) {
    op.adjoint(p.R.data(), 1, G.data());
    benchmark::DoNotOptimize(G.data());
  }
  set_rate(state, kPairFlops / 2);
}

template <class T>
void BM_TwoGemmFloor(benchmark::State& state) {
  Threads threads(1, static_cast<int>(state.range(0)));
  const auto& p = problem<T>();
  std::vector<T> Tnp(kN * kP), M(kN * kP, T(0.5)), G(kD * kP);
  using cnn::blas::Layout;
  using cnn::blas::Op;
  for (auto _ : state) {
    // X U^T: (n x d) (d x P) -> n x P
    cnn::blas::gemm<T>(Layout::RowMajor, Op::NoTrans, Op::Trans, kN, kP, kD, T(1), p.X.data(), kD, p.U.data(), kD, T(0),
                       Tnp.data(), kP);
    // X^T M: (d x n) (n x P) -> d x P
    cnn::blas::gemm<T>(Layout::RowMajor, Op::Trans, Op::NoTrans, kD, kP, kN, T(1), p.X.data(), kD, M.data(), kP, T(0),
                       G.data(), kP);
    benchmark::DoNotOptimize(Tnp.data());
    benchmark::DoNotOptimize(G.data());
  }
  set_rate(state, kPairFlops);
}

}  // namespace

#define CONVEXNN_BENCH_THREADS(fn) BENCHMARK(fn)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)
#define CONVEXNN_BENCH_METHODS(fn, methods) \
  BENCHMARK(fn)                             \
      ->ArgsProduct({{1, 2}, methods})      \
      ->ArgNames({"threads", "method"})     \
      ->UseRealTime()                       \
      ->Unit(benchmark::kMillisecond)
#define CONVEXNN_F64_METHODS \
  { 0, 1 }
#define CONVEXNN_F32_METHODS \
  { 0, 1, 2, 3 }
CONVEXNN_BENCH_METHODS(BM_MaskedForwardAdjoint<double>, CONVEXNN_F64_METHODS);
CONVEXNN_BENCH_THREADS(BM_TwoGemmFloor<double>);
CONVEXNN_BENCH_METHODS(BM_MaskedForward<double>, CONVEXNN_F64_METHODS);
CONVEXNN_BENCH_METHODS(BM_MaskedAdjoint<double>, CONVEXNN_F64_METHODS);
CONVEXNN_BENCH_METHODS(BM_MaskedForwardAdjoint<float>, CONVEXNN_F32_METHODS);
CONVEXNN_BENCH_THREADS(BM_TwoGemmFloor<float>);
CONVEXNN_BENCH_METHODS(BM_MaskedForward<float>, CONVEXNN_F32_METHODS);
CONVEXNN_BENCH_METHODS(BM_MaskedAdjoint<float>, CONVEXNN_F32_METHODS);

BENCHMARK_MAIN();
