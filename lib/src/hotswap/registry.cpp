// The hot-swap registry: a loader thread checks, loads, validates and warms up checkpoints (one path:
// file_checks, then model/open_checkpoint + finish_checkpoint, or for *.onnx files native/open_onnx + finish_onnx),
// then the lifecycle decides and publishes them into the ModelSlot the pipeline's workers read.

// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s std::regex compiler in sanitizer builds; the
// location it names is <bits/std_function.h>, so those headers are read first, with only that warning off for them.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <functional>
#include <regex>
#pragma GCC diagnostic pop
#endif

#include "tickinfer/registry.hpp"

#include <ATen/Parallel.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <regex>
#include <sstream>
#include <thread>
#include <utility>

#include "core/prometheus.hpp"
#include "hotswap/file_checks.hpp"
#include "hotswap/lifecycle.hpp"
#include "model/native/onnx_model.hpp"
#include "model/torch_error.hpp"
#include "model/torch_model.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/metrics.hpp"
#include "tickinfer/mutex.hpp"
#include "tickinfer/onnx.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;
using internal::FileIdentity;

// A partly written file is retried at most this many times before it is refused.
constexpr int kMaxSettleRetries = 8;

// Codes a refusal can carry; rendered even at zero so Prometheus series do not appear and vanish.
constexpr ErrorCode kRefusalCodes[] = {
    ErrorCode::kFileNotFound,     ErrorCode::kNotTorchScript,    ErrorCode::kTruncatedArchive,
    ErrorCode::kMissingMetadata,  ErrorCode::kMalformedMetadata, ErrorCode::kWidthMismatch,
    ErrorCode::kSchemaMismatch,   ErrorCode::kGoldenMismatch,    ErrorCode::kNonFiniteOutput,
    ErrorCode::kModelError,       ErrorCode::kUnsupported,       ErrorCode::kUnsafeFile,
    ErrorCode::kChecksumMismatch, ErrorCode::kWeightsMismatch,   ErrorCode::kInterfaceMismatch,
    ErrorCode::kShapeMismatch,    ErrorCode::kNondeterministic,  ErrorCode::kTooLarge,
    ErrorCode::kParseError,       ErrorCode::kInternal,
};

// What a registry entry adds to the lifecycle's: the unfrozen architecture, the base for weights-only files. An
// ONNX version has neither (torch_model null).
struct Entry final : internal::VersionEntry {
  std::shared_ptr<const internal::TorchModel> torch_model;
  internal::TorchArchive architecture;
};

struct Request {
  fs::path path;
  bool forced = false;                              // load even if that version is loaded or not newer
  bool initial = false;                             // create()'s file: its name need not carry a version
  std::optional<std::uint64_t> name_version;        // from the file name, for ordering a backlog
  std::shared_ptr<std::promise<LoadOutcome>> done;  // set for blocking callers
  int retries = 0;                                  // quiet retries of a partly written file so far
  std::int64_t not_before_ns = 0;                   // a deferred retry waits until then (now_ns())
};

std::string millis(std::int64_t ns) {
  std::ostringstream out;
  out.precision(3);
  out << std::fixed << static_cast<double>(ns) * 1e-6 << " ms";
  return out.str();
}

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Failures a file still being written produces (no zip directory yet, no header yet, half a protobuf, a hash of
// half of it).
bool partial_write_symptom(ErrorCode code) {
  return code == ErrorCode::kTruncatedArchive || code == ErrorCode::kNotTorchScript || code == ErrorCode::kParseError ||
         code == ErrorCode::kChecksumMismatch;
}

}  // namespace

// ---- public helpers ----

const char* to_string(LoadOutcome::Status status) noexcept {
  switch (status) {
    case LoadOutcome::Status::kPublished:
      return "published";
    case LoadOutcome::Status::kRetained:
      return "retained";
    case LoadOutcome::Status::kIgnored:
      return "ignored";
    case LoadOutcome::Status::kRefused:
      return "refused";
  }
  return "unknown";
}

std::uint64_t RegistryMetricsSnapshot::refused_total() const noexcept {
  std::uint64_t total = 0;
  for (const auto& [code, count] : refused) total += count;
  return total;
}

