#include "support/fake_model.hpp"

#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::testing {
namespace {

ModelMetadata fake_metadata(std::size_t width) {
  ModelMetadata m;
  m.format_version = kMetadataFormatVersion;
  m.name = "fake";
  for (std::size_t i = 0; i < width; ++i) m.input_names.push_back(std::string(1, 'f').append(std::to_string(i)));
  m.output_names = {"sum", "first"};
  return m;
}

class FakeRunner : public Runner {
 public:
  FakeRunner(const FakeBackend& backend, std::size_t max_batch, std::size_t width)
      : backend_(backend), width_(width), input_(max_batch * width), output_(max_batch * 4) {}

  std::span<float> input(std::size_t rows) override { return {input_.data(), rows * width_}; }

  std::span<const float> run(const Model& model, std::size_t rows) override {
    if (const auto* sequence = dynamic_cast<const FakeSequenceModel*>(&model)) {
      backend_.forwards.fetch_add(1, std::memory_order_relaxed);
      backend_.rows_run.fetch_add(rows, std::memory_order_relaxed);
      if (model.packed_input_width() != width_) throw std::runtime_error("fake runner: wrong staged width");
      for (std::size_t r = 0; r < rows; ++r)
        if (input_[r * width_] == FakeModel::kThrowOn) throw std::runtime_error("fake sequence model refused a row");
      for (std::size_t r = 0; r < rows; ++r) sequence->step(&input_[r * width_], &output_[r * 4]);
      return {output_.data(), rows * 4};
    }
    const auto& fake = dynamic_cast<const FakeModel&>(model);
    backend_.forwards.fetch_add(1, std::memory_order_relaxed);
    backend_.rows_run.fetch_add(rows, std::memory_order_relaxed);
    if (fake.forward_time().count() > 0) {
      const std::int64_t until = now_ns() + fake.forward_time().count() * 1000;
      while (now_ns() < until) {
      }
    }
    if (fake.throw_mode() == FakeModel::ThrowMode::kRuntimeError) throw std::runtime_error("fake model always throws");
    if (fake.throw_mode() == FakeModel::ThrowMode::kTickinferError)
      throw Error(ErrorCode::kUnsupported, "fake device lost");
    for (std::size_t r = 0; r < rows; ++r) {
      if (input_[r * width_] == FakeModel::kThrowOn) {
        std::string message = "fake model refused row ";  // two steps: GCC 12's -Wrestrict false positive
        message += std::to_string(r);
        throw std::runtime_error(message);
      }
    }
    for (std::size_t r = 0; r < rows; ++r) fake.reference(&input_[r * width_], &output_[r * 2]);
    return {output_.data(), rows * 2};
  }

 private:
  const FakeBackend& backend_;
  std::size_t width_;
  std::vector<float> input_, output_;
};

}  // namespace

FakeModel::FakeModel(std::size_t width, std::uint64_t version, float scale, float offset,
                     std::chrono::microseconds forward_time)
    : Model(fake_metadata(width), version, "fake-v" + std::to_string(version)),
      scale_(scale),
      offset_(offset),
      forward_time_(forward_time) {}

void FakeModel::reference(const float* features, float* out) const {
  const float sum = std::accumulate(features, features + input_width(), 0.0f);
  out[0] = features[0] == kNanOn ? std::numeric_limits<float>::quiet_NaN() : sum * scale_ + offset_;
  out[1] = features[0];
}

namespace {
ModelMetadata sequence_metadata(std::size_t width, std::vector<std::string> state_names) {
  ModelMetadata m = fake_metadata(width);
  m.name = "fake-sequence";
  m.output_names = {"ewma", "count"};
  m.state_names = std::move(state_names);
  return m;
}
}  // namespace

FakeSequenceModel::FakeSequenceModel(std::size_t width, std::uint64_t version, std::vector<std::string> state_names)
    : Model(sequence_metadata(width, std::move(state_names)), version, "fake-sequence-v" + std::to_string(version)) {}

void FakeSequenceModel::step(const float* in, float* out) const {
  const float count = in[input_width()] + 1.0f;
  const float decay = 1.0f / static_cast<float>(version() + 1);  // version 1: 0.5; each version computes its own
  const float ewma = decay * in[input_width() + 1] + in[0];
  out[0] = ewma;
  out[1] = count;
  out[2] = count;
  out[3] = ewma;
}

std::unique_ptr<Runner> FakeBackend::make_runner(std::size_t max_batch, std::size_t input_width) const {
  return std::make_unique<FakeRunner>(*this, max_batch, input_width);
}

}  // namespace tickinfer::testing
