#include "tickinfer/predictor.hpp"

#include <cmath>
#include <new>
#include <optional>

#include "model/native/native_model.hpp"
#include "model/native/plan.hpp"

namespace tickinfer {

const char* to_string(PredictStatus status) noexcept {
  switch (status) {
    case PredictStatus::kOk:
      return "ok";
    case PredictStatus::kInvalid:
      return "invalid";
    case PredictStatus::kNoModel:
      return "no_model";
    case PredictStatus::kNotNative:
      return "not_native";
    case PredictStatus::kModelError:
      return "model_error";
  }
  return "unknown";
}

struct Predictor::Impl {
  std::shared_ptr<const ModelSlot> slot;
  std::shared_ptr<const Model> model;  // what the executor was made for
  std::uint64_t generation = 0;
  std::optional<native::Executor> executor;  // empty when the model has no native plan
  std::uint64_t version = 0;

  // On a swap only: rebuild the executor for the new model. Allocates.
  void adopt() {
    executor.reset();
    if (!model) return;
    if (const auto* plan = native::native_plan_of(*model)) executor.emplace(*plan, 1);
  }
};

Predictor::Predictor(std::shared_ptr<const ModelSlot> slot) : impl_(std::make_unique<Impl>()) {
  impl_->slot = std::move(slot);
  impl_->slot->refresh(impl_->model, impl_->generation);
  impl_->adopt();
}

Predictor::~Predictor() = default;
Predictor::Predictor(Predictor&&) noexcept = default;
Predictor& Predictor::operator=(Predictor&&) noexcept = default;

PredictStatus Predictor::predict(std::span<const float> features, std::span<float> outputs) noexcept {
  Impl& impl = *impl_;
  try {
    // One acquire load when nothing changed (ModelSlot::refresh); the mutex and an allocation after a swap.
    if (impl.slot->refresh(impl.model, impl.generation)) impl.adopt();
  } catch (const std::bad_alloc&) {
    impl.executor.reset();
    return PredictStatus::kModelError;
  }
  if (!impl.model) return PredictStatus::kNoModel;
  if (!impl.executor) return PredictStatus::kNotNative;
  const native::Plan& plan = impl.executor->plan();
  if (features.size() != plan.input_width() || outputs.size() != plan.output_width()) return PredictStatus::kInvalid;
  impl.executor->run(features.data(), 1, outputs.data());  // rows == 1 <= max_rows: cannot throw
  impl.version = impl.model->version();
  for (const float v : outputs) {
    if (!std::isfinite(v)) return PredictStatus::kModelError;
  }
  return PredictStatus::kOk;
}

std::uint64_t Predictor::model_version() const noexcept { return impl_->version; }
std::size_t Predictor::input_width() const noexcept { return impl_->model ? impl_->model->input_width() : 0; }
std::size_t Predictor::output_width() const noexcept { return impl_->model ? impl_->model->output_width() : 0; }

}  // namespace tickinfer