std::uint64_t RegistryMetricsSnapshot::refused_for(ErrorCode code) const noexcept {
  const auto it = refused.find(code);
  return it == refused.end() ? 0 : it->second;
}

std::string to_prometheus(const RegistryMetricsSnapshot& s, const std::string& prefix) {
  internal::PrometheusWriter out(prefix);
  out.counter("model_swaps_total", "Model versions published after the first.", s.swaps);
  out.counter("checkpoints_loaded_total", "Checkpoints that passed every check.", s.loaded);
  out.counter("checkpoints_loaded_libtorch_total",
              "Loaded checkpoints LibTorch runs (engine libtorch, or the native engine refused them: see the log).",
              s.loaded_on_libtorch);
  out.counter("checkpoints_ignored_total",
              "Checkpoints not loaded: no version in the name, not newer, or already loaded.", s.ignored);
  out.counter("model_rollbacks_total", "Rollbacks to the previous version.", s.rollbacks);
  std::map<ErrorCode, std::uint64_t> by_reason = s.refused;
  for (const ErrorCode code : kRefusalCodes) by_reason.try_emplace(code, 0);
  std::vector<std::pair<std::string, std::uint64_t>> refused;
  for (const auto& [code, count] : by_reason) refused.emplace_back(to_string(code), count);
  out.labeled("checkpoints_refused_total", "counter", "Checkpoints refused, by reason.", "reason", refused);
  out.summary("checkpoint_load_seconds", "Reading and validating a checkpoint.", s.load, {0.5, 0.9, 0.99});
  out.summary("checkpoint_warmup_seconds", "Warming up every pipeline batch size.", s.warm_up, {0.5, 0.9, 0.99});
  out.gauge("registry_model_version", "Version the registry serves.", s.current_version);
  out.gauge("registry_pinned", "1 when a version is pinned.", s.pinned_version ? 1 : 0);
  return out.str();
}

// ---- the registry ----

struct ModelRegistry::Impl {
  RegistryConfig config;  // immutable once the loader thread runs
  std::regex version_regex;
  std::shared_ptr<ModelSlot> slot = std::make_shared<ModelSlot>();

  // Version state. Loads run without this mutex; only their decision (publish or not) takes it.
  mutable Mutex state_mutex;
  std::unique_ptr<internal::Lifecycle> lifecycle TICKINFER_PT_GUARDED_BY(state_mutex);

  // Loader queue.
  Mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<Request> queue TICKINFER_GUARDED_BY(queue_mutex);
  std::vector<Request> deferred TICKINFER_GUARDED_BY(queue_mutex);  // partly written files, retried later
  bool stopping TICKINFER_GUARDED_BY(queue_mutex) = false;
  std::atomic<bool> stop_flag{false};  // lets a backlog stop between files without the queue mutex
  std::thread loader;

  // Metrics.
  Counter swaps, loaded, ignored, rollbacks;
  Counter libtorch_loaded;  // loaded versions the native engine does not run (engine libtorch, or refused)
  mutable Mutex refused_mutex;
  std::map<ErrorCode, std::uint64_t> refused TICKINFER_GUARDED_BY(refused_mutex);
  LatencyHistogram load_time, warmup_time;
  std::atomic<std::uint64_t> current_version{0};

  void log(LogLevel level, const std::string& message, const fs::path& path = {},
           std::optional<ErrorCode> error = std::nullopt, std::optional<std::uint64_t> version = std::nullopt) const {
    emit_log(config.log, LogRecord{level, "registry", message, path, error, version});
  }
  std::optional<std::uint64_t> version_from_name(const fs::path& path) const;
  internal::FileCheckOptions file_options() const {
    return {config.check_file_safety, config.checksum, config.load.max_archive_bytes};
  }

