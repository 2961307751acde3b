#include "serve/infer_call.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "tickinfer/clock.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::internal {
namespace {

// A row the pipeline refused (queue full, or shutting down): unkeyed rows are never superseded, so the answer can
// read this status as "shed".
constexpr ResultStatus kShed = ResultStatus::kSuperseded;

}  // namespace

HttpResponse InferCall::response() const {
  const std::size_t rows = request.rows;
  std::size_t failed = 0, first = rows;
  for (std::size_t r = 0; r < rows; ++r) {
    if (status[r] != ResultStatus::kOk) {
      ++failed;
      if (first == rows) first = r;
    }
  }
  if (failed == 0) {
    HttpResponse out{200, "application/json", {}, {}};
    out.body.reserve(64 + rows * output_width * 16);
    const InferOutput tensor{kInferOutputName, output_width,
                             std::span<const float>(outputs.data(), rows * output_width)};
    std::optional<std::string_view> id;
    if (request.has_id) id = request.id;
    encode_infer_response(out.body, model_name, versions.empty() ? 0 : versions[0], id, rows,
                          std::span<const InferOutput>(&tensor, 1));
    return out;
  }
  const std::string of = std::to_string(failed) + " of " + std::to_string(rows) + " rows";
  switch (status[first]) {
    case ResultStatus::kExpired:
      return error_response(504, of + " missed the inference deadline (queued too long)");
    case ResultStatus::kModelError:
      return error_response(500, of + " failed in the model (row " + std::to_string(first) + " first)");
    case ResultStatus::kCancelled:
      return error_response(503, of + " cancelled: the pipeline is shutting down");
    default:  // kShed: the pipeline refused the row (its queue is full); unkeyed rows are never superseded
      return error_response(503, of + " shed: the pipeline's queue is full (overload)");
  }
}

InferDispatcher::InferDispatcher(Pipeline& pipeline, std::chrono::milliseconds deadline)
    : pipeline_(pipeline), deadline_(deadline), producer_(pipeline.make_producer()) {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0)
    throw Error(ErrorCode::kInvalidConfig,
                std::string("admin server: cannot make the inference eventfd: ") + std::strerror(errno));
}

InferDispatcher::~InferDispatcher() {
  drain();
  ::close(event_fd_);
}

void InferDispatcher::submit(std::shared_ptr<InferCall> call) {
  InferCall& c = *call;
  const std::size_t rows = c.request.rows, width = c.request.values.size() / (rows == 0 ? 1 : rows);
  c.outputs.assign(rows * c.output_width, 0.0f);
  c.status.assign(rows, kShed);
  c.versions.assign(rows, 0);
  c.dispatcher = this;
  c.remaining.store(rows, std::memory_order_relaxed);
  c.self = call;  // released by complete() (or drain())
  rows_in_flight_.fetch_add(rows, std::memory_order_relaxed);
  std::size_t refused = 0;
  {
    MutexLock lock(mutex_);
    const std::int64_t deadline = now_ns() + std::chrono::nanoseconds(deadline_).count();
    for (std::size_t r = 0; r < rows; ++r) {
      const SubmitStatus s =
          pipeline_.submit(producer_, std::span<const float>(c.request.values.data() + r * width, width), deadline,
                           Completion{&InferDispatcher::on_result, &c, r});
      if (s != SubmitStatus::kAccepted) ++refused;
    }
  }
  if (refused == 0) return;
  rows_in_flight_.fetch_sub(refused, std::memory_order_relaxed);
  // acq_rel: pairs with the workers' fetch_sub of this call's rows (their outputs are then visible to the answer).
  if (c.remaining.fetch_sub(refused, std::memory_order_acq_rel) == refused) {
    std::shared_ptr<InferCall> own = std::move(c.self);
    if (own->done) own->done(own->response());
  }
}

void InferDispatcher::on_result(void* context, const Result& result) noexcept {
  auto& c = *static_cast<InferCall*>(context);
  InferDispatcher& d = *c.dispatcher;  // read before the last decrement: the call may be gone right after it
  const std::size_t r = result.tag;
  c.status[r] = result.status;
  c.versions[r] = result.model_version;
  if (result.status == ResultStatus::kOk) {
    for (std::size_t k = 0; k < c.output_width && k < result.outputs.size(); ++k)
      c.outputs[r * c.output_width + k] = result.outputs[k];
  }
  // acq_rel: the last decrement (here or in submit()) sees every other row's writes; complete() reads the call
  // after an acquire load of `remaining` that this release pairs with.
  if (c.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) d.finish(c);
  d.rows_in_flight_.fetch_sub(1, std::memory_order_release);  // pairs with drain()'s acquire load
}

void InferDispatcher::finish(InferCall& call) noexcept {
  // Release: pairs with take_completed()'s acquire exchange; the call's rows (written before the last fetch_sub,
  // which this thread made) are visible to the I/O thread that takes it.
  InferCall* head = completed_.load(std::memory_order_relaxed);
  do {
    call.next_completed = head;
  } while (!completed_.compare_exchange_weak(head, &call, std::memory_order_release, std::memory_order_relaxed));
  if (head != nullptr) return;  // the list was not empty: its first push rang, and complete() has not taken it yet
  // The list was empty: ring. The I/O thread reads (resets) the doorbell before complete() takes the list, so a
  // push after its take rings again and none waits unseen. An eventfd write fails only if the counter would overflow
  // (never here).
  const std::uint64_t one = 1;
  while (::write(event_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

InferCall* InferDispatcher::take_completed() noexcept {
  InferCall* newest = completed_.exchange(nullptr, std::memory_order_acquire);  // pairs with finish()'s release
  InferCall* oldest = nullptr;
  while (newest != nullptr) {  // reverse: answer in completion order
    InferCall* next = newest->next_completed;
    newest->next_completed = oldest;
    oldest = newest;
    newest = next;
  }
  return oldest;
}

std::size_t InferDispatcher::complete() noexcept {
  std::size_t answered = 0;
  for (InferCall* call = take_completed(); call != nullptr; ++answered) {
    InferCall* next = call->next_completed;
    std::shared_ptr<InferCall> own = std::move(call->self);
    try {  // out of memory while encoding: that one client gets no answer (its connection times out), the rest do
      if (own->done) own->done(own->response());
    } catch (...) {
    }
    call = next;
  }
  return answered;
}

void InferDispatcher::drain() {
  while (rows_in_flight_.load(std::memory_order_acquire) != 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (InferCall* call = take_completed(); call != nullptr;) {
    InferCall* next = call->next_completed;
    call->self.reset();  // its connection is gone: no answer
    call = next;
  }
}

}  // namespace tickinfer::internal
