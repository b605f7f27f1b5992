// Exceptions inside OpenMP regions (private to cpp/src).
#pragma once

#include <exception>

namespace convexnn::detail {

// An exception must not leave an OpenMP region (that is std::terminate): run each body through run(),
// which keeps the first exception thrown by any thread, and call rethrow() after the region.
class ParallelErrors {
 public:
  template <class F>
  void run(F&& body) noexcept {
    try {
      body();
    } catch (...) {
#pragma omp critical(convexnn_parallel_errors)
      if (!first_) first_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::exception_ptr first_;
};

}  // namespace convexnn::detail