  // What one attempt learnt, for the outcome when it throws.
  struct Attempt {
    std::optional<std::uint64_t> version;
    std::optional<FileIdentity> identity;  // of the file as last checked
    bool read = false;                     // the file was read: a refusal from here on records load time
    std::int64_t read_start_ns = 0;
    bool loading = false;  // the lifecycle has the version in kLoading
  };
  struct Skip {
    std::string reason;
    LogLevel level = LogLevel::kInfo;
  };
  std::shared_ptr<Entry> load_entry(const Request& request, Attempt& attempt, std::optional<Skip>& skip);
  LoadOutcome process(Request& request, bool& deferred_now);
  LoadOutcome refuse(const Request& request, const Attempt& attempt, ErrorCode code, const std::string& message);
  bool defer_if_unsettled(Request& request, const Attempt& attempt, const Error& e);
  LoadOutcome submit_and_wait(const fs::path& path);
  void loader_main();
  void take_work(std::deque<Request>& batch);
};

std::optional<std::uint64_t> ModelRegistry::Impl::version_from_name(const fs::path& path) const {
  const std::string name = path.filename().string();
  std::smatch match;
  try {
    if (!std::regex_search(name, match, version_regex) || match.size() < 2 || !match[1].matched) return std::nullopt;
  } catch (const std::regex_error&) {
    return std::nullopt;  // a pattern too complex for this name: treated like no match
  }
  const std::string digits = match[1].str();
  std::uint64_t version = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return version;
}

// Throws Error when the file is refused; returns null with `skip` set when it is not wanted.
std::shared_ptr<Entry> ModelRegistry::Impl::load_entry(const Request& request, Attempt& attempt,
                                                       std::optional<Skip>& skip) {
  const std::string source = request.path.string();
  const bool by_name = config.version_source == VersionSource::kFileName && request.name_version;

  // Cheap safety checks first, for every file: one not loaded (older, already loaded) is still refused when
  // unsafe, whether it came alone or in a backlog.
  attempt.identity = internal::check_file_safety(request.path, file_options());
  const auto admit = [&](std::uint64_t version) {
    if (request.forced) return true;
    MutexLock lock(state_mutex);
    const auto admission = lifecycle->admit(version, attempt.identity->mtime_ns);
    if (!admission.load) skip = Skip{admission.reason, admission.level};
    return admission.load;
  };
  if (by_name) {
    attempt.version = request.name_version;
    if (!admit(*request.name_version)) return nullptr;
  }

  // One read of the file (bounded), the sidecar verified over those bytes.
  attempt.read_start_ns = now_ns();
  const internal::CheckedFile file = internal::open_checked(request.path, file_options());
  attempt.identity = file.identity;
  attempt.read = true;

  std::shared_ptr<const Entry> base;
  LoadOptions options = config.load;
  {
    MutexLock lock(state_mutex);
    base = std::static_pointer_cast<const Entry>(lifecycle->current());
  }
  options.expected_input_names.clear();  // the served version's interface, unless a change is allowed
  options.expected_output_names.clear();
  options.expected_state_names.reset();
  if (base && !config.allow_interface_change) {
    options.expected_input_names = base->model->metadata().input_names;
    options.expected_output_names = base->model->metadata().output_names;
    options.expected_state_names = base->model->metadata().state_names;  // a pipeline's state width is fixed
  }
  // First half of the kind's loader: the file parsed and its metadata read, so its version is known.
  auto entry = std::make_shared<Entry>();
  entry->source = source;
  entry->file_mtime_ns = file.identity.mtime_ns;
  std::optional<internal::OpenedCheckpoint> opened;
  std::optional<internal::OpenedOnnx> opened_onnx;
  std::uint64_t metadata_version = 0;
  const std::int64_t open_start = now_ns();
  if (is_onnx_path(request.path)) {
    opened_onnx = internal::open_onnx(std::string_view(file.bytes->data(), file.bytes->size()), source, options);
    entry->kind = CheckpointKind::kOnnx;
    metadata_version = opened_onnx->metadata.version;
  } else {
    const c10::Device device = internal::parse_device(config.load.device);
    const bool torch_base = base && base->torch_model;
    std::string no_base_reason;  // a weights-only file has nothing to apply onto while an ONNX version serves
    if (base && !torch_base) {
      no_base_reason =
          std::string("the served version ").append(std::to_string(base->version)).append(" is an ONNX model (");
      no_base_reason.append(base->source).append(")");
    }
    opened = internal::open_checkpoint(file.bytes, source, device, options, torch_base ? &base->architecture : nullptr,
                                       no_base_reason);
    entry->kind = opened->kind;
    metadata_version = opened->archive.metadata.version;
  }
  const std::int64_t open_ns = now_ns() - open_start;
  if (by_name) {
    entry->version = *request.name_version;
  } else if (entry->kind != CheckpointKind::kWeights) {  // kMetadata, or the initial file
    entry->version = metadata_version;
  } else if (request.name_version) {
    entry->version = *request.name_version;
  } else {
    throw Error(ErrorCode::kMalformedMetadata,
                source + ": a weights-only checkpoint carries no version; its file name must match '" +
                    config.version_pattern + "'");
  }
  attempt.version = entry->version;
  if (!by_name && !admit(entry->version)) return nullptr;  // the version was not known before reading
  {
    MutexLock lock(state_mutex);
    if (lifecycle) lifecycle->begin_load(entry->version);
  }
  attempt.loading = true;

  // Second half: the interface checks, validation and the checked warm-up at every pipeline batch size.
  options.version = entry->version;
  if (opened_onnx) {
    internal::LoadedOnnx checked = internal::finish_onnx(std::move(*opened_onnx), source, options);
    entry->model = std::move(checked.model);
    entry->load_ns = open_ns + checked.check_ns;
    entry->warmup_ns = checked.warmup_ns;
  } else {
    internal::LoadedCheckpoint checked =
        internal::finish_checkpoint(std::move(*opened), source, options, /*keep_architecture=*/true);
    entry->torch_model = checked.model;
    entry->model = checked.model;
    entry->architecture = std::move(checked.architecture);
    entry->load_ns = checked.timings.read_ns + checked.timings.check_ns;
    entry->warmup_ns = checked.timings.warmup_ns;
  }
  entry->loaded_ns = now_ns();
  load_time.record(entry->load_ns);
  warmup_time.record(entry->warmup_ns);

  if (internal::identity_now(file.target) != std::optional<FileIdentity>(file.identity)) {
    skip = Skip{"changed while it was loading; its next event loads it again", LogLevel::kInfo};
    return nullptr;
  }
  return entry;
}

