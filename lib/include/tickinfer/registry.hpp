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
#include "tickinfer/log.hpp"
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

struct RegistryConfig {
  /// expected_input_width / expected_schema_hash: 0 / empty take the initial model's (every later version
  /// must match them); warmup_batch_sizes: every batch size the pipeline runs (see pipeline_batch_sizes());
  /// max_archive_bytes / max_metadata_bytes bound every file; `version` and expected_input_names /
  /// expected_output_names are ignored (the registry sets them per file: the served version's interface);
  /// engine applies to every file: an ONNX model runs on the native engine only, so with kLibTorch every *.onnx
  /// file is refused (kUnsupported).
  LoadOptions load;
  VersionSource version_source = VersionSource::kFileName;
  std::string version_pattern = R"(epoch(\d+))";  // ECMAScript regex searched in the file name
  ChecksumPolicy checksum = ChecksumPolicy::kIfPresent;
  /// Refuse world-writable files, files of another owner, and symlinks that leave the file's directory.
  bool check_file_safety = true;
  std::optional<std::uint64_t> pinned_version;  // set: start with the "pinned" policy instead of "latest"
  LoaderPriority loader_priority = LoaderPriority::kNormal;
  /// A new version must keep the served one's outputs (names, hence width) and input names, else it is refused
  /// (kInterfaceMismatch naming both). True: the operator accepts such a change (input width always stays).
  bool allow_interface_change = false;
  /// Versions only go up: a version lower than the served one is ignored with a warning naming both. True: one
  /// whose file is newer (mtime) than the served version's is a restarted training run and is served.
  /// ModelRegistry::reset_versions() accepts one restart without this.
  bool accept_version_restart = false;
  /// A file that fails as partly written (truncated, no zip header yet, checksum) while it still changes, or
  /// changed within this long, is retried quietly once it has been unchanged this long, not refused.
  std::chrono::milliseconds settle_time{250};
  LogSink log;  // empty: stderr_log_sink() (info and above)
};

/// Where a version is in its life (ModelRegistry::versions()); the transitions are kLoading -> kReady or
/// kRefused, kReady <-> kServing, kReady / kServing -> kRetired, kRefused / kRetired -> kLoading.
enum class VersionState {
  kLoading,  // being read, validated and warmed up
  kReady,    // validated and held, not served (rollback target, or the newest while pinned)
  kRefused,  // failed a check
  kServing,  // published: what the pipeline serves
  kRetired,  // no longer held (freed after its last batch)
};

const char* to_string(VersionState state) noexcept;

/// A loaded version, as listed by ModelRegistry::versions().
struct VersionInfo {
  std::uint64_t version = 0;
  CheckpointKind kind = CheckpointKind::kTorchScript;
  std::string source;          // the file it came from
  bool current = false;        // published: what the pipeline serves
  bool previous = false;       // the rollback target
  std::int64_t loaded_ns = 0;  // now_ns() when it passed validation
  VersionState state = VersionState::kReady;
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
  std::uint64_t swaps = 0;               // publishes after the initial one (loads, rollbacks, pins, unpins)
  std::uint64_t loaded = 0;              // checkpoints that passed every check
  std::uint64_t loaded_on_libtorch = 0;  // of those, run by LibTorch (engine libtorch, or the native plan refused)
  std::uint64_t ignored = 0;             // see LoadOutcome::Status::kIgnored
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
/// A checkpoint is a TorchScript archive with metadata; a weights-only file (torch.save of a plain dict of tensors)
/// applied onto a copy of the served version's architecture with strict name, shape and dtype matching (refused
/// while an ONNX version serves: there is no architecture to apply it onto); or an ONNX model, any file whose name
/// ends in ".onnx" (is_onnx_path()), loaded with load_onnx()'s checks and run by the native engine. A directory
/// may mix them: versions are ordered by number whatever the kind. Before publishing, whatever the kind: file
/// safety, sha256 sidecar, size bounds, width, feature schema and interface (outputs, input names), golden vectors,
/// the checked warm-up at every warm-up batch size (shape, finite, rows independent of their batch, the same input
/// twice). A refused file is logged and counted by reason; the served version keeps serving. Nothing a file or an
/// API call does ends the loader thread: an unexpected exception is logged and counted (refused{internal}).
///
/// Policy: "latest" serves the highest version; pin() serves one version until unpin(). The version before
/// the current one stays loaded, so rollback() is a publish, not a load.
class ModelRegistry {
 public:
  /// Loads `initial` (a TorchScript archive or an ONNX model) on the calling thread, publishes it and starts the
  /// loader.
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

  /// Thread-safe. Forgets the version order once: the next checkpoint that passes every check is served
  /// whatever its version (a training run that restarted its epoch numbering). Logged as a warning.
  void reset_versions();

  /// Thread-safe.
  RegistryMetricsSnapshot metrics() const;

 private:
  struct Impl;
  explicit ModelRegistry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickinfer
