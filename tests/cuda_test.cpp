// The CUDA runner on a real GPU: CPU-equal outputs for every batch size, page-locked staging, its own streams,
// graph replay equal to eager, and failures that fail a batch (or the runner) without hanging.
// Built only where LibTorch has CUDA; every test skips when the machine has no CUDA device.

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cuda/cuda_backend.hpp"
#include "model/torch_model.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/torchscript.hpp"
#include "tickinfer/waiter.hpp"

namespace tickinfer {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxBatch = 256;

std::string model_path(const std::string& name) { return std::string(TICKINFER_TEST_MODEL_DIR) + "/" + name; }

std::shared_ptr<const Model> load_on(const std::string& name, const std::string& device) {
  LoadOptions options;
  options.device = device;
  return load_torchscript(model_path(name), options);
}

std::vector<float> random_rows(std::size_t rows, std::size_t width, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> values(rows * width);
  for (auto& v : values) v = dist(rng);
  return values;
}

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

std::vector<float> run_on(Runner& runner, const Model& model, const std::vector<float>& rows_data, std::size_t rows) {
  auto input = runner.input(rows);
  std::copy(rows_data.begin(), rows_data.end(), input.begin());
  const auto out = runner.run(model, rows);
  return {out.begin(), out.end()};
}

CudaRunner& as_cuda(Runner& runner) {
  auto* cuda = dynamic_cast<CudaRunner*>(&runner);
  if (cuda == nullptr) throw std::logic_error("not a CudaRunner");
  return *cuda;
}

/// A TorchScript model written in the test (for failure modes no exported model has), width 32, 1 output.
std::shared_ptr<const Model> scripted_model(const std::string& name, const std::string& forward_source) {
  torch::jit::Module module(name);
  module.define(forward_source);
  module.eval();
  ModelMetadata meta;
  meta.format_version = kMetadataFormatVersion;
  meta.name = name;
  meta.version = 1;
  for (int i = 0; i < 32; ++i) meta.input_names.push_back(std::string(1, 'f').append(std::to_string(i)));
  meta.output_names = {"y0"};
  meta.feature_schema_hash = "synthetic-v1";
  // Strings are appended, not built with "literal" + std::string: GCC 12 reports a false -Wrestrict there.
  std::string source = "test:";
  source += name;
  return std::make_shared<const internal::TorchModel>(std::move(module), c10::Device(c10::kCUDA, 0), std::move(meta), 1,
                                                      std::move(source));
}

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device on this machine";
  }
};

