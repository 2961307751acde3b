#pragma once
// The pipeline's runner for models with a native plan (NativeModel; TorchScript models whose plan validated).

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "model/native/plan.hpp"
#include "tickinfer/model.hpp"

namespace tickinfer::native {

/// Runs a model's native plan for one pipeline worker: keeps the Executor of the last plan it ran and makes a new
/// one (allocating its arena, once) when a model with another plan arrives. Not thread-safe; owned by one worker.
class PlanRunner {
 public:
  explicit PlanRunner(std::size_t max_rows) : max_rows_(max_rows) {}
  /// True when `model` has a native plan this runner can run.
  bool can_run(const Model& model);
  /// Runs rows (<= max_rows) of `input` through `model`'s plan into `output`. Call can_run() first.
  void run(const float* input, std::size_t rows, float* output) { executor_->run(input, rows, output); }

 private:
  std::size_t max_rows_;
  std::optional<Executor> executor_;  // holds the plan it was made for
  std::uint64_t model_id_ = 0;        // Model::id() of the model last seen (0: none)
  bool model_native_ = false;         // whether that model has a native plan (then executor_ runs it)
};

}  // namespace tickinfer::native