LoadOutcome ModelRegistry::Impl::refuse(const Request& request, const Attempt& attempt, ErrorCode code,
                                        const std::string& message) {
  {
    MutexLock lock(refused_mutex);
    ++refused[code];
  }
  if (attempt.read) load_time.record(now_ns() - attempt.read_start_ns);  // refused after the file was read
  if (attempt.loading && attempt.version) {
    MutexLock lock(state_mutex);
    lifecycle->refuse(*attempt.version);
  }
  LoadOutcome outcome;
  outcome.status = LoadOutcome::Status::kRefused;
  outcome.version = attempt.version.value_or(0);
  outcome.error = code;
  outcome.message = message;
  log(code == ErrorCode::kInternal ? LogLevel::kError : LogLevel::kWarning,
      "refused (" + std::string(to_string(code)) + "): " + message, request.path, code, attempt.version);
  return outcome;
}

// A file that fails the way a partly written one does, and is still changing (or changed within settle_time),
// goes back to the queue for after it settles: quiet, not counted refused.
bool ModelRegistry::Impl::defer_if_unsettled(Request& request, const Attempt& attempt, const Error& e) {
  if (!partial_write_symptom(e.code()) || request.retries >= kMaxSettleRetries) return false;
  const auto now = internal::identity_now(request.path);
  const auto settle_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(config.settle_time).count();
  const bool changed = !now || !attempt.identity || *now != *attempt.identity;
  const bool recent = now && wall_ns() - now->mtime_ns < settle_ns;
  if (!changed && !recent) return false;
  if (attempt.loading && attempt.version) {
    MutexLock lock(state_mutex);
    lifecycle->abandon(*attempt.version);
  }
  ++request.retries;
  request.not_before_ns = now_ns() + settle_ns;
  log(LogLevel::kDebug,
      request.path.string() + ": looks partly written (" + e.what() + "); retrying once it has not changed for " +
          millis(settle_ns),
      request.path, std::nullopt, attempt.version);
  {
    MutexLock lock(queue_mutex);
    deferred.push_back(request);
  }
  queue_cv.notify_one();
  return true;
}