TEST_F(Cuda, MakeBackendRoutesCudaDevicesHere) {
  const auto backend = make_backend("cuda:0");
  EXPECT_EQ(backend->name(), "cuda:0");
  EXPECT_NE(dynamic_cast<const CudaBackend*>(backend.get()), nullptr);
  try {
    (void)make_backend("cuda:99");
    FAIL() << "cuda:99 must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
}

TEST_F(Cuda, RefusesAModelLoadedOnTheCpu) {
  const auto cpu_model = load_torchscript(model_path("mlp.pt"));
  auto runner = make_cuda_backend(0)->make_runner(8, cpu_model->input_width());
  std::fill_n(runner->input(1).begin(), cpu_model->input_width(), 0.5f);
  try {
    (void)runner->run(*cpu_model, 1);
    FAIL() << "a CPU model must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("LoadOptions::device"), std::string::npos) << e.what();
  }
}

class CudaVsCpu : public Cuda, public ::testing::WithParamInterface<const char*> {};

TEST_P(CudaVsCpu, OutputsMatchTheCpuWithinOneEMinusFourForEveryBatchSize) {
  const auto gpu_model = load_on(GetParam(), "cuda:0");
  const auto cpu_model = load_on(GetParam(), "cpu");
  const std::size_t width = gpu_model->input_width();
  auto cpu = make_cpu_backend()->make_runner(kMaxBatch, width);
  auto gpu = make_cuda_backend(0)->make_runner(kMaxBatch, width);
  float worst = 0;
  for (std::size_t rows = 1; rows <= kMaxBatch; ++rows) {
    const auto inputs = random_rows(rows, width, static_cast<std::uint32_t>(rows));
    const auto expected = run_on(*cpu, *cpu_model, inputs, rows);
    const auto got = run_on(*gpu, *gpu_model, inputs, rows);
    ASSERT_EQ(got.size(), rows * gpu_model->output_width());
    const float diff = max_abs_diff(got, expected);
    EXPECT_LE(diff, 1e-4f) << "batch size " << rows;
    worst = std::max(worst, diff);
  }
  std::printf("%s: max |gpu - cpu| over batch sizes 1..%zu: %g\n", GetParam(), kMaxBatch, static_cast<double>(worst));
}

INSTANTIATE_TEST_SUITE_P(ReferenceModels, CudaVsCpu, ::testing::Values("mlp.pt", "deep.pt"));

TEST_F(Cuda, StagingBuffersArePageLocked) {
  const auto model = load_on("mlp.pt", "cuda:0");
  auto runner = make_cuda_backend(0)->make_runner(kMaxBatch, model->input_width());
  auto& cuda = as_cuda(*runner);
  for (int i = 0; i < 4; ++i) {  // every ring slot gets its output buffer
    const auto staging = runner->input(3);
    std::fill(staging.begin(), staging.end(), 0.25f);
    (void)runner->run(*model, 3);
  }
  const auto info = cuda.introspect();
  ASSERT_GE(info.pinned_buffers.size(), 4u) << "at least two input and two output buffers";
  EXPECT_NE(std::find(info.pinned_buffers.begin(), info.pinned_buffers.end(), runner->input(1).data()),
            info.pinned_buffers.end())
      << "input() hands out one of the pinned buffers";
  for (const void* p : info.pinned_buffers) {
    unsigned int flags = 0;
    EXPECT_EQ(cudaHostGetFlags(&flags, const_cast<void*>(p)), cudaSuccess) << "not from cudaHostAlloc: " << p;
    cudaPointerAttributes attributes{};
    ASSERT_EQ(cudaPointerGetAttributes(&attributes, p), cudaSuccess);
    EXPECT_EQ(attributes.type, cudaMemoryTypeHost) << "not page-locked host memory: " << p;
  }
}

TEST_F(Cuda, CopiesAndForwardRunOnTheRunnersOwnStreams) {
  const auto model = load_on("mlp.pt", "cuda:0");
  auto runner = make_cuda_backend(0)->make_runner(16, model->input_width());
  auto& cuda = as_cuda(*runner);
  for (const bool pipelined : {false, true}) {
    const auto staging = runner->input(4);
    std::fill(staging.begin(), staging.end(), 0.1f);
    if (pipelined) {
      (void)cuda.collect(cuda.submit(*model, 4));
    } else {
      (void)runner->run(*model, 4);
    }
  }
  const auto info = cuda.introspect();
  EXPECT_NE(info.compute_stream_id, info.default_stream_id);
  EXPECT_NE(info.copy_stream_id, info.default_stream_id);
  EXPECT_NE(info.copy_stream_id, info.compute_stream_id);
  EXPECT_EQ(info.last_forward_stream_id, info.compute_stream_id) << "forward ran on another stream";
  for (const void* stream : {info.compute_stream, info.copy_stream}) {
    EXPECT_NE(stream, nullptr);
    EXPECT_NE(stream, static_cast<const void*>(cudaStreamLegacy));
    EXPECT_NE(stream, static_cast<const void*>(cudaStreamPerThread));
  }
  std::printf("streams: compute id %lld, copy id %lld, default id %lld\n",
              static_cast<long long>(info.compute_stream_id), static_cast<long long>(info.copy_stream_id),
              static_cast<long long>(info.default_stream_id));
}

TEST_F(Cuda, SubmitCollectKeepsTwoBatchesInFlightWithCorrectResults) {
  const auto gpu_model = load_on("deep.pt", "cuda:0");
  const auto cpu_model = load_on("deep.pt", "cpu");
  const std::size_t width = gpu_model->input_width(), rows = 64;
  auto cpu = make_cpu_backend()->make_runner(rows, width);
  auto runner = make_cuda_backend(0)->make_runner(rows, width);
  auto& cuda = as_cuda(*runner);
  std::vector<std::vector<float>> inputs;
  for (std::uint32_t i = 0; i < 20; ++i) inputs.push_back(random_rows(rows, width, 1000 + i));

  // Pipelined: stage and submit batch i+1 before collecting batch i.
  std::vector<CudaRunner::Ticket> tickets;
  std::vector<std::vector<float>> got(inputs.size());
  for (std::size_t i = 0; i <= inputs.size(); ++i) {
    if (i < inputs.size()) {
      auto staging = cuda.input(rows);
      std::copy(inputs[i].begin(), inputs[i].end(), staging.begin());
      tickets.push_back(cuda.submit(*gpu_model, rows));
    }
    if (i >= 1) {
      const auto out = cuda.collect(tickets[i - 1]);
      got[i - 1].assign(out.begin(), out.end());
    }
  }
  for (std::size_t i = 0; i < inputs.size(); ++i)
    EXPECT_LE(max_abs_diff(got[i], run_on(*cpu, *cpu_model, inputs[i], rows)), 1e-4f) << "batch " << i;

  // Two in flight fill a ring of two: a third input() must refuse instead of overwriting staged data.
  const auto first = cuda.submit(*gpu_model, rows);
  const auto second = cuda.submit(*gpu_model, rows);
  EXPECT_THROW((void)cuda.input(rows), std::logic_error);
  (void)cuda.collect(first);
  (void)cuda.collect(second);
  EXPECT_NO_THROW((void)cuda.input(rows));
}

class CudaGraphs : public Cuda, public ::testing::WithParamInterface<const char*> {};

TEST_P(CudaGraphs, ReplayMatchesEagerForEveryBatchSize) {
  const auto model = load_on(GetParam(), "cuda:0");
  const std::size_t width = model->input_width(), max_rows = 64;
  CudaBackendOptions graph_options;
  graph_options.cuda_graphs = true;
  const auto graphs = make_cuda_backend(graph_options);
  auto eager = make_cuda_backend(0)->make_runner(max_rows, width);
  auto replayed = graphs->make_runner(max_rows, width);
  float worst = 0;
  for (int pass = 0; pass < 3; ++pass) {
    for (std::size_t rows = 1; rows <= max_rows; ++rows) {
      for (int slot = 0; slot < 2; ++slot) {  // two runs in a row use both ring slots: a graph for each
        const auto inputs = random_rows(rows, width, static_cast<std::uint32_t>(rows * 7 + pass * 2 + slot));
        const auto expected = run_on(*eager, *model, inputs, rows);
        const auto got = run_on(*replayed, *model, inputs, rows);
        worst = std::max(worst, max_abs_diff(got, expected));
        EXPECT_TRUE(as_cuda(*replayed).last_batch_used_graph()) << "batch size " << rows << ", pass " << pass;
      }
    }
  }
  EXPECT_LE(worst, 1e-5f);  // the same kernels; cuBLAS may still pick another algorithm under capture
  const auto health = graphs->health();
  EXPECT_EQ(health.graph_capture_failures, 0u);
  EXPECT_EQ(health.graphs_captured, 2 * max_rows) << "one graph per (ring slot, batch size)";
  EXPECT_EQ(health.graph_replays, 6 * max_rows) << "every batch replays, the capturing one too";
  EXPECT_TRUE(health.healthy);
  std::printf("%s: max |graph - eager| = %g over %llu replays\n", GetParam(), static_cast<double>(worst),
              static_cast<unsigned long long>(health.graph_replays));
}

INSTANTIATE_TEST_SUITE_P(ReferenceModels, CudaGraphs, ::testing::Values("mlp.pt", "deep.pt"));

TEST_F(Cuda, AFailedCaptureFallsBackToEagerAndSaysWhy) {
  // throwing_model reads a value back to the host in forward (bool(tensor)): legal eagerly, illegal in a capture.
  const auto gpu_model = load_on("throwing_model.pt", "cuda:0");
  const auto cpu_model = load_on("throwing_model.pt", "cpu");
  const std::size_t width = gpu_model->input_width();
  std::mutex mutex;
  std::vector<std::string> lines;
  CudaBackendOptions options;
  options.cuda_graphs = true;
  options.log = [&](const LogRecord& record) {
    std::lock_guard lock(mutex);
    lines.push_back(record.message);
  };
  const auto backend = make_cuda_backend(options);
  auto runner = backend->make_runner(8, width);
  auto cpu = make_cpu_backend()->make_runner(8, width);
  for (std::size_t rows = 1; rows <= 8; ++rows) {
    const auto inputs = random_rows(rows, width, static_cast<std::uint32_t>(rows));
    EXPECT_LE(max_abs_diff(run_on(*runner, *gpu_model, inputs, rows), run_on(*cpu, *cpu_model, inputs, rows)), 1e-4f);
    EXPECT_FALSE(as_cuda(*runner).last_batch_used_graph());
  }
  const auto health = backend->health();
  EXPECT_GE(health.graph_capture_failures, 1u);
  EXPECT_TRUE(health.healthy);
  std::lock_guard lock(mutex);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("capture failed"), std::string::npos) << lines.front();
  std::printf("logged: %s\n", lines.front().c_str());
}

