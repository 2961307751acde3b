#include "model/native/native_runner.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "model/native/native_model.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/native.hpp"

namespace tickinfer::native {

bool PlanRunner::can_run(const Model& model) {
  // The model's id, never reused (unlike its address), says whether this is the model last seen: the batch after
  // a swap pays one cross-cast and, for a new plan, a new Executor (an allocation); every other batch an integer
  // compare. If emplace throws, model_id_ is not updated and the next batch tries again.
  if (model.id() != model_id_) {
    const auto* plan = native_plan_of(model);
    if (plan != nullptr && (!executor_ || executor_->shared_plan() != *plan)) executor_.emplace(*plan, max_rows_);
    model_native_ = plan != nullptr;
    model_id_ = model.id();
  }
  return model_native_;
}

}  // namespace tickinfer::native

// ---- the pipeline backend ----

namespace tickinfer {
namespace {

class NativeRunner final : public Runner {
 public:
  NativeRunner(std::size_t max_batch, std::size_t input_width)
      : max_batch_(max_batch), width_(input_width), input_(max_batch * input_width), plans_(max_batch) {
    if (max_batch == 0 || input_width == 0)
      throw Error(ErrorCode::kInvalidConfig, "native runner: max_batch and input_width must be > 0");
  }

  std::span<float> input(std::size_t rows) override {
    if (rows > max_batch_)
      throw std::out_of_range("native runner: batch of " + std::to_string(rows) + " rows exceeds max_batch " +
                              std::to_string(max_batch_));
    return {input_.data(), rows * width_};
  }

  std::span<const float> run(const Model& model, std::size_t rows) override {
    if (rows > max_batch_)
      throw std::out_of_range("native runner: batch of " + std::to_string(rows) + " rows exceeds max_batch " +
                              std::to_string(max_batch_));
    if (model.input_width() != width_)
      throw std::runtime_error("native runner: " + model.source() + " has " + std::to_string(model.input_width()) +
                               " input features, the runner stages " + std::to_string(width_));
    if (!plans_.can_run(model)) throw std::runtime_error("native runner: " + model.source() + " has no native plan");
    const std::size_t count = rows * model.output_width();
    if (count > output_.size()) output_.resize(max_batch_ * model.output_width());  // a wider model: once
    if (rows == 0) return {};
    plans_.run(input_.data(), rows, output_.data());
    return {output_.data(), count};
  }

 private:
  std::size_t max_batch_, width_;
  std::vector<float> input_, output_;
  native::PlanRunner plans_;
};

class NativeBackend final : public Backend {
 public:
  std::unique_ptr<Runner> make_runner(std::size_t max_batch, std::size_t input_width) const override {
    return std::make_unique<NativeRunner>(max_batch, input_width);
  }
  std::string name() const override { return "native"; }
};

}  // namespace

std::shared_ptr<const Backend> make_native_backend() { return std::make_shared<const NativeBackend>(); }

}  // namespace tickinfer
