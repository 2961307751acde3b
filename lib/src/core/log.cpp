#include "tickinfer/log.hpp"

#include <cstdio>
#include <string>

namespace tickinfer {

const char* to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

namespace {

void write_stderr(const LogRecord& record) {
  // One fputs per line: lines from several threads do not interleave.
  std::string line = "tickinfer";
  if (!record.component.empty()) line += " " + record.component;
  line += std::string(" [") + to_string(record.level) + "]: " + record.message + "\n";
  std::fputs(line.c_str(), stderr);
}

}  // namespace

LogSink stderr_log_sink(LogLevel min_level) {
  return [min_level](const LogRecord& record) {
    if (record.level >= min_level) write_stderr(record);
  };
}

void emit_log(const LogSink& sink, const LogRecord& record) noexcept {
  try {
    if (sink) {
      sink(record);
    } else if (record.level != LogLevel::kDebug) {
      write_stderr(record);
    }
  } catch (...) {
    // A failing sink must not take the caller's thread down.
  }
}

}  // namespace tickinfer
