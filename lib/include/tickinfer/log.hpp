#pragma once
// The one log record and sink type for the operator's log: the registry, the checkpoint watcher and the
// default stderr sink all use it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "tickinfer/error.hpp"

namespace tickinfer {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

/// "debug", "info", "warning", "error".
const char* to_string(LogLevel level) noexcept;

/// One event: what happened, to which file and version, and the error code when something was refused.
struct LogRecord {
  LogLevel level = LogLevel::kInfo;
  std::string component;                 // who logs: "registry", "watcher"
  std::string message;                   // one line; names the file and the reason
  std::filesystem::path path;            // the file concerned; empty when none (API actions such as pin)
  std::optional<ErrorCode> error;        // set when something was refused or failed
  std::optional<std::uint64_t> version;  // the model version concerned, when known
};

/// Receives log records. Called on the registry's loader thread, the watcher's thread and API callers'
/// threads: must be thread-safe and should be quick. An exception it throws is swallowed.
using LogSink = std::function<void(const LogRecord&)>;

/// A sink writing one line per record at `min_level` or above to stderr:
/// "tickinfer <component> [<level>]: <message>". What an empty LogSink in a config stands for.
LogSink stderr_log_sink(LogLevel min_level = LogLevel::kInfo);

/// Hands `record` to `sink`, or to stderr_log_sink() when `sink` is empty; never throws.
void emit_log(const LogSink& sink, const LogRecord& record) noexcept;

}  // namespace tickinfer
