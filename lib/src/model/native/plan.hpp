#pragma once
// The native engine's execution plan: a graph compiled into a fixed sequence of kernels over a preallocated
// arena. Torch-free. A Plan is immutable and shared by every thread that runs the model; each thread runs it
// through its own Executor (the arena), so run() takes no lock and allocates nothing.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/native/graph.hpp"

namespace tickinfer::native {

/// Memory aligned to a cache line, sized once.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t floats);
  float* data() noexcept { return data_.get(); }
  const float* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }

 private:
  struct Free {
    void operator()(float* p) const noexcept;
  };
  std::unique_ptr<float[], Free> data_;
  std::size_t size_ = 0;
};

enum class Activation : std::uint8_t { kNone, kRelu, kLeakyRelu, kClamp };

/// One kernel call. Values live in the arena at `offset` with a row stride of `stride` floats (value 0, the
/// input, is read from the caller's rows with stride input_width).
struct Step {
  Op op = Op::kIdentity;
  Activation activation = Activation::kNone;  // fused into kDense / kAffine
  float alpha = 0.0f, beta = 0.0f;            // the op's (or fused activation's) parameters
  bool reversed = false;
  std::size_t width = 0;              // output features
  int out = 0;                        // value id written
  std::vector<int> inputs;            // value ids read
  std::size_t weights = 0, bias = 0;  // offsets into Plan::constants(); bias == kNoBias: none
  std::size_t in_width = 0;           // kDense: input features
  std::size_t padded_width = 0;       // kDense: packed output columns (multiple of kLanes); with `dot`, packed inputs
  bool dot = false;                   // kDense in dot-product form (narrow outputs): weights [out][padded_width]
};

inline constexpr std::size_t kNoConstant = ~std::size_t{0};
inline constexpr std::size_t kLanes = 16;  // padding of packed weights and arena rows (one AVX-512 register)
// Dense layers with fewer outputs than this and at least kDotMinInputs inputs run as dot products.
inline constexpr std::size_t kDotMaxOutputs = 8;
inline constexpr std::size_t kDotMinInputs = 16;

class Plan {
 public:
  /// Simplifies, validates and packs `graph`. Throws Error(kUnsupported) naming
  /// the node it cannot compile.
  static std::shared_ptr<const Plan> compile(const Graph& graph);

  std::size_t input_width() const noexcept { return input_width_; }
  std::size_t output_width() const noexcept { return output_width_; }
  const std::vector<Step>& steps() const noexcept { return steps_; }
  /// One line per step, for logs: "dense 32->64 +relu; dense 64->64 +relu; dense 64->1".
  std::string describe() const;

 private:
  friend class Executor;
  Plan() = default;
  std::size_t input_width_ = 0, output_width_ = 0;
  std::vector<Step> steps_;
  AlignedBuffer constants_;                // packed weights, biases, constants
  std::vector<std::size_t> value_offset_;  // arena offset of each value, in floats per batch row (x max_rows)
  std::vector<std::size_t> value_stride_;  // row stride (floats) of each value
  std::vector<std::size_t> value_width_;   // features of each value
  std::size_t arena_floats_per_row_ = 0;
  std::size_t scratch_floats_ = 0;  // a zero-padded input row for dot-product layers
  int output_ = 0;
};

/// A thread's working memory for one Plan, for batches of up to max_rows. Not thread-safe: one per thread (or per
/// pipeline worker). The constructor allocates; run() never does.
class Executor {
 public:
  Executor(std::shared_ptr<const Plan> plan, std::size_t max_rows);
  /// Runs rows (1..max_rows) of input_width floats each, contiguous; writes rows x output_width floats to
  /// `output`. Never allocates, never locks. rows == 0 does nothing; rows > max_rows throws std::out_of_range.
  void run(const float* input, std::size_t rows, float* output);
  const Plan& plan() const noexcept { return *plan_; }
  const std::shared_ptr<const Plan>& shared_plan() const noexcept { return plan_; }
  std::size_t max_rows() const noexcept { return max_rows_; }

 private:
  std::shared_ptr<const Plan> plan_;
  std::size_t max_rows_;
  AlignedBuffer arena_;
};

}  // namespace tickinfer::native
