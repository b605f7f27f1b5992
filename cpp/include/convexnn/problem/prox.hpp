// Group norms of the gated program and their proximal operators.
//
// A block U_i is a (d x c) row-major matrix. groups="output": one group per column U_i[:, k]
// (c groups per block); groups="neuron": the whole block is one group (Frobenius norm).
// For c = 1 both coincide.
#pragma once

#include <string>

#include "convexnn/core/common.hpp"

namespace convexnn {

enum class Groups { output, neuron };

Groups parse_groups(const std::string& name);  // throws std::invalid_argument naming `groups`
const char* groups_name(Groups g);

// Omega restricted to one block: sum_k ||U[:, k]|| (output) or ||U||_F (neuron), in double.
template <class T>
double block_penalty(const T* u, index_t d, index_t c, Groups g);

// The dual norm of Omega on one block: max_k ||G[:, k]|| (output) or ||G||_F (neuron), in double.
template <class T>
double block_dual_norm(const T* g, index_t d, index_t c, Groups g_kind);

// In place: U <- prox_{thresh * Omega}(U), i.e. block soft-thresholding of every group.
// Returns true if the block is nonzero afterwards.
template <class T>
bool block_soft_threshold(T* u, index_t d, index_t c, Groups g, double thresh);

// Exact minimiser of the group-lasso model of one block in the eigenbasis of its metric:
//
//   min_V  sum_j (s * h_j / 2) ||V_j||^2 - <B, V> + beta * Omega(V)
//
// where V, B are (d x c) row-major in eigen coordinates (row j <-> eigenvalue h_j >= 0) and s > 0.
// Groups "output" solve one such problem per column, "neuron" one for the whole block; each group is
// zero iff ||B_group|| <= beta, otherwise V = B / (s h + beta / ||V||) with ||V|| the root of a
// scalar secular equation (safeguarded Newton). Components with h_j <= h_floor carry no curvature;
// they are set to 0 (they cannot change the loss, and the penalty prefers 0). beta = 0 gives the
// pseudo-inverse solution. Writes V (may alias B). Returns true if V != 0.
bool metric_group_solve(const double* B, const double* h, index_t d, index_t c, Groups g, double s, double beta,
                        double h_floor, double* V);

// The scalar core of metric_group_solve: the root nu > 0 of  sum_j w_j / (a_j nu + beta)^2 = 1, where
// w_j >= 0 (sums of squared entries of B sharing the curvature a_j = s * h_j >= 0). Requires
// sum_j w_j > beta^2 > 0 and a_j > 0 wherever w_j > 0. Safeguarded Newton on 1/sqrt(S(nu)) - 1 (exact in
// one step when all a_j are equal), relative accuracy ~1e-15.
double secular_norm(const double* w, const double* a, index_t m, double beta);

}  // namespace convexnn
