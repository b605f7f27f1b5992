#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "convexnn_cuda/runtime.hpp"

namespace convexnn::cuda {

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later queries start clean
    return 0;
  }
  return n;
}

std::string device_name(int ordinal) {
  cudaDeviceProp prop{};
  const cudaError_t err = cudaGetDeviceProperties(&prop, ordinal);
  if (err != cudaSuccess) throw std::runtime_error(std::string("CUDA device query failed: ") + cudaGetErrorString(err));
  return prop.name;
}

}  // namespace convexnn::cuda
