#pragma once
// Implemented in cuda_runner.cpp, which is compiled only when TICKINFER_WITH_CUDA is defined.

#include <memory>

#include "tickinfer/runner.hpp"

namespace tickinfer {

std::shared_ptr<const Backend> make_cuda_backend(int device_index);

}  // namespace tickinfer
