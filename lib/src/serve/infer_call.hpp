#pragma once
// POST /v2/models/{m}/infer through the pipeline: a decoded request's rows are submitted (unkeyed, batched with
// everything else the pipeline runs), each row's result lands in the call, and the last one hands the call back to
// the server's I/O threads through a pipe. Internal; no Asio here (admin_server.cpp reads the pipe).
//
// The workers' side of a call: copy the row's outputs into the call's preallocated buffer, a relaxed store or two,
// one fetch_sub; the last row of a call also writes the call's address (8 bytes) into the pipe: one write(2) per
// HTTP request, never per row, no allocation, no lock.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "serve/infer_json.hpp"
#include "serve/router.hpp"
#include "tickinfer/mutex.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/result.hpp"

namespace tickinfer::internal {

class InferDispatcher;

/// One inference request, from its decoding by the router to its answer.
struct InferCall {
  InferRequest request;                    // the router decodes into it
  std::string model_name;                  // echoed in the answer
  std::size_t output_width = 0;            // the served model's
  std::function<void(HttpResponse)> done;  // set by the server; runs once, on an I/O thread
  std::vector<float> outputs;              // rows x output_width, written by the workers
  std::vector<ResultStatus> status;        // per row
  std::vector<std::uint64_t> versions;     // per row: the model version that ran it
  std::atomic<std::size_t> remaining{0};   // rows not yet completed
  InferDispatcher* dispatcher = nullptr;
  std::shared_ptr<InferCall> self;  // keeps the call alive while rows are in the pipeline

  /// After every row completed: 200 with the outputs, else the first failure's status and reason.
  HttpResponse response() const;
};

/// Submits calls to a pipeline and collects their completions. submit() from the I/O threads (a mutex serializes
/// their one Producer; the workers never take it); take_completed() on the I/O thread that reads notify_fd().
class InferDispatcher {
 public:
  /// Throws Error(kInvalidConfig) when the pipe cannot be made or cannot hold an address per connection
  /// (`max_calls`: the server's max_connections, each with at most one call in flight).
  InferDispatcher(Pipeline& pipeline, std::chrono::milliseconds deadline, std::size_t max_calls);
  ~InferDispatcher();
  InferDispatcher(const InferDispatcher&) = delete;
  InferDispatcher& operator=(const InferDispatcher&) = delete;

  /// The pipe's read end (non-blocking): 8-byte call addresses, one per completed call.
  int notify_fd() const noexcept { return pipe_[0]; }
  /// Sizes the call's buffers and submits its rows (each with the deadline now + `deadline`). Rows the pipeline
  /// refuses complete at once as rejected; when every row did, the call is done here (its `done` runs inline).
  void submit(std::shared_ptr<InferCall> call);
  /// Hands each completed call in `bytes` (read from notify_fd(); a multiple of 8) its answer: runs its `done`.
  void complete(std::span<const unsigned char> bytes) noexcept;
  /// Blocks until no row is in the pipeline, then drops the calls whose completion was not read (their `done`
  /// never runs). For stop(): after the I/O threads ended, with the pipeline alive or shut down.
  void drain();

 private:
  static void on_result(void* context, const Result& result) noexcept;
  void finish(InferCall& call) noexcept;  // the call's last row: notify

  Pipeline& pipeline_;
  std::chrono::milliseconds deadline_;
  Mutex mutex_;
  Producer producer_ TICKINFER_GUARDED_BY(mutex_);
  int pipe_[2] = {-1, -1};
  std::atomic<std::uint64_t> rows_in_flight_{0};
};

}  // namespace tickinfer::internal
