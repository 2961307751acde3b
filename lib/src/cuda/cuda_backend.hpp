#pragma once
// The CUDA backend: a ring of pinned staging buffers per runner, the runner's own CUDA streams, bounded
// waits on CUDA events, and optional CUDA graphs. Implemented in cuda_runner.cpp, which is compiled only
// when TICKINFER_WITH_CUDA is defined (design: docs/CUDA.md).
// No CUDA or torch headers here, so torchscript.cpp, tests and benches include it cheaply. Internal: it
// becomes a public header once CPU-only builds can provide stubs for these functions.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tickinfer/log.hpp"
#include "tickinfer/model.hpp"
#include "tickinfer/runner.hpp"

namespace tickinfer {

struct CudaBackendOptions {
  int device_index = 0;
  std::size_t ring_depth = 2;  // pinned input/output buffer pairs per runner; >= 2 so one can fill while one runs
  bool cuda_graphs = false;    // capture forward per (batch size, ring slot) on first use; eager where capture fails
  int graph_warmup_runs = 3;   // eager forwards before a capture: JIT profiling, cuBLAS handles, lazy module init
  bool high_priority_streams = true;             // the runner's streams come from the high-priority pool
  std::chrono::milliseconds wait_timeout{2000};  // longest wait for one batch; past it the runner turns unhealthy
  bool record_timings = false;  // timing events around each copy and forward (CudaRunner::last_timing())
  LogSink log;                  // capture fallbacks, sticky errors (component "cuda"); empty: one line to stderr
};

/// Counters over every runner of one backend. A snapshot; thread-safe to take.
struct CudaBackendHealth {
  bool healthy = true;        // false once any runner hit a sticky device error or a timeout
  std::string error;          // what made the first runner unhealthy
  std::uint64_t batches = 0;  // submitted successfully
  std::uint64_t failed_batches = 0;
  std::uint64_t device_errors = 0;  // failures raised by CUDA or c10 (OOM, kernel faults), a subset of failed_batches
  std::uint64_t timeouts = 0;
  std::uint64_t graph_replays = 0;
  std::uint64_t graphs_captured = 0;
  std::uint64_t graph_capture_failures = 0;
  std::uint64_t unhealthy_runners = 0;
};

class CudaBackend : public Backend {
 public:
  /// Thread-safe.
  virtual CudaBackendHealth health() const = 0;
  virtual const CudaBackendOptions& options() const noexcept = 0;
};

/// Device-side times of one batch, in microseconds since the runner was made (CUDA timing events).
struct CudaBatchTiming {
  double h2d_start_us = 0, h2d_end_us = 0;
  double forward_start_us = 0, forward_end_us = 0;
  double d2h_end_us = 0;
};

/// What the runner uses, for tests: every id and handle is its own, never the default stream's.
struct CudaRunnerIntrospection {
  std::int64_t compute_stream_id = 0;        // forward and device-to-host copies
  std::int64_t copy_stream_id = 0;           // host-to-device copies issued by submit()
  std::int64_t default_stream_id = 0;        // the device's default stream, for comparison
  std::int64_t last_forward_stream_id = -1;  // c10's current stream observed while the last forward ran
  const void* compute_stream = nullptr;      // cudaStream_t
  const void* copy_stream = nullptr;         // cudaStream_t
  std::vector<const void*> pinned_buffers;   // every staging buffer (inputs, then outputs allocated so far)
};

/// The CUDA runner. Besides the synchronous Runner::run() the pipeline uses, submit()/collect() keep up to
/// ring_depth batches in flight, so staging and the host-to-device copy of batch n+1 overlap the forward of
/// batch n. Owned by one thread at a time (like every Runner); not thread-safe.
class CudaRunner : public Runner {
 public:
  using Ticket = std::uint64_t;

  /// input(rows) hands out the pinned buffer of the next ring slot; it throws std::logic_error while that
  /// slot's batch is submitted but not collected.
  /// run(): submit() + collect(), with every copy on the compute stream (no cross-stream wait: lowest latency).

  /// Issues host-to-device copy (copy stream), forward and device-to-host copy (compute stream) for the
  /// staged rows and returns at once. Throws std::runtime_error if issuing fails (the batch is failed).
  virtual Ticket submit(const Model& model, std::size_t rows) = 0;
  /// Waits (at most wait_timeout) for a submitted batch; returns rows x output_width floats, valid until
  /// its slot is handed out again by input(). Throws std::runtime_error on a device error or timeout.
  virtual std::span<const float> collect(Ticket ticket) = 0;

  /// False after a sticky device error or a timeout: every later call throws without touching the device.
  virtual bool healthy() const noexcept = 0;
  /// Why it is unhealthy (empty while healthy).
  virtual std::string unhealthy_reason() const = 0;
  /// Timing of the last collected batch; zeros unless CudaBackendOptions::record_timings.
  virtual CudaBatchTiming last_timing() const noexcept = 0;
  /// Whether the last collected batch replayed a CUDA graph (false: eager forward).
  virtual bool last_batch_used_graph() const noexcept = 0;
  virtual CudaRunnerIntrospection introspect() const = 0;
};

/// make_backend("cuda:N") lands here: default options on device N. Throws Error(kUnsupported) if the
/// machine has no such device.
std::shared_ptr<const Backend> make_cuda_backend(int device_index);
std::shared_ptr<const CudaBackend> make_cuda_backend(const CudaBackendOptions& options);

}  // namespace tickinfer
