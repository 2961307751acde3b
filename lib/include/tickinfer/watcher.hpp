#pragma once
// Watches a directory for complete checkpoint files: inotify through Boost.Asio, or polling as a fallback.
// No boost headers here (the implementation is a pimpl).

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "tickinfer/log.hpp"

namespace tickinfer {

enum class WatchMode {
  kAuto,     // inotify where the kernel gives it, else polling
  kInotify,  // inotify or create() fails
  kPolling,  // rescans every poll_interval; a file counts as complete once unchanged for two scans
};

struct WatcherConfig {
  std::filesystem::path directory;
  WatchMode mode = WatchMode::kAuto;
  std::chrono::milliseconds poll_interval{250};
  bool report_existing = true;  // report the checkpoints already there when the watcher starts
  /// Problems of the watcher itself (lost watch, queue overflow, scan errors, a throwing callback), as records
  /// with component "watcher" and the path concerned. Empty: stderr_log_sink(). Called on the watcher thread
  /// (and on create()'s caller).
  LogSink log;
};

/// True for names that are never checkpoints: dot-files and names ending in .tmp, .part or .sha256 (writers
/// write under such a name, then rename; a .sha256 sidecar instead re-reports its checkpoint).
bool is_ignored_checkpoint_name(std::string_view file_name) noexcept;

/// Reports each complete checkpoint file in one directory: renamed in (IN_MOVED_TO) or closed after
/// writing (IN_CLOSE_WRITE); a sidecar `<name>.sha256` that arrives re-reports `<name>`. Owns its thread and
/// io_context: made by create(), the destructor stops and joins.
class CheckpointWatcher {
 public:
  /// Called on the watcher thread with the checkpoint's path; should not block (hand it to
  /// ModelRegistry::offer()). A file may be reported more than once (e.g. rewritten in place).
  using Callback = std::function<void(const std::filesystem::path&)>;

  /// Starts watching. Throws Error(kFileNotFound) when `directory` is not a directory,
  /// Error(kUnsupported) when kInotify was asked for and inotify is unavailable.
  static std::unique_ptr<CheckpointWatcher> create(const WatcherConfig& config, Callback on_checkpoint);
  ~CheckpointWatcher();
  CheckpointWatcher(const CheckpointWatcher&) = delete;
  CheckpointWatcher& operator=(const CheckpointWatcher&) = delete;

  /// Thread-safe. True when inotify delivers the events; false when polling.
  bool uses_inotify() const noexcept;
  /// Thread-safe, non-blocking. Reports every checkpoint in the directory again (e.g. after a fix by hand).
  void rescan();
  /// Thread-safe, idempotent; must not be called from the callback. Stops watching and joins the thread.
  void stop();

 private:
  struct Impl;
  explicit CheckpointWatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickinfer
