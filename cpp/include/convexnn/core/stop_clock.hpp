// The clock of one solve: elapsed time against a time limit, the cadence of a progress callback (every k
// iterations, and on a time budget inside loops that do not count iterations), and exclusive per-phase timers
// (a nested phase pauses its parent, so the phases add up to the total).
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "convexnn/core/common.hpp"

namespace convexnn {

class StopClock {
 public:
  using Clock = std::chrono::steady_clock;

  StopClock() : t0_(Clock::now()) {}
  // Restart at now with this limit (seconds, inf: none).
  void start(double time_limit) {
    t0_ = Clock::now();
    limit_ = time_limit;
  }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }
  bool out_of_time() const { return elapsed() >= limit_; }
  double limit() const { return limit_; }

 private:
  Clock::time_point t0_;
  double limit_ = std::numeric_limits<double>::infinity();
};

// When a progress callback is due: every `every` iterations (never twice for one iteration, never at 0), and
// from loops that advance no iteration counter, once `poll_seconds` have passed since the last call.
class CallbackCadence {
 public:
  CallbackCadence(index_t every, double poll_seconds) : every_(every), poll_seconds_(poll_seconds) {}
  bool due_at_iteration(index_t iter) const { return every_ > 0 && iter > last_iter_ && iter % every_ == 0; }
  bool due_by_time(double now) const { return now - last_time_ >= poll_seconds_; }
  void called(index_t iter, double now) {
    last_iter_ = iter;
    last_time_ = now;
  }

 private:
  index_t every_;
  double poll_seconds_;
  index_t last_iter_ = 0;
  double last_time_ = 0.0;
};

// Exclusive phase timers: phase 0 is the root ("other"); Scope(k) charges the time since the last switch to
// the running phase and makes k the running one until the scope ends.
class PhaseTimes {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PhaseTimes(std::vector<std::string> names) : names_(std::move(names)), acc_(names_.size(), 0.0) {
    last_ = Clock::now();
  }
  void restart() {
    std::fill(acc_.begin(), acc_.end(), 0.0);
    current_ = 0;
    last_ = Clock::now();
  }

  class Scope {
   public:
    Scope(PhaseTimes& t, int phase) : t_(t), saved_(t.switch_to(phase)) {}
    ~Scope() { t_.switch_to(saved_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    PhaseTimes& t_;
    int saved_;
  };

  // Lap-style timing (no scopes): charge the time since the last switch or lap to `phase`, the phase that has
  // just run; the running phase stays as it is.
  void lap(int phase) {
    const Clock::time_point now = Clock::now();
    acc_[static_cast<std::size_t>(phase)] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

  // Seconds per phase so far (the running phase charged up to now), plus "total" = their sum.
  std::map<std::string, double> snapshot() {
    switch_to(current_);
    std::map<std::string, double> out;
    double total = 0.0;
    for (std::size_t k = 0; k < names_.size(); ++k) {
      out[names_[k]] += acc_[k];
      total += acc_[k];
    }
    out["total"] = total;
    return out;
  }

 private:
  int switch_to(int phase) {
    const Clock::time_point now = Clock::now();
    acc_[static_cast<std::size_t>(current_)] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
    const int previous = current_;
    current_ = phase;
    return previous;
  }

  std::vector<std::string> names_;
  std::vector<double> acc_;
  int current_ = 0;
  Clock::time_point last_;
};

}  // namespace convexnn