LoadOutcome ModelRegistry::Impl::process(Request& request, bool& deferred_now) {
  // Like the CPU runner's workers: take the process-wide intra-op thread count (make_cpu_backend sets it, maybe
  // after this thread started), so freezing and warm-up do not fan out over every core next to the workers.
  at::init_num_threads();
  const std::string source = request.path.string();
  LoadOutcome outcome;
  Attempt attempt;
  const auto ignore = [&](const std::string& reason, LogLevel level) {
    ignored.add();
    outcome.status = LoadOutcome::Status::kIgnored;
    outcome.version = attempt.version.value_or(0);
    outcome.message = source + ": ignored: " + reason;
    log(level, outcome.message, request.path, std::nullopt, attempt.version);
    return outcome;
  };
  // Every path below catches: nothing a file or an API call does may end the loader thread.
  try {
    if (config.version_source == VersionSource::kFileName && !request.name_version) {
      internal::check_file_safety(request.path, file_options());
      return ignore("no version in the file name (pattern '" + config.version_pattern + "')", LogLevel::kInfo);
    }
    std::optional<Skip> skip;
    std::shared_ptr<Entry> entry;
    try {
      entry = load_entry(request, attempt, skip);
    } catch (const Error& e) {
      if (defer_if_unsettled(request, attempt, e)) {
        deferred_now = true;
        return outcome;
      }
      throw;
    }
    if (!entry) {
      if (attempt.loading && attempt.version) {
        MutexLock lock(state_mutex);
        lifecycle->abandon(*attempt.version);
      }
      return ignore(skip ? skip->reason : "not wanted", skip ? skip->level : LogLevel::kInfo);
    }
    loaded.add();
    if (entry->model->engine() != "native") libtorch_loaded.add();
    internal::loader_fault_point("decide");
    outcome.version = entry->version;
    const std::string what = entry->source + " (version " + std::to_string(entry->version) + ", " +
                             to_string(entry->kind) + ", engine " + entry->model->engine() + ", load " +
                             millis(entry->load_ns) + ", warm-up " + millis(entry->warmup_ns) + ")" +
                             (entry->model->engine_note().empty() ? "" : "; " + entry->model->engine_note());
    internal::Lifecycle::Placement placement;
    {
      MutexLock lock(state_mutex);
      placement = lifecycle->place(entry, request.forced);
    }
    outcome.status = placement.status;
    switch (placement.status) {
      case LoadOutcome::Status::kPublished:
        outcome.message = "published " + what;
        if (placement.restart) outcome.message += " as a restarted run's version (versions start again from it)";
        log(placement.restart ? LogLevel::kWarning : LogLevel::kInfo, outcome.message, request.path, std::nullopt,
            outcome.version);
        return outcome;
      case LoadOutcome::Status::kRetained:
        outcome.message = "loaded " + what + "; still serving " + std::to_string(placement.served);
        log(LogLevel::kInfo, outcome.message, request.path, std::nullopt, outcome.version);
        return outcome;
      case LoadOutcome::Status::kIgnored:
      case LoadOutcome::Status::kRefused:
        break;
    }
    ignored.add();
    outcome.status = LoadOutcome::Status::kIgnored;
    outcome.message = what + ": valid, but not newer than the served version";
    log(LogLevel::kInfo, outcome.message, request.path, std::nullopt, outcome.version);
    return outcome;
  } catch (const Error& e) {
    return refuse(request, attempt, e.code(), e.what());
  } catch (const std::exception& e) {
    if (internal::is_torch_error(e)) {  // LibTorch threw outside a check that names its step
      return refuse(request, attempt, ErrorCode::kModelError, source + ": " + internal::torch_error_line(e));
    }
    return refuse(request, attempt, ErrorCode::kInternal, source + ": unexpected exception: " + e.what());
  } catch (...) {
    return refuse(request, attempt, ErrorCode::kInternal, source + ": unexpected exception of unknown type");
  }
}

