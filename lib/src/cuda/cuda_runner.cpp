// The CUDA backend: pinned staging ring, the runner's own streams, bounded event waits, optional CUDA graphs.
// Design, overlap limits and what has been verified on a GPU: docs/CUDA.md.
//
// Per batch (one ring slot):
//   copy stream (submit) or compute stream (run):  H2D  pinned in[slot] -> device_in[slot]
//   compute stream:  [wait h2d_done]  forward (eager, or replay of the graph captured for (slot, rows))
//                    D2H  output -> pinned out[slot];  record done[slot]
// The host polls done[slot] with a deadline, so a hung device turns into an error, never a stuck worker.

#include <ATen/cuda/CUDAGraph.h>
#include <c10/core/InferenceMode.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/cpu_relax.hpp"
#include "cuda/cuda_backend.hpp"
#include "model/torch_error.hpp"
#include "model/torch_model.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/metrics.hpp"

namespace tickinfer {
namespace {

using internal::cpu_relax;

// LibTorch 1.13 captures only in cudaStreamCaptureModeGlobal, where any other thread's unsafe CUDA call
// (a cudaMalloc by another worker) invalidates the capture or fails that call. 2.x captures thread-local.
constexpr bool kGraphsSupported = TORCH_VERSION_MAJOR >= 2;

// Polls of a CUDA event before a waiting worker starts yielding: a small forward finishes well within
// them, so the common case costs no syscall.
constexpr int kSpinPolls = 20000;

std::int64_t to_i64(std::size_t value) { return static_cast<std::int64_t>(value); }

/// A failed CUDA runtime call, with its code (to tell sticky errors from recoverable ones).
class CudaError : public std::runtime_error {
 public:
  CudaError(cudaError_t code, const std::string& what)
      : std::runtime_error(what + ": " + cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")"), code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) throw CudaError(rc, what);
}

using internal::torch_error_text;

// Errors raised by the device or the CUDA libraries (as opposed to a model that throws or returns the wrong
// shape). c10 reports CUDA failures as c10::Error (c10::AcceleratorError in newer LibTorch) naming CUDA.
bool is_device_error(const std::exception& e) {
  if (dynamic_cast<const CudaError*>(&e) != nullptr || dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr)
    return true;
  if (dynamic_cast<const c10::Error*>(&e) == nullptr) return false;
  const std::string text = torch_error_text(e);
  for (const char* marker : {"CUDA", "CUBLAS", "cuBLAS", "CUDNN", "cuDNN", "out of memory"})
    if (text.find(marker) != std::string::npos) return true;
  return false;
}

/// Page-locked host memory from cudaHostAlloc: the DMA engines copy it asynchronously, without a bounce buffer.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t floats) : size_(floats) {
    void* p = nullptr;
    // Portable: pinned for every CUDA context in the process, not only the current device's.
    check(cudaHostAlloc(&p, floats * sizeof(float), cudaHostAllocPortable), "cudaHostAlloc");
    data_ = static_cast<float*>(p);
  }
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { release(); }

  float* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  /// After a timeout the device may still copy into this memory, and cudaFreeHost could wait for it: never free.
  void leak() noexcept { data_ = nullptr, size_ = 0; }

 private:
  void release() noexcept {
    if (data_ != nullptr) (void)cudaFreeHost(data_);
    data_ = nullptr;
  }
  float* data_ = nullptr;
  std::size_t size_ = 0;
};

