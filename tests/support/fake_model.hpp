#pragma once
// A Torch-free model and backend for pipeline tests (and ThreadSanitizer runs).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tickinfer/model.hpp"
#include "tickinfer/runner.hpp"

namespace tickinfer::testing {

/// outputs[row] = {sum(features) * scale + offset, features[0]}; behaviours triggered by feature 0:
/// kThrowOn -> the batch throws; kNanOn -> that row's first output is NaN. set_throw_mode() makes every
/// forward throw (warm-up included), for tests of failing models.
class FakeModel : public Model {
 public:
  static constexpr float kThrowOn = -999.0f;
  static constexpr float kNanOn = 1e9f;

  enum class ThrowMode : int {
    kNone,
    kRuntimeError,    // std::runtime_error("fake model always throws")
    kTickinferError,  // tickinfer::Error(kUnsupported, "fake device lost")
  };

  FakeModel(std::size_t width, std::uint64_t version, float scale = 1.0f, float offset = 0.0f,
            std::chrono::microseconds forward_time = std::chrono::microseconds(0));

  float scale() const noexcept { return scale_; }
  float offset() const noexcept { return offset_; }
  std::chrono::microseconds forward_time() const noexcept { return forward_time_; }
  /// Expected outputs for one row.
  void reference(const float* features, float* out) const;

  /// Thread-safe; takes effect at the next forward.
  void set_throw_mode(ThrowMode mode) const noexcept { throw_mode_.store(mode, std::memory_order_relaxed); }
  ThrowMode throw_mode() const noexcept { return throw_mode_.load(std::memory_order_relaxed); }

 private:
  float scale_, offset_;
  std::chrono::microseconds forward_time_;
  mutable std::atomic<ThrowMode> throw_mode_{ThrowMode::kNone};  // relaxed: a test switch, orders nothing
};

/// A sequence model for per-key state tests: state {count, ewma}; each row steps it (count' = count + 1,
/// ewma' = 0.5 * ewma + features[0]) and outputs {ewma', count'}. The ewma depends on the order of a key's rows, so a
/// reordered, shared or lost state shows. features[0] == FakeModel::kThrowOn makes the forward throw.
class FakeSequenceModel : public Model {
 public:
  FakeSequenceModel(std::size_t width, std::uint64_t version, std::vector<std::string> state_names = {"count", "ewma"});
  /// One step: `in` = features then state (input_width() + 2), `out` = outputs then new state (4 floats).
  void step(const float* in, float* out) const;
};

/// Runs FakeModel and FakeSequenceModel; counts forwards and rows so tests can check batching.
class FakeBackend : public Backend {
 public:
  std::unique_ptr<Runner> make_runner(std::size_t max_batch, std::size_t input_width) const override;
  std::string name() const override { return "fake"; }

  mutable std::atomic<std::uint64_t> forwards{0};
  mutable std::atomic<std::uint64_t> rows_run{0};
};

}  // namespace tickinfer::testing
