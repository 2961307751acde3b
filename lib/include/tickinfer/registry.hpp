#pragma once
// Hot-swappable model versions: checkpoints load and validate on a background thread, then publish into
// the ModelSlot the pipeline reads; the previous version stays loaded for an instant rollback.
// No torch headers here (the implementation is a pimpl).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tickinfer/error.hpp"
#include "tickinfer/histogram.hpp"
#include "tickinfer/model.hpp"
#include "tickinfer/model_slot.hpp"
#include "tickinfer/pipeline.hpp"
#include "tickinfer/torchscript.hpp"

namespace tickinfer {

/// Where a checkpoint's version (its place in the "latest" order) comes from.
enum class VersionSource {
  kFileName,  // RegistryConfig::version_pattern's first group, e.g. model_epoch12.pt -> 12; no match: ignored
  kMetadata,  // the archive's metadata version (weights-only files have none: their file name must match)
};

/// The `<checkpoint>.sha256` sidecar (sha256sum format: "<64 hex digits>  <file name>").
enum class ChecksumPolicy {
  kIfPresent,  // verified when it exists
  kRequire,    // a checkpoint without one is refused (kChecksumMismatch)
  kIgnore,
};

/// How the loader thread competes for CPU with workers and producers (Linux scheduling of that thread only).
enum class LoaderPriority {
  kNormal,      // like any thread
  kLow,         // nice 19: a small share of a busy core
  kBackground,  // SCHED_IDLE: only otherwise idle CPU time, so loading never delays the hot path; a swap waits
                // while every core is busy
};

enum class LogLevel { kDebug, kInfo, kWarning, kError };

/// One event for the operator's log: what happened to which file, and the error code when refused.
struct LogRecord {
  LogLevel level = LogLevel::kInfo;
  std::string message;             // one line, names the file and the reason
  std::filesystem::path path;      // the checkpoint concerned; empty for API actions (pin, rollback)
  std::optional<ErrorCode> error;  // set when a file was refused
  std::uint64_t version = 0;       // the version concerned; 0 when not known
};
/// Called on the loader thread and on API callers' threads; must be thread-safe and should be quick.
using LogSink = std::function<void(const LogRecord&)>;

struct RegistryConfig {
  /// expected_input_width / expected_schema_hash: 0 / empty take the initial model's (every later version
  /// must match them); warmup_batch_sizes: every batch size the pipeline runs (see pipeline_batch_sizes());
  /// `version` is ignored (the registry sets it per file).
  LoadOptions load;
  VersionSource version_source = VersionSource::kFileName;
  std::string version_pattern = R"(epoch(\d+))";  // ECMAScript regex searched in the file name
  ChecksumPolicy checksum = ChecksumPolicy::kIfPresent;
  /// Refuse world-writable files, files of another owner, and symlinks that leave the file's directory.
  bool check_file_safety = true;
  std::optional<std::uint64_t> pinned_version;  // set: start with the "pinned" policy instead of "latest"
  LoaderPriority loader_priority = LoaderPriority::kNormal;
  LogSink log;  // empty: one line per record on stderr
};

/// The batch sizes a pipeline with `config` runs (after padding to allowed sizes): what a new model must
/// be warmed up with before it serves.
std::vector<std::size_t> pipeline_batch_sizes(const PipelineConfig& config);

enum class CheckpointKind { kTorchScript, kWeights };

/// A loaded version, as listed by ModelRegistry::versions().
struct VersionInfo {
  std::uint64_t version = 0;
  CheckpointKind kind = CheckpointKind::kTorchScript;
  std::string source;          // the file it came from
  bool current = false;        // published: what the pipeline serves
  bool previous = false;       // the rollback target
  std::int64_t loaded_ns = 0;  // now_ns() when it passed validation
};

/// What became of one checkpoint file.
struct LoadOutcome {
  enum class Status {
    kPublished,  // validated and now served
    kRetained,   // validated and kept loaded, not served (a version is pinned)
    kIgnored,    // not loaded: no version in its name, not newer, already loaded, or changed while loading
    kRefused,    // failed a check; `error` says which
  };
  Status status = Status::kIgnored;
  std::uint64_t version = 0;       // 0 when not known
  std::optional<ErrorCode> error;  // kRefused only
  std::string message;
};

const char* to_string(LoadOutcome::Status status) noexcept;

struct RegistryMetricsSnapshot {
  std::uint64_t swaps = 0;    // publishes after the initial one (loads, rollbacks, pins, unpins)
  std::uint64_t loaded = 0;   // checkpoints that passed every check
  std::uint64_t ignored = 0;  // see LoadOutcome::Status::kIgnored
  std::uint64_t rollbacks = 0;
  std::map<ErrorCode, std::uint64_t> refused;  // refused files by reason
  HistogramSnapshot load;     // read + validate (golden, finite), per loaded or refused-after-open file
  HistogramSnapshot warm_up;  // warm-up of every pipeline batch size, per loaded file
  std::uint64_t current_version = 0;
  std::optional<std::uint64_t> pinned_version;

