// The progress callback shared by the solver bindings (gated and exact): run between iterations with the
// GIL re-acquired, it polls for Ctrl-C (stop with status "interrupted" and keep the best certified point),
// prints one line per check when verbose, and calls the user's callback (returning False stops the solve).
// A Python exception raised there is kept in *error for the caller to rethrow after the solve.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "convexnn/solvers/gated_solver.hpp"

namespace convexnn::python {

inline std::function<bool(const IterInfo&)> progress_callback(bool verbose, pybind11::object user,
                                                              std::shared_ptr<pybind11::error_already_set>* error,
                                                              const std::string* label) {
  namespace py = pybind11;
  CONVEXNN_CHECK(user.is_none() || PyCallable_Check(user.ptr()), "callback must be callable or None");
  return [verbose, user, error, label](const IterInfo& info) -> bool {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      // Ctrl-C: stop and return the best point ("interrupted"); swallow the KeyboardInterrupt.
      PyErr_Clear();
      return false;
    }
    try {
      if (verbose) {
        std::ostringstream os;
        os << (label && !label->empty() ? *label : std::string("gated")) << " iter " << info.iteration << "  objective "
           << info.objective << "  dual " << info.dual_objective << "  gap " << info.gap << "  active " << info.n_active
           << "  ws " << info.working_set << "  time " << info.time << "s";
        py::print(os.str(), py::arg("flush") = true);
      }
      if (!user.is_none()) {
        py::dict d;
        d["iteration"] = info.iteration;
        d["objective"] = info.objective;
        d["dual_objective"] = info.dual_objective;
        d["gap"] = info.gap;
        d["n_active"] = info.n_active;
        d["working_set"] = info.working_set;
        d["time"] = info.time;
        py::object r = user(d);
        if (!r.is_none() && !r.cast<bool>()) return false;
      }
    } catch (py::error_already_set& e) {
      *error = std::make_shared<py::error_already_set>(std::move(e));
      return false;
    }
    return true;
  };
}

// A solver's certificate history as a dict of equal-length arrays (iteration, objective, dual_objective, gap,
// time, n_active), the one format both solver bindings return.
inline pybind11::dict history_to_dict(const std::vector<HistoryEntry>& history) {
  namespace py = pybind11;
  const auto H = static_cast<py::ssize_t>(history.size());
  py::array_t<index_t> h_iter(H), h_act(H);
  py::array_t<double> h_obj(H), h_dual(H), h_gap(H), h_time(H);
  for (py::ssize_t k = 0; k < H; ++k) {
    const auto& e = history[static_cast<std::size_t>(k)];
    h_iter.mutable_at(k) = e.iteration;
    h_act.mutable_at(k) = e.n_active;
    h_obj.mutable_at(k) = e.objective;
    h_dual.mutable_at(k) = e.dual_objective;
    h_gap.mutable_at(k) = e.gap;
    h_time.mutable_at(k) = e.time;
  }
  py::dict hist;
  hist["iteration"] = h_iter;
  hist["objective"] = h_obj;
  hist["dual_objective"] = h_dual;
  hist["gap"] = h_gap;
  hist["time"] = h_time;
  hist["n_active"] = h_act;
  return hist;
}

}  // namespace convexnn::python
