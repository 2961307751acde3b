#pragma once
// A model the native engine runs: metadata plus a validated Plan. Torch-free.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/native/plan.hpp"
#include "tickinfer/model.hpp"

namespace tickinfer::native {

/// Implemented by every Model that carries a validated native plan (native models; TorchScript models whose plan
/// passed validation against LibTorch). Runners and the Predictor look for it once per model version.
class HasNativePlan {
 public:
  virtual ~HasNativePlan() = default;
  virtual const std::shared_ptr<const Plan>& native_plan() const noexcept = 0;
};

/// The plan of `model`, or null when it has none. A dynamic_cast: call once per model version, not per request.
const std::shared_ptr<const Plan>* native_plan_of(const Model& model) noexcept;

class NativeModel final : public Model, public HasNativePlan {
 public:
  NativeModel(ModelMetadata metadata, std::uint64_t version, std::string source, std::shared_ptr<const Plan> plan)
      : Model(std::move(metadata), version, std::move(source), "native"), plan_(std::move(plan)) {}
  const std::shared_ptr<const Plan>& native_plan() const noexcept override { return plan_; }

 private:
  std::shared_ptr<const Plan> plan_;
};

/// The checks a native plan passes before it serves, on the loader thread:
///  - the golden rows reproduce the golden outputs within `tolerance` (skipped when the metadata has none);
///  - at every batch size in `batch_sizes`: every output finite, row i of the batch equal to row i run alone (first
///    and last row), and the same batch run twice giving the same outputs.
/// Throws Error (kGoldenMismatch, kNonFiniteOutput, kModelError) naming `source`, the batch size, row and output.
void validate_plan(const Plan& plan, const ModelMetadata& metadata, const std::vector<std::size_t>& batch_sizes,
                   float tolerance, const std::string& source);

}  // namespace tickinfer::native
