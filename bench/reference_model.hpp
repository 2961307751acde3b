#pragma once
// The bundled reference MLP (32-64-64-1), loaded once per benchmark binary and warmed up at every batch size to 64.

#include <memory>
#include <string>

#include "tickinfer/torchscript.hpp"

namespace tickinfer::bench {

inline std::shared_ptr<const Model> reference_mlp() {
  static const auto model = [] {
    LoadOptions options;
    for (std::size_t b = 1; b <= 64; ++b) options.warmup_batch_sizes.push_back(b);
    return load_torchscript(std::string(TICKINFER_MODEL_DIR) + "/mlp.pt", options);
  }();
  return model;
}

}  // namespace tickinfer::bench