LoadOutcome ModelRegistry::Impl::submit_and_wait(const fs::path& path) {
  auto done = std::make_shared<std::promise<LoadOutcome>>();
  auto future = done->get_future();
  {
    MutexLock lock(queue_mutex);
    if (stopping) {
      LoadOutcome outcome;
      outcome.message = path.string() + ": ignored: the registry is shutting down";
      return outcome;
    }
    Request request;
    request.path = path;
    request.forced = true;
    request.name_version = version_from_name(path);
    request.done = std::move(done);
    queue.push_back(std::move(request));
  }
  queue_cv.notify_one();
  return future.get();
}

// Waits for offers (or a deferred retry falling due) and moves them into `batch`; empty when stopping.
void ModelRegistry::Impl::take_work(std::deque<Request>& batch) {
  MutexLock lock(queue_mutex);
  for (;;) {
    if (stopping) return;
    const std::int64_t now = now_ns();
    std::int64_t next = 0;
    for (auto it = deferred.begin(); it != deferred.end();) {
      // A fresh report of the same file supersedes its deferred retry (a blocking caller's stays).
      const bool superseded =
          !it->done && std::any_of(queue.begin(), queue.end(), [&](const Request& r) { return r.path == it->path; });
      if (superseded) {
        it = deferred.erase(it);
      } else if (it->not_before_ns <= now) {
        batch.push_back(std::move(*it));
        it = deferred.erase(it);
      } else {
        next = next == 0 ? it->not_before_ns : std::min(next, it->not_before_ns);
        ++it;
      }
    }
    for (auto& request : queue) batch.push_back(std::move(request));
    queue.clear();
    if (!batch.empty()) return;
    if (next == 0) {
      queue_cv.wait(lock.native());
    } else {
      queue_cv.wait_for(lock.native(), std::chrono::nanoseconds(next - now));
    }
  }
}

void ModelRegistry::Impl::loader_main() {
  if (config.loader_priority == LoaderPriority::kLow) {
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value only.
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19) != 0) {
      log(LogLevel::kWarning, std::string("cannot lower the loader thread's priority: ") + std::strerror(errno));
    }
  } else if (config.loader_priority == LoaderPriority::kBackground) {
    sched_param param{};
    if (const int rc = ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &param); rc != 0) {
      log(LogLevel::kWarning, std::string("cannot make the loader thread SCHED_IDLE: ") + std::strerror(rc));
    }
  }
  for (;;) {
    std::deque<Request> batch;
    try {
      take_work(batch);
      if (batch.empty()) return;  // stopping: the destructor answers what is left
      // Newest file-name version first: of a backlog, the first good file publishes and the older ones are
      // then skipped after their safety checks. Blocking requests keep their place among equals.
      std::stable_sort(batch.begin(), batch.end(), [](const Request& a, const Request& b) {
        return a.name_version.has_value() && (!b.name_version || *a.name_version > *b.name_version);
      });
    } catch (...) {
      // Only allocation can fail here; the requests taken are answered below with an ignored outcome.
      log(LogLevel::kError, "loader: cannot take work; dropping " + std::to_string(batch.size()) + " request(s)");
    }
    for (auto& request : batch) {
      // Acquire pairs with the release store in ~ModelRegistry: stop between files of a backlog.
      if (stop_flag.load(std::memory_order_acquire)) {
        if (request.done) request.done->set_value(LoadOutcome{});
        continue;
      }
      bool deferred_now = false;
      LoadOutcome outcome = process(request, deferred_now);  // never throws (it catches everything)
      if (request.done && !deferred_now) {
        try {
          request.done->set_value(std::move(outcome));
        } catch (...) {
          // Already answered: nothing else to do.
        }
      }
    }
  }
}

// ---- ModelRegistry ----

std::unique_ptr<ModelRegistry> ModelRegistry::create(RegistryConfig config, const fs::path& initial) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->version_regex = std::regex(config.version_pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error(ErrorCode::kInvalidConfig,
                "registry: version_pattern '" + config.version_pattern + "' is not a regex: " + e.what());
  }
  if (impl->version_regex.mark_count() < 1) {
    throw Error(ErrorCode::kInvalidConfig,
                "registry: version_pattern '" + config.version_pattern + "' needs a group for the version");
  }
  if (config.settle_time.count() < 0) throw Error(ErrorCode::kInvalidConfig, "registry: settle_time must be >= 0");
  impl->config = std::move(config);
  Impl* raw = impl.get();
  {
    MutexLock lock(impl->state_mutex);
    impl->lifecycle =
        std::make_unique<internal::Lifecycle>(impl->config.accept_version_restart, impl->config.pinned_version,
                                              [raw](const internal::Lifecycle::EntryPtr& entry, bool first) {
                                                raw->slot->publish(entry->model);
                                                // Relaxed: a gauge for metrics; the slot's publish is what orders the
                                                // model for workers.
                                                raw->current_version.store(entry->version, std::memory_order_relaxed);
                                                if (!first) raw->swaps.add();
                                              });
  }

  Request request;
  request.path = initial;
  request.forced = true;
  request.initial = true;
  request.name_version = impl->version_from_name(initial);
  Impl::Attempt attempt;
  std::optional<Impl::Skip> skip;
  std::shared_ptr<Entry> entry = impl->load_entry(request, attempt, skip);
  if (!entry) throw Error(ErrorCode::kFileNotFound, initial.string() + ": " + (skip ? skip->reason : "not loaded"));
  if (entry->kind == CheckpointKind::kWeights) {
    throw Error(ErrorCode::kUnsupported, initial.string() +
                                             ": the initial checkpoint must be a TorchScript archive or an ONNX "
                                             "model (a weights-only file needs an architecture to apply onto)");
  }
  // Every later version must fit the pipeline this model sizes.
  LoadOptions& load = impl->config.load;
  if (load.expected_input_width == 0) load.expected_input_width = entry->model->input_width();
  if (load.expected_schema_hash.empty()) load.expected_schema_hash = entry->model->metadata().feature_schema_hash;
  impl->loaded.add();
  if (entry->model->engine() != "native") impl->libtorch_loaded.add();
  {
    MutexLock lock(impl->state_mutex);
    impl->lifecycle->place_initial(entry);
  }
  impl->log(LogLevel::kInfo, "serving " + entry->source + " (version " + std::to_string(entry->version) + ")", initial,
            std::nullopt, entry->version);
  impl->loader = std::thread([raw] { raw->loader_main(); });
  return std::unique_ptr<ModelRegistry>(new ModelRegistry(std::move(impl)));
}

ModelRegistry::ModelRegistry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ModelRegistry::~ModelRegistry() {
  std::deque<Request> left;
  std::vector<Request> deferred;
  {
    MutexLock lock(impl_->queue_mutex);
    impl_->stopping = true;
    left.swap(impl_->queue);
    deferred.swap(impl_->deferred);
  }
  // Release pairs with the acquire load in loader_main().
  impl_->stop_flag.store(true, std::memory_order_release);
  impl_->queue_cv.notify_all();
  impl_->loader.join();
  {
    MutexLock lock(impl_->queue_mutex);
    for (auto& request : impl_->deferred) deferred.push_back(std::move(request));  // deferred while stopping
  }
  for (auto& request : left) {
    if (request.done) request.done->set_value(LoadOutcome{});
  }
  for (auto& request : deferred) {
    if (request.done) request.done->set_value(LoadOutcome{});
  }
}

std::shared_ptr<ModelSlot> ModelRegistry::slot() const noexcept { return impl_->slot; }

void ModelRegistry::offer(const fs::path& path) {
  Request request;
  request.path = path;
  request.name_version = impl_->version_from_name(path);
  {
    MutexLock lock(impl_->queue_mutex);
    if (impl_->stopping) return;
    impl_->queue.push_back(std::move(request));
  }
  impl_->queue_cv.notify_one();
}