  std::uint64_t refused_total() const noexcept;
  std::uint64_t refused_for(ErrorCode code) const noexcept;
};

/// Prometheus text exposition (0.0.4) of registry metrics; names start with `prefix`.
std::string to_prometheus(const RegistryMetricsSnapshot& snapshot, const std::string& prefix = "tickinfer");

/// Serves the current model version as an immutable snapshot through a ModelSlot (workers read it with one
/// acquire load per batch, no lock) and replaces it atomically when a newer checkpoint has loaded and passed
/// every check. Owns a loader thread: made by create(), the destructor stops and joins it.
///
/// A checkpoint is either a TorchScript archive with metadata, or a weights-only file (torch.save of a plain
/// dict of tensors) applied onto a copy of the served version's architecture with strict name, shape and
/// dtype matching. Before publishing: file safety, sha256 sidecar, width and feature schema, golden vectors,
/// finite outputs, warm-up. A refused file is logged and counted by reason; the served version keeps serving.
///
/// Policy: "latest" serves the highest version; pin() serves one version until unpin(). The version before
/// the current one stays loaded, so rollback() is a publish, not a load.
class ModelRegistry {
 public:
  /// Loads `initial` (a TorchScript archive) on the calling thread, publishes it and starts the loader.
  /// Throws Error from loading or checking it (as a refusal would name), or kInvalidConfig for version_pattern.
  static std::unique_ptr<ModelRegistry> create(RegistryConfig config, const std::filesystem::path& initial);
  /// Stops the loader (a load in progress finishes first; queued offers are dropped) and joins it.
  ~ModelRegistry();
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  /// Thread-safe. The slot to create the pipeline with; the registry publishes every new version into it.
  std::shared_ptr<ModelSlot> slot() const noexcept;

  /// Thread-safe, non-blocking (allocates): queues `path` for the loader thread. Offers queued together are
  /// tried newest file-name version first, so a backlog costs one load. Made for CheckpointWatcher's callback.
  void offer(const std::filesystem::path& path);

  /// Thread-safe; blocks until the loader thread has decided on `path` (a forced load: also re-reads a
  /// version that is already loaded). Not from a pipeline worker or completion callback.
  LoadOutcome load(const std::filesystem::path& path);

  /// Thread-safe; blocks like load(). Reads the file of `version` (default: the current one) again and, if it
  /// is the served version, publishes the fresh copy. Throws Error(kInvalidConfig) if no file of it is known.
  LoadOutcome reload(std::optional<std::uint64_t> version = std::nullopt);

  /// Thread-safe; never blocks on a load. The model the slot holds now.
  std::shared_ptr<const Model> current() const;
  /// Thread-safe; never blocks on a load.
  std::uint64_t current_version() const;
  /// Thread-safe. The versions held in memory (current, rollback target, newest while pinned), oldest first.
  std::vector<VersionInfo> versions() const;
  /// Thread-safe. The pinned version, if the policy is "pinned".
  std::optional<std::uint64_t> pinned() const;

  /// Thread-safe; blocks while it loads a version that is no longer in memory. Switches to the "pinned"
  /// policy and serves `version`: at once if it is loaded, after loading its file if it was seen before,
  /// otherwise when a file with that version arrives. Returns whether `version` is served on return.
  bool pin(std::uint64_t version);
  /// Thread-safe. Back to "latest": serves the newest loaded version at once. Returns the version served.
  std::uint64_t unpin();
  /// Thread-safe; instant (no load). Serves the previous version and pins it, so a newer file does not undo
  /// the rollback (unpin() does). Returns it; throws Error(kInvalidConfig) when there is no previous version.
  std::uint64_t rollback();

  /// Thread-safe.
  RegistryMetricsSnapshot metrics() const;

 private:
  struct Impl;
  explicit ModelRegistry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickinfer
