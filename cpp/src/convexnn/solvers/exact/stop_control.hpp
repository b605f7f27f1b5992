// Time limit, interrupt hook and between-check callback of one exact solve. Not the gated solver's StopClock
// alone: the exact solver is also polled from the OpenMP workers of its cone projections, so the stop reason
// is atomic, the hooks run only on the thread that called solve() (they may take Python's GIL), and a hook's
// exception is kept for solve() to rethrow. Built on the shared StopClock and CallbackCadence.
// Internal: not part of the installed headers.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <limits>
#include <thread>

#include "convexnn/core/stop_clock.hpp"
#include "convexnn/solvers/relu_solver.hpp"

namespace convexnn::exact {

// Stop polling: the interrupt hook at most this often, the callback between checks at most this often
// (seconds of wall time). A GIL round trip for Python's signal check costs microseconds.
constexpr double kInterruptPollSeconds = 0.05;
constexpr double kCallbackSeconds = 0.5;

class StopControl {
 public:
  explicit StopControl(const ReluOptions& options)
      : owner_(std::this_thread::get_id()),
        interrupt_(options.interrupt),
        callback_(options.callback),
        cadence_(0, kCallbackSeconds) {
    clock_.start(options.time_limit);
    info_.objective = std::numeric_limits<double>::infinity();
    info_.dual_objective = -std::numeric_limits<double>::infinity();
    info_.gap = std::numeric_limits<double>::infinity();
  }

  // Seconds since the solve started.
  double elapsed() const { return clock_.elapsed(); }
  // True once the solve must stop. Any thread; the hooks only run on the owner.
  bool poll() {
    if (stopped()) return true;
    const double now = clock_.elapsed();
    if (now >= clock_.limit()) {
      request(kTimeLimit);
      return true;
    }
    if (std::this_thread::get_id() != owner_) return false;
    if (interrupt_ && now >= next_interrupt_) {
      next_interrupt_ = now + kInterruptPollSeconds;
      if (!run_hook([this] { return !interrupt_(); })) request(kInterrupted);
    }
    if (callback_ && !stopped() && cadence_.due_by_time(now)) {
      info_.time = now;
      call_callback(info_);
    }
    return stopped();
  }
  // Only the time limit (cheap; the end of every iteration in between the hooks' budgets).
  bool past_time_limit() const { return clock_.out_of_time(); }
  // The callback at a check (on the owner thread); false -> stop "interrupted".
  bool call_callback(const IterInfo& info) {
    info_ = info;
    cadence_.called(info.iteration, info.time);
    if (!callback_ || run_hook([this] { return callback_(info_); })) return true;
    request(kInterrupted);
    return false;
  }
  // What a callback between checks sees (its iteration; the last check's values).
  void set_iteration(index_t iteration) { info_.iteration = iteration; }
  bool stopped() const { return reason_.load(std::memory_order_relaxed) != kRunning; }
  const char* status() const { return reason_.load() == kTimeLimit ? "time_limit" : "interrupted"; }
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

  StopClock clock_;
  std::thread::id owner_;
  const std::function<bool()>& interrupt_;
  const std::function<bool(const IterInfo&)>& callback_;
  CallbackCadence cadence_;
  std::atomic<int> reason_{kRunning};
  double next_interrupt_ = 0.0;
  IterInfo info_;
  std::exception_ptr error_;
};

}  // namespace convexnn::exact