LoadOutcome ModelRegistry::load(const fs::path& path) { return impl_->submit_and_wait(path); }

LoadOutcome ModelRegistry::reload(std::optional<std::uint64_t> version) {
  std::optional<std::string> path;
  std::uint64_t wanted = 0;
  {
    MutexLock lock(impl_->state_mutex);
    wanted = version.value_or(impl_->lifecycle->current()->version);
    path = impl_->lifecycle->file_of(wanted);
  }
  if (!path) throw Error(ErrorCode::kInvalidConfig, "registry: no file is known for version " + std::to_string(wanted));
  return impl_->submit_and_wait(*path);
}

std::shared_ptr<const Model> ModelRegistry::current() const { return impl_->slot->current(); }

std::uint64_t ModelRegistry::current_version() const {
  MutexLock lock(impl_->state_mutex);
  return impl_->lifecycle->current()->version;
}

std::vector<VersionInfo> ModelRegistry::versions() const {
  MutexLock lock(impl_->state_mutex);
  return impl_->lifecycle->versions();
}

std::optional<std::uint64_t> ModelRegistry::pinned() const {
  MutexLock lock(impl_->state_mutex);
  return impl_->lifecycle->pinned();
}

bool ModelRegistry::pin(std::uint64_t version) {
  std::string path;
  bool served = false;
  {
    MutexLock lock(impl_->state_mutex);
    served = impl_->lifecycle->pin(version, path);
  }
  const std::string what = "pinned version " + std::to_string(version);
  if (served) {
    impl_->log(LogLevel::kInfo, what + "; serving it", {}, std::nullopt, version);
    return true;
  }
  if (path.empty()) {
    impl_->log(LogLevel::kInfo, what + "; serving it when its file arrives", {}, std::nullopt, version);
    return false;
  }
  impl_->log(LogLevel::kInfo, what + "; loading " + path + " again", path, std::nullopt, version);
  impl_->submit_and_wait(path);
  return current_version() == version;
}

std::uint64_t ModelRegistry::unpin() {
  std::uint64_t served = 0;
  {
    MutexLock lock(impl_->state_mutex);
    served = impl_->lifecycle->unpin();
  }
  impl_->log(LogLevel::kInfo, "unpinned; serving the latest version " + std::to_string(served), {}, std::nullopt,
             served);
  return served;
}

std::uint64_t ModelRegistry::rollback() {
  std::pair<std::uint64_t, std::uint64_t> from_to;
  {
    MutexLock lock(impl_->state_mutex);
    from_to = impl_->lifecycle->rollback();
  }
  impl_->rollbacks.add();
  impl_->log(LogLevel::kWarning,
             "rolled back from version " + std::to_string(from_to.first) + " to " + std::to_string(from_to.second) +
                 " (pinned; unpin() resumes the latest)",
             {}, std::nullopt, from_to.second);
  return from_to.second;
}

void ModelRegistry::reset_versions() {
  std::uint64_t served = 0;
  {
    MutexLock lock(impl_->state_mutex);
    impl_->lifecycle->reset_versions();
    served = impl_->lifecycle->current()->version;
  }
  impl_->log(LogLevel::kWarning,
             "versions reset: the next checkpoint that passes every check is served whatever its version (serving " +
                 std::to_string(served) + ")",
             {}, std::nullopt, served);
}

RegistryMetricsSnapshot ModelRegistry::metrics() const {
  RegistryMetricsSnapshot s;
  s.swaps = impl_->swaps.load();
  s.loaded = impl_->loaded.load();
  s.loaded_on_libtorch = impl_->libtorch_loaded.load();
  s.ignored = impl_->ignored.load();
  s.rollbacks = impl_->rollbacks.load();
  {
    MutexLock lock(impl_->refused_mutex);
    s.refused = impl_->refused;
  }
  s.load = impl_->load_time.snapshot();
  s.warm_up = impl_->warmup_time.snapshot();
  // Relaxed: a gauge (see the publish callback in create()).
  s.current_version = impl_->current_version.load(std::memory_order_relaxed);
  s.pinned_version = pinned();
  return s;
}

}  // namespace tickinfer
