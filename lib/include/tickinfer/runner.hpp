#pragma once
// The seam between the pipeline and a device: CPU today, CUDA (pinned staging, streams) where built.

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "tickinfer/model.hpp"

namespace tickinfer {

/// Executes batches for one worker. Owned by that worker; not thread-safe.
class Runner {
 public:
  virtual ~Runner() = default;
  /// Staging memory for the next batch: rows x input_width floats, row-major. The batcher writes
  /// features here directly (pinned host memory on CUDA), so there is no intermediate copy.
  virtual std::span<float> input(std::size_t rows) = 0;
  /// Runs `model` on the first `rows` staged rows. Returns rows x model.output_width() floats,
  /// valid until the next call. Throws on failure (the pipeline turns it into kModelError).
  virtual std::span<const float> run(const Model& model, std::size_t rows) = 0;
};

/// Makes runners for one device. Thread-safe.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::unique_ptr<Runner> make_runner(std::size_t max_batch, std::size_t input_width) const = 0;
  virtual std::string name() const = 0;
};

}  // namespace tickinfer
