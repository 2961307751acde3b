// The CPU runner and backend (LibTorch forward under InferenceMode on the worker thread), and device parsing.

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "model/native/native_runner.hpp"
#include "model/torch_error.hpp"
#include "model/torch_model.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/torchscript.hpp"

#ifdef TICKINFER_WITH_CUDA
#include <torch/cuda.h>

#include "cuda/cuda_backend.hpp"
#endif

namespace tickinfer {
namespace {

using internal::shape_of;
using internal::to_i64;
using internal::torch_error_text;

class CpuRunner final : public Runner {
 public:
  CpuRunner(std::size_t max_batch, std::size_t input_width)
      : max_batch_(max_batch),
        width_(input_width),
        input_(torch::zeros({to_i64(max_batch), to_i64(input_width)}, torch::kFloat)),
        input_data_(input_.data_ptr<float>()),
        output_(max_batch) {
    if (max_batch == 0 || input_width == 0)
      throw Error(ErrorCode::kInvalidConfig, "cpu runner: max_batch and input_width must be > 0");
    // One view per row count, so run() hands the executor a ready tensor instead of slicing per batch.
    views_.reserve(max_batch + 1);
    for (std::size_t rows = 0; rows <= max_batch; ++rows) views_.push_back(input_.narrow(0, 0, to_i64(rows)));
    stack_.reserve(4);
  }

  std::span<float> input(std::size_t rows) override {
    if (rows > max_batch_)
      throw std::out_of_range("cpu runner: batch of " + std::to_string(rows) + " rows exceeds max_batch " +
                              std::to_string(max_batch_));
    return {input_data_, rows * width_};
  }

  std::span<const float> run(const Model& model, std::size_t rows) override {
    // A model with a validated native plan (a TorchScript model loaded with engine auto/native, or an ONNX
    // model) runs on the native engine: no interpreter, no allocation after the first batch of a new version.
    if (plans_.can_run(model)) {
      check_shape(model, rows);
      const std::size_t count = rows * model.output_width();
      if (count > output_.size()) output_.resize(max_batch_ * model.output_width());  // a wider model: once
      if (rows == 0) return {};
      plans_.run(input_data_, rows, output_.data());
      return {output_.data(), count};
    }
    const auto* torch_model = dynamic_cast<const internal::TorchModel*>(&model);
    if (torch_model == nullptr)
      throw std::runtime_error("cpu runner: " + model.source() + " is not a TorchScript model");
    if (!torch_model->device().is_cpu()) {
      throw std::runtime_error("cpu runner: " + model.source() + " is loaded on " + torch_model->device().str());
    }
    check_shape(model, rows);
    const std::size_t out_width = model.packed_output_width();  // a sequence model: outputs, then the new state
    const std::size_t count = rows * out_width;
    if (rows == 0) return {};
    // ATen applies its thread count to each thread lazily; make sure this (worker) thread has it before
    // the first BLAS call, which would otherwise use OpenMP's default.
    if (std::this_thread::get_id() != thread_) {
      at::init_num_threads();
      thread_ = std::this_thread::get_id();
    }
    if (count > output_.size()) output_.resize(max_batch_ * out_width);  // a wider model: grow once

    at::Tensor output;
    try {
      c10::InferenceMode guard;
      stack_.clear();
      stack_.emplace_back(views_[rows]);
      torch_model->run(stack_);
      if (stack_.size() != 1 || !stack_.back().isTensor()) throw std::runtime_error("forward did not return a Tensor");
      output = std::move(stack_.back()).toTensor();
      stack_.clear();
      if (!output.device().is_cpu() || output.scalar_type() != torch::kFloat || !output.is_contiguous()) {
        output = output.to(torch::kCPU, torch::kFloat).contiguous();
      }
    } catch (const std::exception& e) {
      stack_.clear();
      throw std::runtime_error(model.source() + ": forward failed: " + torch_error_text(e));
    }
    if (output.dim() == 0 || output.size(0) != to_i64(rows) || static_cast<std::size_t>(output.numel()) != count) {
      throw std::runtime_error(model.source() + ": forward returned shape " + shape_of(output) + " for " +
                               std::to_string(rows) + " rows, expected " + std::to_string(out_width) +
                               " outputs per row");
    }
    std::memcpy(output_.data(), output.data_ptr<float>(), count * sizeof(float));
    return {output_.data(), count};
  }

