// The dense pseudo-inverse solve of the hinge polish (hinge.cpp), interruptible. Internal header.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "convexnn/core/blas.hpp"

namespace convexnn::gated {

inline constexpr index_t kThreadedDim = 150;  // systems below: ~1 ms, not worth a thread

// step = -K^+ F through the eigendecomposition of the symmetric indefinite K (N x N, consumed); eigenvalues below
// 1e-12 of the largest are dropped. The O(N^3) LAPACK call (seconds for N ~ 800 on a loaded machine) cannot be
// interrupted, so above kThreadedDim it runs on a worker thread while this one polls stop() every kPollSeconds:
// a stop returns false at once and leaves the worker (which owns its buffers) to finish and free them alone.
// The same LAPACK call on the same data either way, so the step is the same. False if LAPACK fails or stopped.
template <class Stop>
bool pseudo_inverse_step(index_t N, std::vector<double>&& K, const std::vector<double>& F, std::vector<double>& step,
                         Stop&& stop, index_t threaded_dim = kThreadedDim) {
  constexpr auto kPollSeconds = std::chrono::milliseconds(20);
  struct Job {
    std::vector<double> K, w;
    int info = 0;
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
  };
  auto job = std::make_shared<Job>();
  job->K = std::move(K);
  job->w.resize(static_cast<std::size_t>(N));
  if (N < threaded_dim) {
    job->info = blas::syev<double>(N, job->K.data(), job->w.data());
  } else {
    std::thread worker([job, N] {
      const int info = blas::syev<double>(N, job->K.data(), job->w.data());
      std::lock_guard<std::mutex> lock(job->m);
      job->info = info;
      job->done = true;
      job->cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(job->m);
    while (!job->cv.wait_for(lock, kPollSeconds, [&] { return job->done; })) {
      lock.unlock();
      if (stop()) {
        worker.detach();
        return false;
      }
      lock.lock();
    }
    lock.unlock();
    worker.join();
  }
  if (job->info != 0) return false;
  const std::vector<double>& Q = job->K;
  const std::vector<double>& w = job->w;
  double wmax = 0.0;
  for (double e : w) wmax = std::max(wmax, std::abs(e));
  std::fill(step.begin(), step.end(), 0.0);
  for (index_t e = 0; e < N; ++e) {
    if (std::abs(w[e]) <= 1e-12 * wmax) continue;
    double proj = 0.0;
    for (index_t q = 0; q < N; ++q) proj += Q[q * N + e] * F[q];
    const double coef = -proj / w[e];
    for (index_t q = 0; q < N; ++q) step[q] += coef * Q[q * N + e];
  }
  return true;
}

}  // namespace convexnn::gated
