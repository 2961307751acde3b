#pragma once
// POST /v2/models/{m}/infer through the pipeline: a decoded request's rows are submitted (unkeyed, batched with
// everything else the pipeline runs), each row's result lands in the call, and the last one hands the call back to
// the server's I/O threads: onto a lock-free list of completed calls, ringing an eventfd when the list was empty.
// Internal; no Asio here (admin_server.cpp waits on the eventfd).
//
// The workers' side of a call: copy the row's outputs into the call's preallocated buffer, a relaxed store or two,
// one fetch_sub; the last row of a call also pushes the call (one CAS) and, only when the list was empty, writes the
// eventfd: at most one write(2) per HTTP request, and one per wake-up of the I/O thread under load (a batch of
// calls completing together rings once); never per row, no allocation, no lock.

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
  std::shared_ptr<InferCall> self;      // keeps the call alive while rows are in the pipeline
  InferCall* next_completed = nullptr;  // the completed list's link (InferDispatcher)

  /// After every row completed: 200 with the outputs, else the first failure's status and reason.
  HttpResponse response() const;
};

/// Submits calls to a pipeline and collects their completions. submit() from the I/O threads (a mutex serializes
/// their one Producer; the workers never take it); complete() on the I/O thread that saw notify_fd() readable.
class InferDispatcher {
 public:
  /// Throws Error(kInvalidConfig) when the eventfd cannot be made.
  InferDispatcher(Pipeline& pipeline, std::chrono::milliseconds deadline);
  ~InferDispatcher();
  InferDispatcher(const InferDispatcher&) = delete;
  InferDispatcher& operator=(const InferDispatcher&) = delete;

  /// The doorbell (a non-blocking eventfd): readable when completed calls wait for complete().
  int notify_fd() const noexcept { return event_fd_; }
  /// Sizes the call's buffers and submits its rows (each with the deadline now + `deadline`). Rows the pipeline
  /// refuses complete at once as rejected; when every row did, the call is done here (its `done` runs inline).
  void submit(std::shared_ptr<InferCall> call);
  /// After the caller read (reset) the doorbell: hands each completed call its answer (runs its `done`). Returns
  /// the calls answered.
  std::size_t complete() noexcept;
  /// Blocks until no row is in the pipeline, then drops the completed calls not yet answered (their `done` never
  /// runs; their memory is freed). For stop(): after the I/O threads ended, with the pipeline alive or shut down.
  void drain();

 private:
  static void on_result(void* context, const Result& result) noexcept;
  void finish(InferCall& call) noexcept;  // the call's last row: onto the completed list
  InferCall* take_completed() noexcept;   // the whole list, oldest first

  Pipeline& pipeline_;
  std::chrono::milliseconds deadline_;
  Mutex mutex_;
  Producer producer_ TICKINFER_GUARDED_BY(mutex_);
  int event_fd_ = -1;
  std::atomic<InferCall*> completed_{nullptr};  // newest first (a Treiber stack: workers push, complete() takes all)
  std::atomic<std::uint64_t> rows_in_flight_{0};
};

}  // namespace tickinfer::internal
