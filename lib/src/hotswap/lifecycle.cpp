// The registry's version policy: admission, placement, pin / unpin / rollback, and the one transition table.

#include "hotswap/lifecycle.hpp"

#include <algorithm>
#include <utility>

#include "tickinfer/error.hpp"
#include "tickinfer/mutex.hpp"

namespace tickinfer {

const char* to_string(VersionState state) noexcept {
  switch (state) {
    case VersionState::kLoading:
      return "loading";
    case VersionState::kReady:
      return "ready";
    case VersionState::kRefused:
      return "refused";
    case VersionState::kServing:
      return "serving";
    case VersionState::kRetired:
      return "retired";
  }
  return "unknown";
}

namespace internal {
namespace {

// Versions whose state and file are remembered after they left memory.
constexpr std::size_t kRememberedLimit = 1024;

bool allowed(std::optional<VersionState> from, VersionState to) {
  using S = VersionState;
  if (!from) return to == S::kLoading || to == S::kServing;  // a new version, or the initial one
  if (*from == to) return to != S::kLoading;                 // a fresh copy keeps a held version's role
  switch (*from) {
    case S::kLoading:
      return to == S::kReady || to == S::kServing || to == S::kRefused || to == S::kRetired;
    case S::kReady:
      return to == S::kServing || to == S::kRetired;
    case S::kServing:
      return to == S::kReady || to == S::kRetired;
    case S::kRefused:
    case S::kRetired:
      return to == S::kLoading;
  }
  return false;
}

template <typename Map>
void trim(Map& map) {
  while (map.size() > kRememberedLimit) map.erase(map.begin());
}

Mutex fault_mutex;
std::function<void(std::string_view)> fault TICKINFER_GUARDED_BY(fault_mutex);

}  // namespace

void set_loader_fault_for_testing(std::function<void(std::string_view stage)> hook) {
  MutexLock lock(fault_mutex);
  fault = std::move(hook);
}

void loader_fault_point(std::string_view stage) {
  std::function<void(std::string_view)> hook;
  {
    MutexLock lock(fault_mutex);
    hook = fault;
  }
  if (hook) hook(stage);
}

Lifecycle::Lifecycle(bool accept_version_restart, std::optional<std::uint64_t> pinned, OnPublish on_publish)
    : accept_version_restart_(accept_version_restart), on_publish_(std::move(on_publish)), pinned_(pinned) {}

void Lifecycle::transition(std::uint64_t version, VersionState to) {
  const auto it = states_.find(version);
  const std::optional<VersionState> from = it == states_.end() ? std::nullopt : std::optional(it->second);
  if (!allowed(from, to)) {
    throw Error(ErrorCode::kInternal, "registry: version " + std::to_string(version) + " cannot go from " +
                                          (from ? to_string(*from) : "unknown") + " to " + to_string(to));
  }
  states_[version] = to;
  trim(states_);
}

bool Lifecycle::held(std::uint64_t version) const {
  for (const EntryPtr* entry : {&current_, &previous_, &candidate_}) {
    if (*entry && (*entry)->version == version) return true;
  }
  return false;
}

Lifecycle::Admission Lifecycle::admit(std::uint64_t version, std::int64_t file_mtime_ns) const {
  if (held(version)) return {false, "version " + std::to_string(version) + " is already loaded", LogLevel::kDebug};
  if (pinned_) {
    if (version == *pinned_ || version > newest_) return {};
    return {false,
            "version " + std::to_string(version) + " is not newer than " + std::to_string(newest_) + " (pinned to " +
                std::to_string(*pinned_) + ")",
            LogLevel::kInfo};
  }
  if (!current_ || version > current_->version) return {};
  if (restart_pending_) return {true, {}, LogLevel::kInfo, true};
  if (accept_version_restart_ && file_mtime_ns > current_->file_mtime_ns) return {true, {}, LogLevel::kInfo, true};
  // Equal versions are caught by held() above: this one is lower. Loud: a restarted run would be lost silently.
  return {false,
          "version " + std::to_string(version) + " is lower than the served version " +
              std::to_string(current_->version) +
              "; versions only go up. If the training run restarted its numbering, call "
              "ModelRegistry::reset_versions() or set RegistryConfig::accept_version_restart",
          LogLevel::kWarning};
}

void Lifecycle::begin_load(std::uint64_t version) {
  if (!held(version) && state(version) != VersionState::kLoading) transition(version, VersionState::kLoading);
}

void Lifecycle::refuse(std::uint64_t version) {
  if (const auto s = state(version); s == VersionState::kLoading) transition(version, VersionState::kRefused);
}

void Lifecycle::abandon(std::uint64_t version) {
  if (const auto s = state(version); s == VersionState::kLoading) transition(version, VersionState::kRetired);
}

void Lifecycle::retire(const EntryPtr& entry) {
  if (entry && !held(entry->version)) transition(entry->version, VersionState::kRetired);
}

void Lifecycle::publish(EntryPtr entry, bool restart) {
  const bool first = current_ == nullptr;
  transition(entry->version, VersionState::kServing);
  EntryPtr old_previous;
  if (current_ && current_->version != entry->version) {
    old_previous = std::exchange(previous_, current_);
    transition(previous_->version, VersionState::kReady);
  }
  EntryPtr old_candidate;
  if (candidate_ && (restart || candidate_->version <= entry->version))
    old_candidate = std::exchange(candidate_, nullptr);
  if (previous_ && previous_->version == entry->version) previous_.reset();  // serving it now
  current_ = std::move(entry);
  newest_ = restart ? current_->version : std::max(newest_, current_->version);
  retire(old_previous);
  retire(old_candidate);
  if (on_publish_) on_publish_(current_, first);
}

void Lifecycle::place_initial(EntryPtr entry) {
  known_files_[entry->version] = entry->source;
  if (!state(entry->version)) transition(entry->version, VersionState::kLoading);
  publish(std::move(entry), /*restart=*/false);
}

Lifecycle::Placement Lifecycle::place(EntryPtr entry, bool forced) {
  Placement placement;
  const std::uint64_t version = entry->version;
  known_files_[version] = entry->source;
  trim(known_files_);
  const bool is_pinned = pinned_ && *pinned_ == version;
  const bool replaces_current = current_ && current_->version == version;
  const Admission admission = admit(version, entry->file_mtime_ns);
  const bool restart = !pinned_ && admission.restart && current_ && version < current_->version;
  if (is_pinned || (!pinned_ && (!current_ || version > current_->version)) || (forced && replaces_current) ||
      restart) {
    if (restart) restart_pending_ = false;
    publish(std::move(entry), restart);
    placement.status = LoadOutcome::Status::kPublished;
    placement.restart = restart;
  } else if (forced && previous_ && previous_->version == version) {
    previous_ = std::move(entry);  // a fresh copy of the rollback target; its state stays kReady
    placement.status = LoadOutcome::Status::kRetained;
  } else if ((pinned_ && version > newest_) || (forced && candidate_ && candidate_->version == version)) {
    newest_ = std::max(newest_, version);
    EntryPtr old = std::exchange(candidate_, std::move(entry));
    transition(version, VersionState::kReady);
    if (old && old->version != version) retire(old);
    placement.status = LoadOutcome::Status::kRetained;
  } else {
    abandon(version);
    placement.status = LoadOutcome::Status::kIgnored;
  }
  placement.served = current_->version;
  return placement;
}

bool Lifecycle::pin(std::uint64_t version, std::string& file_to_load) {
  pinned_ = version;
  if (current_ && current_->version == version) return true;
  for (const EntryPtr* entry : {&previous_, &candidate_}) {
    if (*entry && (*entry)->version == version) {
      publish(*entry, /*restart=*/false);
      return true;
    }
  }
  if (const auto file = file_of(version)) file_to_load = *file;
  return false;
}

std::uint64_t Lifecycle::unpin() {
  pinned_.reset();
  EntryPtr best = current_;
  for (const EntryPtr* entry : {&previous_, &candidate_}) {
    if (*entry && (*entry)->version > best->version) best = *entry;
  }
  if (best != current_) publish(best, /*restart=*/false);
  if (candidate_) {
    const EntryPtr old = std::exchange(candidate_, nullptr);
    retire(old);
  }
  return current_->version;
}

std::pair<std::uint64_t, std::uint64_t> Lifecycle::rollback() {
  if (!previous_) throw Error(ErrorCode::kInvalidConfig, "registry: no previous version to roll back to");
  const std::uint64_t from = current_->version;
  pinned_ = previous_->version;
  publish(previous_, /*restart=*/false);  // the served version becomes the rollback target, so it can be undone
  return {from, current_->version};
}

void Lifecycle::reset_versions() { restart_pending_ = true; }

std::optional<std::string> Lifecycle::file_of(std::uint64_t version) const {
  const auto it = known_files_.find(version);
  if (it == known_files_.end()) return std::nullopt;
  return it->second;
}

std::optional<VersionState> Lifecycle::state(std::uint64_t version) const {
  const auto it = states_.find(version);
  if (it == states_.end()) return std::nullopt;
  return it->second;
}

std::vector<VersionInfo> Lifecycle::versions() const {
  std::vector<VersionInfo> list;
  for (const EntryPtr* entry : {&previous_, &current_, &candidate_}) {
    if (!*entry) continue;
    const VersionEntry& e = **entry;
    list.push_back(VersionInfo{e.version, e.kind, e.source, entry == &current_, entry == &previous_, e.loaded_ns,
                               state(e.version).value_or(VersionState::kReady)});
  }
  std::sort(list.begin(), list.end(), [](const VersionInfo& a, const VersionInfo& b) { return a.version < b.version; });
  return list;
}

}  // namespace internal
}  // namespace tickinfer