class Event {
 public:
  explicit Event(bool timing) {
    // Without timing, cudaEventRecord/Query skip the timestamp: cheaper on the hot path.
    check(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() {
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
  }
  cudaEvent_t get() const noexcept { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

struct TimingEvents {
  Event h2d_start{true}, h2d_end{true}, forward_start{true}, forward_end{true}, d2h_end{true};
};

struct GraphEntry {
  enum class State : std::uint8_t { kUntried, kCaptured, kFailed };
  State state = State::kUntried;
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  at::Tensor output;  // static: every replay rewrites it, and the D2H that follows reads it on the same stream
};

/// One ring slot: staging memory and the device buffers and events of one batch in flight.
struct Slot {
  PinnedBuffer in, out;
  at::Tensor device_in;            // [max_batch, width]: the H2D target and forward's input
  std::vector<at::Tensor> views;   // views[rows] = device_in[0:rows], made on first use
  std::vector<GraphEntry> graphs;  // [rows], with cuda_graphs only
  Event h2d_done{false}, done{false};
  std::unique_ptr<TimingEvents> timing;
  bool in_flight = false;
  CudaRunner::Ticket ticket = 0;
  std::size_t out_count = 0;
  bool used_graph = false;
};

/// Shared by a backend and its runners (runners may outlive the backend object).
struct BackendState {
  explicit BackendState(CudaBackendOptions opts) : options(std::move(opts)) {}
  const CudaBackendOptions options;
  Counter batches, failed_batches, device_errors, timeouts, graph_replays, graphs_captured, graph_capture_failures,
      unhealthy_runners;
  mutable std::mutex mutex;
  std::string first_error;  // guarded by mutex

  void log(const std::string& line) const {
    LogRecord record;
    record.level = LogLevel::kWarning;
    record.component = "cuda";
    record.message = line;
    emit_log(options.log, record);
  }
  void mark_unhealthy(const std::string& why) {
    unhealthy_runners.add();
    {
      std::lock_guard lock(mutex);
      if (first_error.empty()) first_error = why;
    }
    log(why);
  }
};

// Captures run one at a time in the process: a capture is a rare, slow event (first use of a batch size),
// and serialising them keeps the caching allocator's capture bookkeeping simple.
std::mutex& capture_mutex() {
  static std::mutex mutex;
  return mutex;
}

class CudaRunnerImpl final : public CudaRunner {
 public:
  CudaRunnerImpl(std::shared_ptr<BackendState> state, std::size_t max_batch, std::size_t width)
      : state_(std::move(state)),
        options_(state_->options),
        device_(c10::kCUDA, static_cast<c10::DeviceIndex>(options_.device_index)),
        max_batch_(max_batch),
        width_(width),
        compute_(c10::cuda::getStreamFromPool(options_.high_priority_streams, device_.index())),
        copy_(c10::cuda::getStreamFromPool(options_.high_priority_streams, device_.index())) {
    if (max_batch == 0 || width == 0)
      throw Error(ErrorCode::kInvalidConfig, where() + ": max_batch and input_width must be > 0");
    // The pool hands streams out round-robin; two in a row are distinct unless the pool has one stream.
    if (copy_ == compute_) copy_ = c10::cuda::getStreamFromPool(options_.high_priority_streams, device_.index());
    // Device buffers belong to the compute stream: the caching allocator orders their reuse after its work.
    // The guard also makes the runner's device current: events belong to the device current at creation.
    c10::cuda::CUDAStreamGuard guard(compute_);
    drain_compute_.emplace(false);
    drain_copy_.emplace(false);
    const auto device_floats = at::TensorOptions().dtype(at::kFloat).device(device_);
    for (std::size_t i = 0; i < options_.ring_depth; ++i) {
      auto slot = std::make_unique<Slot>();
      slot->in = PinnedBuffer(max_batch * width);
      slot->device_in = at::empty({to_i64(max_batch), to_i64(width)}, device_floats);
      slot->views.resize(max_batch + 1);
      if (options_.cuda_graphs) slot->graphs.resize(max_batch + 1);
      if (options_.record_timings) slot->timing = std::make_unique<TimingEvents>();
      slots_.push_back(std::move(slot));
    }
    if (options_.record_timings) {
      epoch_.emplace(true);
      check(cudaEventRecord(epoch_->get(), compute_.stream()), "cudaEventRecord");
    }
    stack_.reserve(4);
    const cudaError_t rc = drain();  // the allocations above are complete before the first batch is staged
    if (rc != cudaSuccess) throw CudaError(rc == cudaErrorNotReady ? cudaErrorLaunchTimeout : rc, where() + ": setup");
  }

  ~CudaRunnerImpl() override {
    // Graphs and device tensors go back to the caching allocator, which orders reuse after the streams' work;
    // pinned memory is freed by cudaFreeHost, so nothing may still be copying into it.
    if (healthy_ && drain() == cudaErrorNotReady) leak_ = true;
    if (leak_) {
      for (auto& slot : slots_) {
        slot->in.leak();
        slot->out.leak();
      }
    }
  }

  std::span<float> input(std::size_t rows) override {
    if (rows > max_batch_)
      throw std::out_of_range(where() + ": batch of " + std::to_string(rows) + " rows exceeds max_batch " +
                              std::to_string(max_batch_));
    const Slot& slot = *slots_[next_];
    if (slot.in_flight) {
      throw std::logic_error(where() + ": input(): ring slot " + std::to_string(next_) + " still holds batch " +
                             std::to_string(slot.ticket) + "; collect() it first");
    }
    return {slot.in.data(), rows * width_};
  }

  std::span<const float> run(const Model& model, std::size_t rows) override {
    if (rows == 0) {
      (void)checked_model(model, rows);
      return {};
    }
    return collect(issue(model, rows, /*use_copy_stream=*/false));
  }

  Ticket submit(const Model& model, std::size_t rows) override {
    if (rows == 0) throw std::invalid_argument(where() + ": submit() of 0 rows");
    return issue(model, rows, /*use_copy_stream=*/true);
  }

  std::span<const float> collect(Ticket ticket) override {
    ensure_healthy();
    Slot* slot = nullptr;
    for (auto& s : slots_)
      if (s->in_flight && s->ticket == ticket) slot = s.get();
    if (slot == nullptr)
      throw std::logic_error(where() + ": collect(): no batch in flight with ticket " + std::to_string(ticket));
    const cudaError_t rc = wait(slot->done.get(), deadline());
    if (rc == cudaErrorNotReady) {
      state_->timeouts.add();
      state_->failed_batches.add();
      leak_ = true;  // the device may still copy into this slot's pinned memory
      become_unhealthy("batch " + std::to_string(ticket) + " did not complete within " +
                       std::to_string(options_.wait_timeout.count()) + " ms");
      throw std::runtime_error(where() + ": " + reason_);
    }
    if (rc != cudaSuccess) {
      // A fault in a kernel of this (or an earlier) batch surfaces here, asynchronously.
      slot->in_flight = false;
      state_->failed_batches.add();
      state_->device_errors.add();
      const std::string message = CudaError(rc, "batch " + std::to_string(ticket)).what();
      settle_after_error();
      throw std::runtime_error(where() + ": " + message);
    }
    slot->in_flight = false;
    last_used_graph_ = slot->used_graph;
    if (slot->timing) last_timing_ = timing_of(*slot->timing);
    return {slot->out.data(), slot->out_count};
  }

  bool healthy() const noexcept override { return healthy_; }
  std::string unhealthy_reason() const override { return reason_; }
  CudaBatchTiming last_timing() const noexcept override { return last_timing_; }
  bool last_batch_used_graph() const noexcept override { return last_used_graph_; }

  CudaRunnerIntrospection introspect() const override {
    CudaRunnerIntrospection info;
    info.compute_stream_id = static_cast<std::int64_t>(compute_.id());
    info.copy_stream_id = static_cast<std::int64_t>(copy_.id());
    info.default_stream_id = static_cast<std::int64_t>(c10::cuda::getDefaultCUDAStream(device_.index()).id());
    info.last_forward_stream_id = last_forward_stream_id_;
    info.compute_stream = compute_.stream();
    info.copy_stream = copy_.stream();
    for (const auto& slot : slots_) info.pinned_buffers.push_back(slot->in.data());
    for (const auto& slot : slots_)
      if (slot->out.data() != nullptr) info.pinned_buffers.push_back(slot->out.data());
    return info;
  }

 private:
  std::string where() const { return "cuda runner (cuda:" + std::to_string(options_.device_index) + ")"; }

  std::int64_t deadline() const {
    return now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(options_.wait_timeout).count();
  }

  void ensure_healthy() {
    if (healthy_) return;
    state_->failed_batches.add();
    throw std::runtime_error(where() + " is unhealthy: " + reason_);
  }

  void become_unhealthy(const std::string& why) {
    if (!healthy_) return;
    healthy_ = false;
    reason_ = why;
    state_->mark_unhealthy(where() + " is now unhealthy: " + why);
  }

  [[noreturn]] void refuse(const Model& model, const std::string& why) {
    state_->failed_batches.add();
    throw std::runtime_error(where() + ": " + model.source() + " " + why);
  }

  const internal::TorchModel& checked_model(const Model& model, std::size_t rows) {
    const auto* torch_model = dynamic_cast<const internal::TorchModel*>(&model);
    if (torch_model == nullptr) refuse(model, "is not a TorchScript model");
    if (torch_model->device() != device_) {
      refuse(model, "is loaded on " + torch_model->device().str() + "; load it with LoadOptions::device = \"" +
                        device_.str() + "\"");
    }
    if (model.state_width() != 0) refuse(model, "is a sequence model (state_names): it runs on the CPU runner");
    if (model.input_width() != width_) {
      refuse(model, "has " + std::to_string(model.input_width()) + " input features, the runner stages " +
                        std::to_string(width_));
    }
    if (rows > max_batch_) {
      state_->failed_batches.add();
      throw std::out_of_range(where() + ": batch of " + std::to_string(rows) + " rows exceeds max_batch " +
                              std::to_string(max_batch_));
    }
    return *torch_model;
  }

  Ticket issue(const Model& model, std::size_t rows, bool use_copy_stream) {
    ensure_healthy();
    const internal::TorchModel& torch_model = checked_model(model, rows);
    Slot& slot = *slots_[next_];
    if (slot.in_flight) {
      state_->failed_batches.add();
      throw std::logic_error(where() + ": ring slot " + std::to_string(next_) + " still holds batch " +
                             std::to_string(slot.ticket) + "; collect() it first");
    }
    const std::size_t out_count = rows * model.output_width();
    try {
      // Sized for max_batch once per slot (again only if a wider model arrives).
      if (slot.out.size() < max_batch_ * model.output_width())
        slot.out = PinnedBuffer(max_batch_ * model.output_width());
      if (options_.cuda_graphs && kGraphsSupported) adopt_for_graphs(torch_model);
      if (!slot.views[rows].defined()) slot.views[rows] = slot.device_in.narrow(0, 0, to_i64(rows));

      c10::cuda::CUDAStreamGuard guard(compute_);  // forward's kernels go to the compute stream, never the default
      const cudaStream_t compute = compute_.stream();
      const cudaStream_t h2d = use_copy_stream ? copy_.stream() : compute;
      TimingEvents* timing = slot.timing.get();
      if (timing) check(cudaEventRecord(timing->h2d_start.get(), h2d), "cudaEventRecord");
      check(cudaMemcpyAsync(slot.device_in.data_ptr<float>(), slot.in.data(), rows * width_ * sizeof(float),
                            cudaMemcpyHostToDevice, h2d),
            "host-to-device copy");
      if (timing) check(cudaEventRecord(timing->h2d_end.get(), h2d), "cudaEventRecord");
      if (use_copy_stream) {
        // The forward waits for this batch's copy only; the copy stream runs ahead into the next slot.
        check(cudaEventRecord(slot.h2d_done.get(), h2d), "cudaEventRecord");
        check(cudaStreamWaitEvent(compute, slot.h2d_done.get(), 0), "cudaStreamWaitEvent");
      }
      if (timing) check(cudaEventRecord(timing->forward_start.get(), compute), "cudaEventRecord");

      last_forward_stream_id_ = static_cast<std::int64_t>(c10::cuda::getCurrentCUDAStream(device_.index()).id());
      at::Tensor output;
      bool used_graph = false;
      if (options_.cuda_graphs && kGraphsSupported) {
        GraphEntry& entry = slot.graphs[rows];
        if (entry.state == GraphEntry::State::kUntried) capture(slot, torch_model, rows);
        if (entry.state == GraphEntry::State::kCaptured) {
          entry.graph->replay();
          output = entry.output;
          used_graph = true;
          state_->graph_replays.add();
        }
      }
      if (!used_graph) output = forward(slot, torch_model, rows);
      if (timing) check(cudaEventRecord(timing->forward_end.get(), compute), "cudaEventRecord");
      // Same stream as the forward: ordered after it, and the caching allocator does not hand the output's
      // memory to later work before this copy has read it.
      check(cudaMemcpyAsync(slot.out.data(), output.data_ptr<float>(), out_count * sizeof(float),
                            cudaMemcpyDeviceToHost, compute),
            "device-to-host copy");
      if (timing) check(cudaEventRecord(timing->d2h_end.get(), compute), "cudaEventRecord");
      check(cudaEventRecord(slot.done.get(), compute), "cudaEventRecord");
      slot.in_flight = true;
      slot.ticket = ++last_ticket_;
      slot.out_count = out_count;
      slot.used_graph = used_graph;
      next_ = (next_ + 1) % slots_.size();
      state_->batches.add();
      return slot.ticket;
    } catch (const std::exception& e) {
      state_->failed_batches.add();
      const bool device_error = is_device_error(e);
      if (device_error) state_->device_errors.add();
      const std::string message = where() + ": " + model.source() + ": forward failed: " + torch_error_text(e);
      settle_after_error();
      throw std::runtime_error(message);
    }
  }

  /// Eager forward of device_in[0:rows] on the current (compute) stream; the output conformed and checked.
  at::Tensor forward(Slot& slot, const internal::TorchModel& model, std::size_t rows) {
    struct ClearOnExit {
      torch::jit::Stack& stack;
      ~ClearOnExit() { stack.clear(); }
    } clear{stack_};
    c10::InferenceMode inference;
    stack_.clear();
    stack_.emplace_back(slot.views[rows]);
    model.run(stack_);
    if (stack_.size() != 1 || !stack_.back().isTensor()) throw std::runtime_error("forward did not return a Tensor");
    at::Tensor output = std::move(stack_.back()).toTensor();
    if (output.device() != device_)
      throw std::runtime_error("forward returned a tensor on " + output.device().str() + ", not " + device_.str());
    if (output.scalar_type() != at::kFloat || !output.is_contiguous()) output = output.to(at::kFloat).contiguous();
    const std::size_t out_width = model.output_width();
    if (output.dim() == 0 || output.size(0) != to_i64(rows) ||
        static_cast<std::size_t>(output.numel()) != rows * out_width) {
      std::ostringstream shape;
      shape << output.sizes();
      throw std::runtime_error("forward returned shape " + shape.str() + " for " + std::to_string(rows) +
                               " rows, expected " + std::to_string(out_width) + " outputs per row");
    }
    return output;
  }

  /// First use of (slot, rows) with graphs on: warm up eagerly, then capture. A forward that fails in warm-up
  /// fails the batch (and is tried again next time); a capture that fails leaves this size eager for good.
  void capture(Slot& slot, const internal::TorchModel& model, std::size_t rows) {
    GraphEntry& entry = slot.graphs[rows];
    std::string reason;
    {
      std::lock_guard lock(capture_mutex());
      // JIT profiling runs, lazy cuBLAS handle and workspace set-up synchronise: they must happen before
      // the capture, where synchronising is illegal.
      for (int i = 0; i < options_.graph_warmup_runs; ++i) (void)forward(slot, model, rows);
      auto graph = std::make_unique<at::cuda::CUDAGraph>();
      // One pool for all of this runner's graphs: replays are sequential on one stream and every static
      // output is copied out before the next replay, so graphs may reuse each other's intermediates.
      if (!graph_pool_) graph_pool_ = at::cuda::graph_pool_handle();
      bool begun = false;
      try {
#if TORCH_VERSION_MAJOR >= 2
        // Thread-local: other workers' eager forwards (their allocations) stay legal during this capture.
        graph->capture_begin(*graph_pool_, cudaStreamCaptureModeThreadLocal);
#else
        graph->capture_begin(*graph_pool_);
#endif
        begun = true;
        at::Tensor output = forward(slot, model, rows);
        graph->capture_end();
        entry.graph = std::move(graph);
        entry.output = std::move(output);
        entry.state = GraphEntry::State::kCaptured;
        state_->graphs_captured.add();
        return;
      } catch (const std::exception& e) {
        reason = torch_error_text(e);
        if (begun) abandon_capture(*graph);
      }
    }
    entry.state = GraphEntry::State::kFailed;
    state_->graph_capture_failures.add();
    state_->log(where() + ": CUDA graph capture failed for batch size " + std::to_string(rows) + " of " +
                model.source() + "; that size runs eagerly: " + reason.substr(0, reason.find('\n')));
  }

  /// Leaves the compute stream out of capture mode after a failed capture, so eager forwards work again.
  void abandon_capture(at::cuda::CUDAGraph& graph) noexcept {
    try {
      graph.capture_end();  // also ends the caching allocator's capture bookkeeping; throws once invalidated
    } catch (...) {
    }
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(compute_.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
      cudaGraph_t partial = nullptr;
      if (cudaStreamEndCapture(compute_.stream(), &partial) == cudaSuccess && partial != nullptr)
        (void)cudaGraphDestroy(partial);
    }
    (void)cudaGetLastError();  // an invalidated capture leaves a non-sticky error behind
  }

  /// Graphs bake in the model's parameter addresses: a new model (hot swap) drops them. The held module keeps
  /// the old parameters alive while graphs still point at them, and makes the identity check ABA-free.
  void adopt_for_graphs(const internal::TorchModel& model) {
    const auto* identity = model.module()._ivalue().get();
    if (graph_module_ && identity == graph_identity_) return;
    // Batches in flight may still replay the old graphs.
    const cudaError_t rc = drain();
    if (rc != cudaSuccess)
      throw CudaError(rc == cudaErrorNotReady ? cudaErrorLaunchTimeout : rc, "draining before a model change");
    for (auto& slot : slots_)
      for (auto& entry : slot->graphs) entry = GraphEntry{};
    graph_pool_.reset();
    graph_module_ = model.module();
    graph_identity_ = identity;
  }

  /// After a failed batch: clear a recoverable error, wait (bounded) until nothing of it still runs so its
  /// slot can be reused, and turn unhealthy if the context is broken or the device does not finish.
  void settle_after_error() noexcept {
    (void)cudaGetLastError();  // non-sticky errors (an OOM, a bad launch) are cleared; sticky ones stay
    const cudaError_t rc = drain();
    if (rc == cudaSuccess) return;
    if (rc == cudaErrorNotReady) {
      state_->timeouts.add();
      leak_ = true;
      try {
        become_unhealthy("the device did not finish a failed batch within " +
                         std::to_string(options_.wait_timeout.count()) + " ms");
      } catch (...) {
      }
      return;
    }
    try {
      become_unhealthy(std::string("sticky CUDA error ") + cudaGetErrorName(rc) + " (" + cudaGetErrorString(rc) +
                       "); this process cannot use the GPU any more");
    } catch (...) {
    }
  }

  /// Records an event on each stream and waits for both: cudaSuccess, cudaErrorNotReady (timed out) or an error.
  cudaError_t drain() noexcept {
    const std::int64_t until = deadline();
    for (auto [event, stream] :
         {std::pair{drain_copy_->get(), copy_.stream()}, std::pair{drain_compute_->get(), compute_.stream()}}) {
      cudaError_t rc = cudaEventRecord(event, stream);
      if (rc == cudaSuccess) rc = wait(event, until);
      if (rc != cudaSuccess) return rc;
    }
    return cudaSuccess;
  }

  /// Polls instead of cudaEventSynchronize so the wait has a deadline.
  static cudaError_t wait(cudaEvent_t event, std::int64_t deadline_ns) noexcept {
    for (int spins = 0;;) {
      const cudaError_t rc = cudaEventQuery(event);
      if (rc != cudaErrorNotReady) return rc;
      if (now_ns() >= deadline_ns) return cudaErrorNotReady;
      if (spins < kSpinPolls) {
        ++spins;
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }

  CudaBatchTiming timing_of(const TimingEvents& t) const noexcept {
    auto us = [this](const Event& e) {
      float ms = 0;
      return cudaEventElapsedTime(&ms, epoch_->get(), e.get()) == cudaSuccess ? 1000.0 * ms : 0.0;
    };
    return {us(t.h2d_start), us(t.h2d_end), us(t.forward_start), us(t.forward_end), us(t.d2h_end)};
  }

  std::shared_ptr<BackendState> state_;
  const CudaBackendOptions& options_;  // state_->options
  const c10::Device device_;
  const std::size_t max_batch_, width_;
  c10::cuda::CUDAStream compute_, copy_;
  // Before slots_, so the graphs (in the slots) are destroyed before the module whose parameters they read.
  std::optional<torch::jit::Module> graph_module_;  // the model the graphs were captured from
  const void* graph_identity_ = nullptr;
  std::optional<decltype(at::cuda::graph_pool_handle())> graph_pool_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::size_t next_ = 0;  // the slot input() hands out and the next submit uses
  Ticket last_ticket_ = 0;
  torch::jit::Stack stack_;                          // reused: forward's argument passing does not allocate
  std::optional<Event> drain_compute_, drain_copy_;  // made on the runner's device, in the constructor
  std::optional<Event> epoch_;                       // record_timings: the zero of CudaBatchTiming

  bool healthy_ = true;
  bool leak_ = false;
  std::string reason_;
  CudaBatchTiming last_timing_;
  bool last_used_graph_ = false;
  std::int64_t last_forward_stream_id_ = -1;
};

class CudaBackendImpl final : public CudaBackend {
 public:
  explicit CudaBackendImpl(CudaBackendOptions options) : state_(std::make_shared<BackendState>(std::move(options))) {
    if (state_->options.cuda_graphs && !kGraphsSupported) {
      state_->log("CUDA graphs need LibTorch >= 2.0 (thread-local stream capture); LibTorch " TORCH_VERSION
                  " runs every batch eagerly");
    }
  }

  std::unique_ptr<Runner> make_runner(std::size_t max_batch, std::size_t input_width) const override {
    return std::make_unique<CudaRunnerImpl>(state_, max_batch, input_width);
  }

  std::string name() const override { return "cuda:" + std::to_string(state_->options.device_index); }

  CudaBackendHealth health() const override {
    const BackendState& s = *state_;
    CudaBackendHealth h;
    h.unhealthy_runners = s.unhealthy_runners.load();
    h.healthy = h.unhealthy_runners == 0;
    {
      std::lock_guard lock(s.mutex);
      h.error = s.first_error;
    }
    h.batches = s.batches.load();
    h.failed_batches = s.failed_batches.load();
    h.device_errors = s.device_errors.load();
    h.timeouts = s.timeouts.load();
    h.graph_replays = s.graph_replays.load();
    h.graphs_captured = s.graphs_captured.load();
    h.graph_capture_failures = s.graph_capture_failures.load();
    return h;
  }

  const CudaBackendOptions& options() const noexcept override { return state_->options; }

 private:
  std::shared_ptr<BackendState> state_;
};

}  // namespace

std::shared_ptr<const CudaBackend> make_cuda_backend(const CudaBackendOptions& options) {
  auto fail = [&](ErrorCode code, const std::string& why) {
    throw Error(code, "cuda backend (cuda:" + std::to_string(options.device_index) + "): " + why);
  };
  if (options.ring_depth < 2) fail(ErrorCode::kInvalidConfig, "ring_depth must be >= 2");
  if (options.graph_warmup_runs < 0) fail(ErrorCode::kInvalidConfig, "graph_warmup_runs must be >= 0");
  if (options.wait_timeout.count() <= 0) fail(ErrorCode::kInvalidConfig, "wait_timeout must be > 0");
  const int devices = c10::cuda::device_count();
  if (options.device_index < 0 || options.device_index >= devices)
    fail(ErrorCode::kUnsupported, "this machine has " + std::to_string(devices) + " CUDA device(s)");
  return std::make_shared<const CudaBackendImpl>(options);
}

std::shared_ptr<const Backend> make_cuda_backend(int device_index) {
  CudaBackendOptions options;
  options.device_index = device_index;
  return make_cuda_backend(options);
}

}  // namespace tickinfer
