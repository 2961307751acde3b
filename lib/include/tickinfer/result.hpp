#pragma once
// What submit() returns and what every accepted request completes with, exactly once.

#include <cstdint>
#include <span>
#include <string_view>

namespace tickinfer {

enum class SubmitStatus : std::uint8_t {
  kAccepted,  // will complete exactly once through its Completion
  kRejected,  // queue full or pipeline stopped: shed explicitly, never queued
  kInvalid,   // wrong feature width
};

enum class ResultStatus : std::uint8_t {
  kOk,          // outputs hold the model's prediction
  kExpired,     // the deadline passed before its batch ran; the model did not run it
  kModelError,  // forward threw, or this row's outputs were NaN/Inf; see error
  kCancelled,   // the pipeline shut down before it ran
};

const char* to_string(SubmitStatus status) noexcept;
const char* to_string(ResultStatus status) noexcept;

/// Delivered to the Completion on a worker thread, or (kCancelled) on the thread running Pipeline::shutdown().
/// Views are valid only during the callback.
struct Result {
  ResultStatus status = ResultStatus::kCancelled;
  std::uint64_t tag = 0;            // the caller's cookie from Completion::tag
  std::span<const float> outputs;   // kOk only: output_width values
  std::uint64_t model_version = 0;  // version that produced outputs (0 if none ran)
  std::int64_t enqueue_ns = 0;      // submit() accepted it (now_ns clock)
  std::int64_t batch_start_ns = 0;  // its batch started forward (0 if none)
  std::int64_t batch_end_ns = 0;    // its batch finished forward (0 if none)
  std::string_view error;           // reason for kModelError / kExpired / kCancelled
};

/// Called once per accepted request: on a worker thread, or, for a request still queued when shutdown() starts,
/// with kCancelled on the thread that calls Pipeline::shutdown() (or ~Pipeline()) before it returns. Must not
/// block; exceptions are caught and counted. A plain function pointer plus context keeps submit() allocation-free.
using CompletionFn = void (*)(void* context, const Result& result);

struct Completion {
  CompletionFn fn = nullptr;
  void* context = nullptr;
  std::uint64_t tag = 0;
};

}  // namespace tickinfer
