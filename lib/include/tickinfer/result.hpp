#pragma once
// What submit() returns and what every accepted request completes with, exactly once.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tickinfer {

/// A dense small instrument id (InstrumentRegistry, instruments.hpp): per-key state is an array index.
using InstrumentKey = std::uint32_t;
/// The key of a request submitted without one.
inline constexpr InstrumentKey kNoKey = 0xffffffffu;

enum class SubmitStatus : std::uint8_t {
  kAccepted,  // will complete exactly once through its Completion (Conflation::kMerge: at most once, see there)
  kRejected,  // queue full, pipeline stopped, or (deadline admission) its deadline cannot be met: never queued
  kInvalid,   // wrong feature width, or a key the pipeline was not sized for
};

enum class ResultStatus : std::uint8_t {
  kOk,          // outputs hold the model's prediction
  kExpired,     // the deadline passed before its batch ran; the model did not run it
  kModelError,  // forward threw, or this row's outputs were NaN/Inf; see error
  kCancelled,   // the pipeline shut down before it ran
  kSuperseded,  // conflation: a newer request for the same key took its place before it ran; the model did not run it
};
inline constexpr std::size_t kResultStatuses = 5;

/// The engine that produced a result's outputs (Model::engine(), mapped once per model swap, not per request).
enum class EngineKind : std::uint8_t {
  kNone,      // no model ran (expired, superseded, cancelled, no model loaded)
  kNative,    // tickinfer's native engine
  kLibTorch,  // LibTorch
  kOther,     // any other engine name
};
inline constexpr std::size_t kEngineKinds = 4;

const char* to_string(SubmitStatus status) noexcept;
const char* to_string(ResultStatus status) noexcept;
/// "none", "native", "libtorch", "other".
const char* to_string(EngineKind engine) noexcept;
/// "native" -> kNative, "libtorch" -> kLibTorch, anything else -> kOther. Does not allocate.
EngineKind engine_kind(std::string_view engine_name) noexcept;

/// Delivered to the Completion on a worker thread, or (kCancelled) on the thread running Pipeline::shutdown().
/// Views are valid only during the callback.
struct Result {
  ResultStatus status = ResultStatus::kCancelled;
  std::uint64_t tag = 0;                  // the caller's cookie from Completion::tag
  std::span<const float> outputs;         // kOk only: output_width values
  std::uint64_t model_version = 0;        // version that produced outputs (0 if none ran)
  std::int64_t enqueue_ns = 0;            // submit() accepted it (now_ns clock)
  std::int64_t event_ns = 0;              // the event_ns the keyed submit() was given (0: none)
  std::int64_t batch_start_ns = 0;        // its batch started forward (0 if none)
  std::int64_t batch_end_ns = 0;          // its batch finished forward (0 if none)
  std::string_view error;                 // reason for kModelError / kExpired / kCancelled / kSuperseded
  InstrumentKey key = kNoKey;             // the key it was submitted with (kNoKey: none)
  EngineKind engine = EngineKind::kNone;  // the engine that ran it (kOk, kModelError); kNone when none ran
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