 private:
  void check_shape(const Model& model, std::size_t rows) const {
    if (model.packed_input_width() != width_) {
      throw std::runtime_error(
          "cpu runner: " + model.source() + " has " + std::to_string(model.input_width()) + " input features" +
          (model.state_width() ? " + " + std::to_string(model.state_width()) + " of state" : std::string()) +
          ", the runner stages " + std::to_string(width_));
    }
    if (rows > max_batch_)
      throw std::out_of_range("cpu runner: batch of " + std::to_string(rows) + " rows exceeds max_batch " +
                              std::to_string(max_batch_));
  }

  std::size_t max_batch_;
  std::size_t width_;
  at::Tensor input_;  // [max_batch, width], the staging memory input() hands out
  float* input_data_;
  std::vector<at::Tensor> views_;  // views_[rows] = input_[0:rows]
  torch::jit::Stack stack_;        // reused: capacity stays, so forward's argument passing does not allocate
  std::vector<float> output_;
  std::thread::id thread_;
  native::PlanRunner plans_{max_batch_};  // after max_batch_: initialised from it
};

class CpuBackend final : public Backend {
 public:
  std::unique_ptr<Runner> make_runner(std::size_t max_batch, std::size_t input_width) const override {
    return std::make_unique<CpuRunner>(max_batch, input_width);
  }
  std::string name() const override { return "cpu"; }
};

// "cuda" -> 0, "cuda:N" -> N; nullopt if `device` is not a CUDA device string.
std::optional<int> cuda_index(std::string_view device) {
  if (device == "cuda") return 0;
  constexpr std::string_view kPrefix = "cuda:";
  if (!device.starts_with(kPrefix)) return std::nullopt;
  const std::string_view digits = device.substr(kPrefix.size());
  if (digits.empty() || digits.size() > 3 ||
      !std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    throw Error(ErrorCode::kInvalidConfig, "device '" + std::string(device) + "': expected \"cuda:N\"");
  }
  return std::stoi(std::string(digits));
}

}  // namespace

namespace internal {

c10::Device parse_device(std::string_view device) {
  if (device == "cpu") return c10::Device(c10::kCPU);
  const std::optional<int> index = cuda_index(device);
  if (!index) {
    throw Error(ErrorCode::kInvalidConfig, "device '" + std::string(device) + "': expected \"cpu\" or \"cuda[:N]\"");
  }
#ifdef TICKINFER_WITH_CUDA
  const auto count = torch::cuda::device_count();
  if (static_cast<std::size_t>(*index) >= count) {
    throw Error(ErrorCode::kUnsupported,
                "device '" + std::string(device) + "': this machine has " + std::to_string(count) + " CUDA device(s)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(*index));
#else
  throw Error(ErrorCode::kUnsupported,
              "device '" + std::string(device) + "': this build of tickinfer has no CUDA support");
#endif
}

}  // namespace internal

std::shared_ptr<const Backend> make_cpu_backend(const CpuBackendOptions& options) {
  if (options.intra_op_threads < 0) {
    throw Error(ErrorCode::kInvalidConfig,
                "cpu backend: intra_op_threads must be >= 0, got " + std::to_string(options.intra_op_threads));
  }
  if (options.intra_op_threads > 0) at::set_num_threads(options.intra_op_threads);
  return std::make_shared<const CpuBackend>();
}

std::shared_ptr<const Backend> make_cpu_backend() { return make_cpu_backend(CpuBackendOptions{}); }

std::shared_ptr<const Backend> make_backend(std::string_view device) {
  if (device == "cpu") return make_cpu_backend();
  const std::optional<int> index = cuda_index(device);
  if (!index) {
    throw Error(ErrorCode::kInvalidConfig, "device '" + std::string(device) + "': expected \"cpu\" or \"cuda[:N]\"");
  }
#ifdef TICKINFER_WITH_CUDA
  return make_cuda_backend(*index);
#else
  throw Error(ErrorCode::kUnsupported,
              "device '" + std::string(device) + "': this build of tickinfer has no CUDA runner");
#endif
}

}  // namespace tickinfer
