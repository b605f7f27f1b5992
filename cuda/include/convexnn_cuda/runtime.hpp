// CUDA runtime helpers: error checking that throws instead of aborting, device queries.
#pragma once

#include <string>

namespace convexnn::cuda {

// Number of visible CUDA devices; 0 when there is no driver or no GPU (never throws).
int device_count() noexcept;
// Human-readable name of device `ordinal`; throws std::runtime_error if it does not exist.
std::string device_name(int ordinal);

}  // namespace convexnn::cuda