TEST_F(Cuda, AModelExceptionFailsOnlyThatBatch) {
  const auto model = load_on("throwing_model.pt", "cuda:0");
  const auto backend = make_cuda_backend(CudaBackendOptions{});
  auto runner = backend->make_runner(4, model->input_width());
  std::vector<float> bad(model->input_width(), 0.1f), good(model->input_width(), 0.1f);
  bad[0] = -999.0f;
  try {
    (void)run_on(*runner, *model, bad, 1);
    FAIL() << "the poisoned row must fail its batch";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("poisoned input"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(as_cuda(*runner).healthy());
  EXPECT_EQ(run_on(*runner, *model, good, 1).size(), 1u);
  const auto health = backend->health();
  EXPECT_EQ(health.failed_batches, 1u);
  EXPECT_EQ(health.device_errors, 0u);
}

TEST_F(Cuda, OutOfMemoryFailsTheBatchCountsItAndStaysHealthy) {
  const auto oom = scripted_model("oom", R"(
def forward(self, x: Tensor) -> Tensor:
    big = torch.empty([1 << 42], dtype=torch.float32, device=x.device)
    return x[:, 0:1] + big[0]
)");
  const auto mlp = load_on("mlp.pt", "cuda:0");
  const auto backend = make_cuda_backend(CudaBackendOptions{});
  auto runner = backend->make_runner(4, 32);
  const std::vector<float> row(32, 0.5f);
  try {
    (void)run_on(*runner, *oom, row, 1);
    FAIL() << "a 16 TiB allocation must fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(as_cuda(*runner).healthy()) << as_cuda(*runner).unhealthy_reason();
  EXPECT_EQ(run_on(*runner, *mlp, row, 1).size(), 1u) << "the next batch runs";
  const auto health = backend->health();
  EXPECT_EQ(health.device_errors, 1u);
  EXPECT_TRUE(health.healthy);
}

TEST_F(Cuda, PipelineOverTheCudaBackendMatchesTheCpu) {
  for (const bool graphs : {false, true}) {
    const auto gpu_model = load_on("mlp.pt", "cuda:0");
    const auto cpu_model = load_on("mlp.pt", "cpu");
    const std::size_t width = gpu_model->input_width(), rows = 1000;
    const auto inputs = random_rows(rows, width, graphs ? 2 : 1);
    CudaBackendOptions options;
    options.cuda_graphs = graphs;
    PipelineConfig config;
    config.max_batch = 32;
    config.max_delay_us = 200;
    config.queue_capacity = rows;
    auto pipeline = Pipeline::create(config, std::make_shared<ModelSlot>(gpu_model), make_cuda_backend(options));
    auto producer = pipeline->make_producer();
    std::vector<ResultWaiter> waiters(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      ASSERT_EQ(
          pipeline->submit(producer, std::span<const float>(&inputs[r * width], width), kNoDeadline, waiters[r].arm()),
          SubmitStatus::kAccepted);
      if (r % 50 == 0) std::this_thread::sleep_for(100us);
    }
    float worst = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      ASSERT_TRUE(waiters[r].wait_for(30s)) << "row " << r;
      ASSERT_EQ(waiters[r].status(), ResultStatus::kOk) << waiters[r].error();
      const auto expected =
          run_model(*cpu_model, std::vector<float>(inputs.begin() + r * width, inputs.begin() + (r + 1) * width), 1);
      worst = std::max(worst, max_abs_diff(waiters[r].outputs(), expected));
    }
    EXPECT_LE(worst, 1e-4f) << (graphs ? "with graphs" : "eager");
  }
}

// A device-side assert is sticky: the CUDA context is lost for the process, so it runs in a child process.
TEST_F(Cuda, AStickyDeviceErrorMarksTheRunnerUnhealthy) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto body = [] {
    const auto bad_index = scripted_model("bad_index", R"(
def forward(self, x: Tensor) -> Tensor:
    index = torch.full([1], 1000000, dtype=torch.long, device=x.device)
    return x.index_select(0, index)[:, 0:1]
)");
    const auto backend = make_cuda_backend(CudaBackendOptions{});
    auto runner = backend->make_runner(4, 32);
    const std::vector<float> row(32, 0.5f);
    bool threw = false;
    try {
      (void)run_on(*runner, *bad_index, row, 1);
    } catch (const std::runtime_error& e) {
      threw = true;
      std::fprintf(stderr, "batch error: %s\n", e.what());
    }
    const bool unhealthy = !as_cuda(*runner).healthy() && !backend->health().healthy;
    std::fprintf(stderr, "threw=%d unhealthy=%d reason=%s\n", threw, unhealthy,
                 as_cuda(*runner).unhealthy_reason().c_str());
    std::fflush(stderr);
    std::_Exit(threw && unhealthy ? 0 : 1);
  };
  EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}

// Last: the long forward it starts keeps the GPU busy for about a second after the test returns.
TEST_F(Cuda, ATimedOutBatchFailsFastAndMarksTheRunnerUnhealthy) {
  const auto slow = scripted_model("slow", R"(
def forward(self, x: Tensor) -> Tensor:
    y = torch.ones([4096, 4096], dtype=torch.float32, device=x.device)
    for _ in range(300):
        y = torch.mm(y, y) * 0.0001
    return x[:, 0:1] + y[0:1, 0:1]
)");
  CudaBackendOptions options;
  options.wait_timeout = 20ms;
  const auto backend = make_cuda_backend(options);
  auto runner = backend->make_runner(4, 32);
  const std::vector<float> row(32, 0.5f);
  const auto start = std::chrono::steady_clock::now();
  try {
    (void)run_on(*runner, *slow, row, 1);
    FAIL() << "300 4096^3 matmuls do not finish in 20 ms";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("did not complete"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "the wait must be bounded";
  EXPECT_FALSE(as_cuda(*runner).healthy());
  EXPECT_THROW((void)run_on(*runner, *slow, row, 1), std::runtime_error);
  const auto health = backend->health();
  EXPECT_FALSE(health.healthy);
  EXPECT_EQ(health.timeouts, 1u);
  EXPECT_NE(health.error.find("did not complete"), std::string::npos) << health.error;
}

}  // namespace
}  // namespace tickinfer
