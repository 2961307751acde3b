#pragma once
// The registry's version policy as one explicit state machine (like Triton's model lifecycle): each version
// is kLoading -> kReady / kRefused, kReady <-> kServing, -> kRetired; every transition goes through
// Lifecycle::transition(). Not thread-safe: the registry calls it under its state mutex. No torch headers.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tickinfer/log.hpp"
#include "tickinfer/registry.hpp"

namespace tickinfer::internal {

/// A validated version as the policy sees it; the registry derives its own entry (with the architecture).
struct VersionEntry {
  virtual ~VersionEntry() = default;
  std::uint64_t version = 0;
  CheckpointKind kind = CheckpointKind::kTorchScript;
  std::string source;
  std::shared_ptr<const Model> model;  // what workers run
  std::int64_t file_mtime_ns = 0;      // the file's mtime (wall clock): orders a restarted run's files
  std::int64_t loaded_ns = 0;          // now_ns() when it passed validation
  std::int64_t load_ns = 0, warmup_ns = 0;
};

class Lifecycle {
 public:
  using EntryPtr = std::shared_ptr<const VersionEntry>;
  /// Called with every entry made current (under the registry's state mutex); `first` for the initial one.
  using OnPublish = std::function<void(const EntryPtr& entry, bool first)>;

  Lifecycle(bool accept_version_restart, std::optional<std::uint64_t> pinned, OnPublish on_publish);

  /// Whether a file with `version` (its mtime `file_mtime_ns`) is worth loading. `restart` marks a lower
  /// version accepted as a restarted run (accept_version_restart, or after reset_versions()).
  struct Admission {
    bool load = true;
    std::string reason;  // why not
    LogLevel level = LogLevel::kInfo;
    bool restart = false;
  };
  Admission admit(std::uint64_t version, std::int64_t file_mtime_ns) const;

  /// kLoading for a version not held (a fresh copy of a held version leaves its state as it is).
  void begin_load(std::uint64_t version);
  /// kLoading -> kRefused (a held version keeps its role when a fresh copy is refused).
  void refuse(std::uint64_t version);
  /// kLoading -> kRetired: loaded but not kept (changed while loading, or not wanted after all).
  void abandon(std::uint64_t version);

  struct Placement {
    LoadOutcome::Status status = LoadOutcome::Status::kIgnored;
    std::uint64_t served = 0;  // the version served afterwards
    bool restart = false;      // published as a restarted run's version
  };
  /// Decides on a validated entry: kServing (published), kReady (kept: rollback target or newest while
  /// pinned), or kRetired (valid but not newer). `forced`: a load()/reload() of this very file.
  Placement place(EntryPtr entry, bool forced);

  /// The initial version: published without a policy decision.
  void place_initial(EntryPtr entry);

  /// pin(): serves `version` now if it is held (returns true); else the file to load for it, if known.
  bool pin(std::uint64_t version, std::string& file_to_load);
  std::uint64_t unpin();
  /// Serves the previous version and pins it; returns {from, to}. Throws Error(kInvalidConfig) without one.
  std::pair<std::uint64_t, std::uint64_t> rollback();
  /// The next version that passes every check is served whatever its number (a restarted training run).
  void reset_versions();

  const EntryPtr& current() const { return current_; }
  std::optional<std::uint64_t> pinned() const { return pinned_; }
  std::optional<std::string> file_of(std::uint64_t version) const;
  std::optional<VersionState> state(std::uint64_t version) const;
  std::vector<VersionInfo> versions() const;

 private:
  /// The one place a version changes state; an edge not in the table throws Error(kInternal).
  void transition(std::uint64_t version, VersionState to);
  void publish(EntryPtr entry, bool restart);
  void retire(const EntryPtr& entry);
  bool held(std::uint64_t version) const;

  bool accept_version_restart_;
  bool restart_pending_ = false;
  OnPublish on_publish_;
  EntryPtr current_, previous_, candidate_;  // serving; rollback target (kReady); newest while pinned (kReady)
  std::optional<std::uint64_t> pinned_;
  std::uint64_t newest_ = 0;  // highest version loaded (since the last restart)
  std::map<std::uint64_t, VersionState> states_;
  std::map<std::uint64_t, std::string> known_files_;  // for pin() after a version left memory
};

/// Test seam: when set, the loader thread calls it with the stage it is at ("decide") and lets whatever it
/// throws propagate like a real fault would, to prove the loader survives it. Thread-safe.
void set_loader_fault_for_testing(std::function<void(std::string_view stage)> fault);
void loader_fault_point(std::string_view stage);

}  // namespace tickinfer::internal
