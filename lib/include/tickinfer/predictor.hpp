#pragma once
// Direct mode: a trading engine's own thread runs the current model synchronously, with no queue hop.

#include <cstdint>
#include <memory>
#include <span>

#include "tickinfer/model_slot.hpp"

namespace tickinfer {

enum class PredictStatus : std::uint8_t {
  kOk,          // outputs hold the prediction of model_version()
  kInvalid,     // features or outputs have the wrong size; nothing ran
  kNoModel,     // the slot holds no model
  kNotNative,   // the current model has no native plan (direct mode runs the native engine only)
  kModelError,  // an output was NaN or Inf (outputs are left as computed), or memory for a new model ran out
};

const char* to_string(PredictStatus status) noexcept;

/// Runs the current model of a ModelSlot on one row at a time, on the calling thread. One Predictor per thread:
/// not thread-safe. predict() never blocks and never locks while the model is unchanged (one acquire load of the
/// slot's generation per call); after a swap it takes the slot's mutex once and allocates the new model's working
/// memory once. A model that is in use when a new one is published finishes the call it is in.
class Predictor {
 public:
  /// Allocates the working memory for the slot's current model (if it has a native plan).
  explicit Predictor(std::shared_ptr<const ModelSlot> slot);
  ~Predictor();
  Predictor(Predictor&&) noexcept;
  Predictor& operator=(Predictor&&) noexcept;

  /// features: input_width floats; outputs: output_width floats. Allocation-free on the unchanged path.
  [[nodiscard]] PredictStatus predict(std::span<const float> features, std::span<float> outputs) noexcept;

  /// Of the model the last predict() used (0 before the first).
  std::uint64_t model_version() const noexcept;
  /// Widths of the current model (0 when there is none).
  std::size_t input_width() const noexcept;
  std::size_t output_width() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickinfer
