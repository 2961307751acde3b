// The hot-swap registry: a loader thread checks, loads, validates and warms up checkpoints, then publishes
// them into the ModelSlot the pipeline's workers read.

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
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <iostream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>
#include <utility>

#include "core/prometheus.hpp"
#include "model/torch_model.hpp"
#include "model/weights.hpp"
#include "tickinfer/clock.hpp"
#include "tickinfer/metrics.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;

// Same count as load_torchscript's warm-up: the profiling executor specialises over its first runs.
constexpr int kWarmupRuns = 3;
// Versions whose file is remembered for pin() after they left memory.
constexpr std::size_t kKnownFilesLimit = 1024;
constexpr std::size_t kSidecarMaxBytes = 4096;

// Codes a refusal can carry; rendered even at zero so Prometheus series do not appear and vanish.
constexpr ErrorCode kRefusalCodes[] = {
    ErrorCode::kFileNotFound,     ErrorCode::kNotTorchScript,    ErrorCode::kTruncatedArchive,
    ErrorCode::kMissingMetadata,  ErrorCode::kMalformedMetadata, ErrorCode::kWidthMismatch,
    ErrorCode::kSchemaMismatch,   ErrorCode::kGoldenMismatch,    ErrorCode::kNonFiniteOutput,
    ErrorCode::kModelError,       ErrorCode::kUnsupported,       ErrorCode::kUnsafeFile,
    ErrorCode::kChecksumMismatch, ErrorCode::kWeightsMismatch,
};

struct Entry {
  std::uint64_t version = 0;
  CheckpointKind kind = CheckpointKind::kTorchScript;
  std::string source;
  std::shared_ptr<const internal::TorchModel> model;  // frozen and optimised: what workers run
  internal::TorchArchive architecture;                // unfrozen copy: the base for weights-only files
  std::int64_t loaded_ns = 0;
  std::int64_t load_ns = 0, warmup_ns = 0;  // how long reading + validating and warming up took
};

struct Request {
  fs::path path;
  bool forced = false;                              // load even if that version is loaded or not newer
  bool initial = false;                             // create()'s file: its name need not carry a version
  std::optional<std::uint64_t> name_version;        // from the file name, for ordering a backlog
  std::shared_ptr<std::promise<LoadOutcome>> done;  // set for blocking callers
};

// Which file a check refers to, to notice a file replaced or rewritten while it was being loaded.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

FileIdentity identity_of(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size,
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string errno_text(int error) { return std::strerror(error); }

std::string octal_mode(mode_t mode) {
  std::ostringstream out;
  out << '0' << std::oct << (mode & 07777);
  return out.str();
}

bool is_within(const fs::path& target, const fs::path& directory) {
  auto t = target.begin();
  for (auto d = directory.begin(); d != directory.end(); ++d, ++t) {
    if (t == target.end() || *t != *d) return false;
  }
  return t != target.end();
}

// World-writable or foreign-owned: anyone else could have swapped the model.
void check_owner_and_mode(const struct stat& st, const std::string& what) {
  if ((st.st_mode & S_IWOTH) != 0) {
    throw Error(ErrorCode::kUnsafeFile, what + ": world-writable (mode " + octal_mode(st.st_mode) + ")");
  }
  if (st.st_uid != ::geteuid()) {
    throw Error(ErrorCode::kUnsafeFile, what + ": owned by uid " + std::to_string(st.st_uid) +
                                            ", this process runs as uid " + std::to_string(::geteuid()));
  }
}

std::string sha256_hex(int fd, const std::string& source) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorCode::kUnsupported, source + ": OpenSSL cannot compute SHA-256");
  }
  std::vector<unsigned char> buffer(1 << 16);
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::kFileNotFound, source + ": read failed: " + errno_text(errno));
    if (n == 0) break;
    if (EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(n)) != 1) {
      throw Error(ErrorCode::kUnsupported, source + ": OpenSSL SHA-256 update failed");
    }
    offset += n;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    throw Error(ErrorCode::kUnsupported, source + ": OpenSSL SHA-256 final failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

std::string lower(std::string text) {
  for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}

const char* level_name(LogLevel level) {
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
  return "?";
}

std::string millis(std::int64_t ns) {
  std::ostringstream out;
  out.precision(3);
  out << std::fixed << static_cast<double>(ns) * 1e-6 << " ms";
  return out.str();
}

void warm_up(const internal::TorchModel& model, const std::vector<std::size_t>& batch_sizes) {
  const auto& golden = model.metadata().golden_inputs;
  const std::size_t width = model.input_width();
  for (const std::size_t batch : batch_sizes) {
    if (batch == 0) continue;
    auto input = torch::zeros({static_cast<std::int64_t>(batch), static_cast<std::int64_t>(width)}, torch::kFloat);
    float* data = input.data_ptr<float>();
    for (std::size_t r = 0; r < batch && !golden.empty(); ++r) {
      std::copy_n(golden[r % golden.size()].data(), width, data + r * width);
    }
    const auto on_device = input.to(model.device());
    try {
      for (int i = 0; i < kWarmupRuns; ++i) (void)model.forward(on_device);
    } catch (const std::exception& e) {
      const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
      const std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
      throw Error(ErrorCode::kModelError, model.source() + ": forward failed during warm-up at batch size " +
                                              std::to_string(batch) + ": " + text.substr(0, text.find('\n')));
    }
  }
}

}  // namespace

// ---- public helpers ----

std::vector<std::size_t> pipeline_batch_sizes(const PipelineConfig& config) {
  const auto& allowed = config.allowed_batch_sizes;
  if (!allowed.empty() && (allowed.back() < config.max_batch || !std::is_sorted(allowed.begin(), allowed.end()))) {
    throw Error(ErrorCode::kInvalidConfig, "pipeline_batch_sizes: allowed_batch_sizes must be sorted and reach " +
                                               std::string("max_batch (") + std::to_string(config.max_batch) + ")");
  }
  std::vector<std::size_t> sizes;
  for (std::size_t n = 1; n <= config.max_batch; ++n) {
    const std::size_t rows = allowed.empty() ? n : *std::lower_bound(allowed.begin(), allowed.end(), n);
    if (sizes.empty() || sizes.back() != rows) sizes.push_back(rows);
  }
  return sizes;
}

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
  mutable std::mutex state_mutex;
  std::shared_ptr<const Entry> current;           // guarded by state_mutex
  std::shared_ptr<const Entry> previous;          // guarded by state_mutex; the rollback target
  std::shared_ptr<const Entry> candidate;         // guarded by state_mutex; newest loaded while pinned
  std::optional<std::uint64_t> pinned;            // guarded by state_mutex
  std::uint64_t newest = 0;                       // guarded by state_mutex; highest version loaded
  std::map<std::uint64_t, fs::path> known_files;  // guarded by state_mutex; for pin() after eviction

  // Loader queue.
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<Request> queue;           // guarded by queue_mutex
  bool stopping = false;               // guarded by queue_mutex
  std::atomic<bool> stop_flag{false};  // lets a backlog stop between files without the queue mutex
  std::thread loader;

  // Metrics.
  Counter swaps, loaded, ignored, rollbacks;
  mutable std::mutex refused_mutex;
  std::map<ErrorCode, std::uint64_t> refused;  // guarded by refused_mutex
  LatencyHistogram load_time, warmup_time;
  std::atomic<std::uint64_t> current_version{0};

  void log(LogLevel level, const std::string& message, const fs::path& path = {},
           std::optional<ErrorCode> error = std::nullopt, std::uint64_t version = 0) const;
  std::optional<std::uint64_t> version_from_name(const fs::path& path) const;
  struct Skip {
    std::string reason;
    LogLevel level;  // debug for duplicates (a watcher may report a file twice), info otherwise
  };
  std::optional<Skip> not_wanted(std::uint64_t version) const;  // call with state_mutex held
  std::pair<fs::path, FileIdentity> check_file(const fs::path& path) const;
  void check_sidecar(const fs::path& path, int fd, const std::string& source) const;
  std::shared_ptr<Entry> load_entry(const Request& request, std::string& skipped);
  LoadOutcome process(const Request& request);
  LoadOutcome decide(std::shared_ptr<const Entry> entry, bool forced);
  void publish(std::shared_ptr<const Entry> entry);  // call with state_mutex held
  LoadOutcome submit_and_wait(const fs::path& path);
  void loader_main();
};

void ModelRegistry::Impl::log(LogLevel level, const std::string& message, const fs::path& path,
                              std::optional<ErrorCode> error, std::uint64_t version) const {
  if (!config.log) {
    if (level != LogLevel::kDebug) std::cerr << "tickinfer registry [" << level_name(level) << "]: " << message << '\n';
    return;
  }
  try {
    config.log(LogRecord{level, message, path, error, version});
  } catch (...) {
    // A failing sink must not take the loader thread down.
  }
}

std::optional<std::uint64_t> ModelRegistry::Impl::version_from_name(const fs::path& path) const {
  const std::string name = path.filename().string();
  std::smatch match;
  if (!std::regex_search(name, match, version_regex) || match.size() < 2 || !match[1].matched) return std::nullopt;
  const std::string digits = match[1].str();
  std::uint64_t version = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return version;
}

std::optional<ModelRegistry::Impl::Skip> ModelRegistry::Impl::not_wanted(std::uint64_t version) const {
  for (const auto* entry : {&current, &previous, &candidate}) {
    if (*entry && (*entry)->version == version) {
      return Skip{"version " + std::to_string(version) + " is already loaded", LogLevel::kDebug};
    }
  }
  if (pinned) {
    if (version == *pinned || version > newest) return std::nullopt;
    return Skip{"version " + std::to_string(version) + " is not newer than " + std::to_string(newest) + " (pinned to " +
                    std::to_string(*pinned) + ")",
                LogLevel::kInfo};
  }
  if (current && version <= current->version) {
    return Skip{"version " + std::to_string(version) + " is not newer than the served version " +
                    std::to_string(current->version),
                LogLevel::kInfo};
  }
  return std::nullopt;
}

std::pair<fs::path, FileIdentity> ModelRegistry::Impl::check_file(const fs::path& path) const {
  const std::string source = path.string();
  struct stat link_stat {};
  if (::lstat(path.c_str(), &link_stat) != 0) {
    throw Error(ErrorCode::kFileNotFound, source + ": " + errno_text(errno));
  }
  fs::path target = path;
  if (S_ISLNK(link_stat.st_mode)) {
    std::error_code ec;
    target = fs::canonical(path, ec);
    if (ec) throw Error(ErrorCode::kFileNotFound, source + ": dangling symlink (" + ec.message() + ")");
    if (config.check_file_safety) {
      const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
      const fs::path directory = fs::canonical(parent, ec);
      if (ec || !is_within(target, directory)) {
        throw Error(ErrorCode::kUnsafeFile, source + ": symlink to " + target.string() + " leaves the directory " +
                                                (ec ? parent.string() : directory.string()));
      }
    }
  }
  // O_NONBLOCK: opening a FIFO must not hang the loader; O_NOFOLLOW: the target was resolved above.
  const Fd fd(::open(target.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW));
  if (fd.get() < 0) throw Error(ErrorCode::kFileNotFound, source + ": cannot open: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error(ErrorCode::kFileNotFound, source + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::kUnsafeFile, source + ": not a regular file");
  if (config.check_file_safety) check_owner_and_mode(st, source);
  check_sidecar(path, fd.get(), source);
  return {target, identity_of(st)};
}

void ModelRegistry::Impl::check_sidecar(const fs::path& path, int fd, const std::string& source) const {
  if (config.checksum == ChecksumPolicy::kIgnore) return;
  fs::path sidecar = path;
  sidecar += ".sha256";
  const std::string sidecar_name = sidecar.string();
  struct stat link_stat {};
  if (::lstat(sidecar.c_str(), &link_stat) != 0) {
    if (config.checksum == ChecksumPolicy::kRequire) {
      throw Error(ErrorCode::kChecksumMismatch, source + ": no sidecar " + sidecar_name + " (checksums are required)");
    }
    return;
  }
  if (!S_ISREG(link_stat.st_mode)) {
    throw Error(ErrorCode::kUnsafeFile, source + ": sidecar " + sidecar_name + " is not a regular file");
  }
  const Fd sidecar_fd(::open(sidecar.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW));
  struct stat st {};
  if (sidecar_fd.get() < 0 || ::fstat(sidecar_fd.get(), &st) != 0) {
    throw Error(ErrorCode::kChecksumMismatch,
                source + ": cannot read sidecar " + sidecar_name + ": " + errno_text(errno));
  }
  if (config.check_file_safety) check_owner_and_mode(st, "sidecar " + sidecar_name);
  std::string text(kSidecarMaxBytes, '\0');
  const ssize_t n = ::pread(sidecar_fd.get(), text.data(), text.size(), 0);
  if (n < 0) throw Error(ErrorCode::kChecksumMismatch, source + ": cannot read sidecar " + sidecar_name);
  text.resize(static_cast<std::size_t>(n));

  // sha256sum format: "<64 hex>  <name>" (text mode) or "<64 hex> *<name>" (binary mode); a bare hash is accepted.
  std::istringstream line(text.substr(0, text.find('\n')));
  std::string expected, named;
  line >> expected;
  std::getline(line >> std::ws, named);
  if (!named.empty() && named.front() == '*') named.erase(0, 1);
  while (!named.empty() && (named.back() == '\r' || named.back() == ' ')) named.pop_back();
  expected = lower(expected);
  if (expected.size() != 64 || expected.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw Error(ErrorCode::kChecksumMismatch, source + ": sidecar " + sidecar_name + " is not in sha256sum format");
  }
  if (!named.empty() && fs::path(named).filename() != path.filename()) {
    throw Error(ErrorCode::kChecksumMismatch, source + ": sidecar " + sidecar_name + " is for '" + named + "'");
  }
  const std::string actual = sha256_hex(fd, source);
  if (actual != expected) {
    throw Error(ErrorCode::kChecksumMismatch, source + ": SHA-256 is " + actual + ", the sidecar says " + expected);
  }
}

// Throws Error when the file is refused; returns null with `skipped` set when it is not wanted.
std::shared_ptr<Entry> ModelRegistry::Impl::load_entry(const Request& request, std::string& skipped) {
  const std::string source = request.path.string();
  const auto [target, identity] = check_file(request.path);
  const std::int64_t load_start = now_ns();
  const c10::Device device = internal::parse_device(config.load.device);

  auto entry = std::make_shared<Entry>();
  entry->source = source;
  internal::TorchArchive archive;
  try {
    if (internal::checkpoint_format(target) == internal::CheckpointFormat::kTorchScript) {
      archive = internal::open_torchscript(target, device);
    } else {
      entry->kind = CheckpointKind::kWeights;
      std::shared_ptr<const Entry> base;
      {
        std::lock_guard lock(state_mutex);
        base = current;
      }
      if (!base) {
        throw Error(ErrorCode::kUnsupported,
                    source + ": a weights-only checkpoint needs a served TorchScript model to apply onto");
      }
      archive = internal::apply_weights(base->architecture, internal::read_weights(target), source);
    }
  } catch (const Error&) {
    load_time.record(now_ns() - load_start);
    throw;
  }

  const bool by_name = config.version_source == VersionSource::kFileName && request.name_version;
  if (by_name) {
    entry->version = *request.name_version;
  } else if (entry->kind == CheckpointKind::kTorchScript) {  // kMetadata, or the initial file
    entry->version = archive.metadata.version;
  } else if (request.name_version) {
    entry->version = *request.name_version;
  } else {
    throw Error(ErrorCode::kMalformedMetadata,
                source + ": a weights-only checkpoint carries no version; its file name must match '" +
                    config.version_pattern + "'");
  }
  if (!request.forced && !by_name) {  // process() could not check the version before loading
    std::lock_guard lock(state_mutex);
    if (auto skip = not_wanted(entry->version)) {
      skipped = skip->reason;
      return nullptr;
    }
  }

  LoadOptions options = config.load;
  options.version = entry->version;
  options.warmup_batch_sizes.clear();  // warmed up below, timed on its own
  // finish_torch_model freezes what it is given; keep an unfrozen copy for later weights-only files.
  entry->architecture = internal::TorchArchive{archive.module.clone(), archive.device, archive.metadata};
  try {
    entry->model = internal::finish_torch_model(std::move(archive), source, options);
  } catch (const Error&) {
    load_time.record(now_ns() - load_start);
    throw;
  }
  const std::int64_t warmup_start = now_ns();
  entry->load_ns = warmup_start - load_start;
  load_time.record(entry->load_ns);
  warm_up(*entry->model, config.load.warmup_batch_sizes);
  entry->loaded_ns = now_ns();
  entry->warmup_ns = entry->loaded_ns - warmup_start;
  warmup_time.record(entry->warmup_ns);

  struct stat st {};
  if (::stat(target.c_str(), &st) != 0 || !(identity_of(st) == identity)) {
    skipped = "changed while it was loading; its next event loads it again";
    return nullptr;
  }
  return entry;
}

LoadOutcome ModelRegistry::Impl::process(const Request& request) {
  // Like the CPU runner's workers: take the process-wide intra-op thread count (make_cpu_backend sets it, maybe
  // after this thread started), so freezing and warm-up do not fan out over every core next to the workers.
  at::init_num_threads();
  const std::string source = request.path.string();
  LoadOutcome outcome;
  const auto ignore = [&](const std::string& reason, LogLevel level) {
    ignored.add();
    outcome.status = LoadOutcome::Status::kIgnored;
    outcome.message = source + ": ignored: " + reason;
    log(level, outcome.message, request.path, std::nullopt, outcome.version);
    return outcome;
  };
  if (config.version_source == VersionSource::kFileName && !request.name_version) {
    return ignore("no version in the file name (pattern '" + config.version_pattern + "')", LogLevel::kInfo);
  }
  if (config.version_source == VersionSource::kFileName) {
    outcome.version = *request.name_version;
    if (!request.forced) {
      std::optional<Skip> skip;
      {
        std::lock_guard lock(state_mutex);
        skip = not_wanted(*request.name_version);
      }
      if (skip) return ignore(skip->reason, skip->level);
    }
  }
  std::shared_ptr<Entry> entry;
  std::string skipped;
  try {
    entry = load_entry(request, skipped);
  } catch (const Error& e) {
    {
      std::lock_guard lock(refused_mutex);
      ++refused[e.code()];
    }
    outcome.status = LoadOutcome::Status::kRefused;
    outcome.error = e.code();
    outcome.message = e.what();
    log(LogLevel::kWarning, "refused (" + std::string(to_string(e.code())) + "): " + outcome.message, request.path,
        e.code(), outcome.version);
    return outcome;
  } catch (const std::exception& e) {
    {
      std::lock_guard lock(refused_mutex);
      ++refused[ErrorCode::kModelError];
    }
    outcome.status = LoadOutcome::Status::kRefused;
    outcome.error = ErrorCode::kModelError;
    outcome.message = source + ": " + e.what();
    log(LogLevel::kWarning, "refused (model_error): " + outcome.message, request.path, ErrorCode::kModelError,
        outcome.version);
    return outcome;
  }
  if (!entry) return ignore(skipped, LogLevel::kInfo);
  loaded.add();
  return decide(std::move(entry), request.forced);
}

void ModelRegistry::Impl::publish(std::shared_ptr<const Entry> entry) {
  // A reload of the served version replaces it in place; anything else makes the served one the rollback target.
  if (current && current->version != entry->version) previous = current;
  if (candidate && candidate->version <= entry->version) candidate.reset();
  const bool first = current == nullptr;
  current = std::move(entry);
  slot->publish(current->model);
  // Relaxed: a gauge for metrics; the slot's publish is what orders the model for workers.
  current_version.store(current->version, std::memory_order_relaxed);
  newest = std::max(newest, current->version);
  if (!first) swaps.add();
}

LoadOutcome ModelRegistry::Impl::decide(std::shared_ptr<const Entry> entry, bool forced) {
  LoadOutcome outcome;
  outcome.version = entry->version;
  const fs::path path = entry->source;
  const std::string what = entry->source + " (version " + std::to_string(entry->version) + ", " +
                           (entry->kind == CheckpointKind::kWeights ? "weights" : "torchscript") + ", load " +
                           millis(entry->load_ns) + ", warm-up " + millis(entry->warmup_ns) + ")";
  std::unique_lock lock(state_mutex);
  known_files[entry->version] = entry->source;
  if (known_files.size() > kKnownFilesLimit) known_files.erase(known_files.begin());
  const bool is_pinned = pinned && *pinned == entry->version;
  const bool replaces_current = current && current->version == entry->version;
  if (is_pinned || (!pinned && (!current || entry->version > current->version)) || (forced && replaces_current)) {
    publish(entry);
    outcome.status = LoadOutcome::Status::kPublished;
  } else if (forced && previous && previous->version == entry->version) {
    previous = std::move(entry);
    outcome.status = LoadOutcome::Status::kRetained;
  } else if ((pinned && entry->version > newest) || (forced && candidate && candidate->version == entry->version)) {
    newest = std::max(newest, entry->version);
    candidate = std::move(entry);
    outcome.status = LoadOutcome::Status::kRetained;
  } else {
    lock.unlock();
    ignored.add();
    outcome.status = LoadOutcome::Status::kIgnored;
    outcome.message = what + ": valid, but not newer than the served version";
    log(LogLevel::kInfo, outcome.message, path, std::nullopt, outcome.version);
    return outcome;
  }
  const auto served = current->version;
  lock.unlock();
  if (outcome.status == LoadOutcome::Status::kPublished) {
    outcome.message = "published " + what;
  } else {
    outcome.message = "loaded " + what + "; still serving " + std::to_string(served);
  }
  log(LogLevel::kInfo, outcome.message, path, std::nullopt, outcome.version);
  return outcome;
}

LoadOutcome ModelRegistry::Impl::submit_and_wait(const fs::path& path) {
  auto done = std::make_shared<std::promise<LoadOutcome>>();
  auto future = done->get_future();
  {
    std::lock_guard lock(queue_mutex);
    if (stopping) {
      LoadOutcome outcome;
      outcome.message = path.string() + ": ignored: the registry is shutting down";
      return outcome;
    }
    queue.push_back(Request{path, /*forced=*/true, /*initial=*/false, version_from_name(path), std::move(done)});
  }
  queue_cv.notify_one();
  return future.get();
}

void ModelRegistry::Impl::loader_main() {
  if (config.loader_priority == LoaderPriority::kLow) {
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value only.
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19) != 0) {
      log(LogLevel::kWarning, "cannot lower the loader thread's priority: " + errno_text(errno));
    }
  } else if (config.loader_priority == LoaderPriority::kBackground) {
    sched_param param{};
    if (const int rc = ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &param); rc != 0) {
      log(LogLevel::kWarning, "cannot make the loader thread SCHED_IDLE: " + errno_text(rc));
    }
  }
  for (;;) {
    std::deque<Request> batch;
    {
      std::unique_lock lock(queue_mutex);
      queue_cv.wait(lock, [this] { return stopping || !queue.empty(); });
      if (stopping) return;  // the destructor answers what is left
      batch.swap(queue);
    }
    // Newest file-name version first: of a backlog, the first good file publishes and the older ones are
    // then skipped before loading. Blocking requests keep their place among equals.
    std::stable_sort(batch.begin(), batch.end(), [](const Request& a, const Request& b) {
      return a.name_version.has_value() && (!b.name_version || *a.name_version > *b.name_version);
    });
    for (auto& request : batch) {
      // Acquire pairs with the release store in ~ModelRegistry: stop between files of a backlog.
      if (stop_flag.load(std::memory_order_acquire)) {
        if (request.done) request.done->set_value(LoadOutcome{});
        continue;
      }
      LoadOutcome outcome = process(request);
      if (request.done) request.done->set_value(std::move(outcome));
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
  impl->config = std::move(config);
  impl->pinned = impl->config.pinned_version;

  Request request{initial, /*forced=*/true, /*initial=*/true, impl->version_from_name(initial), nullptr};
  std::string skipped;
  std::shared_ptr<Entry> entry = impl->load_entry(request, skipped);
  if (!entry) throw Error(ErrorCode::kFileNotFound, initial.string() + ": " + skipped);
  if (entry->kind != CheckpointKind::kTorchScript) {
    throw Error(ErrorCode::kUnsupported, initial.string() + ": the initial checkpoint must be a TorchScript archive");
  }
  // Every later version must fit the pipeline this model sizes.
  LoadOptions& load = impl->config.load;
  if (load.expected_input_width == 0) load.expected_input_width = entry->model->input_width();
  if (load.expected_schema_hash.empty()) load.expected_schema_hash = entry->model->metadata().feature_schema_hash;
  impl->loaded.add();
  {
    std::lock_guard lock(impl->state_mutex);
    impl->known_files[entry->version] = entry->source;
    impl->publish(entry);
  }
  impl->log(LogLevel::kInfo, "serving " + entry->source + " (version " + std::to_string(entry->version) + ")", initial,
            std::nullopt, entry->version);
  Impl* raw = impl.get();
  impl->loader = std::thread([raw] { raw->loader_main(); });
  return std::unique_ptr<ModelRegistry>(new ModelRegistry(std::move(impl)));
}

ModelRegistry::ModelRegistry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ModelRegistry::~ModelRegistry() {
  std::deque<Request> left;
  {
    std::lock_guard lock(impl_->queue_mutex);
    impl_->stopping = true;
    left.swap(impl_->queue);
  }
  // Release pairs with the acquire load in loader_main().
  impl_->stop_flag.store(true, std::memory_order_release);
  impl_->queue_cv.notify_all();
  impl_->loader.join();
  for (auto& request : left) {
    if (request.done) request.done->set_value(LoadOutcome{});
  }
}

std::shared_ptr<ModelSlot> ModelRegistry::slot() const noexcept { return impl_->slot; }

void ModelRegistry::offer(const fs::path& path) {
  Request request{path, /*forced=*/false, /*initial=*/false, impl_->version_from_name(path), nullptr};
  {
    std::lock_guard lock(impl_->queue_mutex);
    if (impl_->stopping) return;
    impl_->queue.push_back(std::move(request));
  }
  impl_->queue_cv.notify_one();
}

LoadOutcome ModelRegistry::load(const fs::path& path) { return impl_->submit_and_wait(path); }

LoadOutcome ModelRegistry::reload(std::optional<std::uint64_t> version) {
  fs::path path;
  {
    std::lock_guard lock(impl_->state_mutex);
    const std::uint64_t wanted = version.value_or(impl_->current->version);
    const auto it = impl_->known_files.find(wanted);
    if (it == impl_->known_files.end()) {
      throw Error(ErrorCode::kInvalidConfig, "registry: no file is known for version " + std::to_string(wanted));
    }
    path = it->second;
  }
  return impl_->submit_and_wait(path);
}

std::shared_ptr<const Model> ModelRegistry::current() const { return impl_->slot->current(); }

std::uint64_t ModelRegistry::current_version() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->current->version;
}

std::vector<VersionInfo> ModelRegistry::versions() const {
  std::vector<VersionInfo> list;
  std::lock_guard lock(impl_->state_mutex);
  for (const auto* entry : {&impl_->previous, &impl_->current, &impl_->candidate}) {
    if (!*entry) continue;
    const Entry& e = **entry;
    list.push_back(
        VersionInfo{e.version, e.kind, e.source, entry == &impl_->current, entry == &impl_->previous, e.loaded_ns});
  }
  std::sort(list.begin(), list.end(), [](const VersionInfo& a, const VersionInfo& b) { return a.version < b.version; });
  return list;
}

std::optional<std::uint64_t> ModelRegistry::pinned() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->pinned;
}

bool ModelRegistry::pin(std::uint64_t version) {
  fs::path path;
  bool served = false;
  {
    std::lock_guard lock(impl_->state_mutex);
    impl_->pinned = version;
    served = impl_->current->version == version;
    for (const auto* entry : {&impl_->previous, &impl_->candidate}) {
      if (!served && *entry && (*entry)->version == version) {
        impl_->publish(*entry);
        served = true;
      }
    }
    if (const auto it = impl_->known_files.find(version); !served && it != impl_->known_files.end()) {
      path = it->second;
    }
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
  impl_->log(LogLevel::kInfo, what + "; loading " + path.string() + " again", path, std::nullopt, version);
  impl_->submit_and_wait(path);
  return current_version() == version;
}

std::uint64_t ModelRegistry::unpin() {
  std::uint64_t served = 0;
  {
    std::lock_guard lock(impl_->state_mutex);
    impl_->pinned.reset();
    std::shared_ptr<const Entry> best = impl_->current;
    for (const auto* entry : {&impl_->previous, &impl_->candidate}) {
      if (*entry && (*entry)->version > best->version) best = *entry;
    }
    if (best != impl_->current) impl_->publish(best);
    impl_->candidate.reset();
    served = impl_->current->version;
  }
  impl_->log(LogLevel::kInfo, "unpinned; serving the latest version " + std::to_string(served), {}, std::nullopt,
             served);
  return served;
}

std::uint64_t ModelRegistry::rollback() {
  std::uint64_t from = 0, to = 0;
  {
    std::lock_guard lock(impl_->state_mutex);
    if (!impl_->previous) throw Error(ErrorCode::kInvalidConfig, "registry: no previous version to roll back to");
    from = impl_->current->version;
    impl_->pinned = impl_->previous->version;
    impl_->publish(impl_->previous);  // the served version becomes the rollback target, so it can be undone
    impl_->rollbacks.add();
    to = impl_->current->version;
  }
  impl_->log(LogLevel::kWarning,
             "rolled back from version " + std::to_string(from) + " to " + std::to_string(to) +
                 " (pinned; unpin() resumes the latest)",
             {}, std::nullopt, to);
  return to;
}

RegistryMetricsSnapshot ModelRegistry::metrics() const {
  RegistryMetricsSnapshot s;
  s.swaps = impl_->swaps.load();
  s.loaded = impl_->loaded.load();
  s.ignored = impl_->ignored.load();
  s.rollbacks = impl_->rollbacks.load();
  {
    std::lock_guard lock(impl_->refused_mutex);
    s.refused = impl_->refused;
  }
  s.load = impl_->load_time.snapshot();
  s.warm_up = impl_->warmup_time.snapshot();
  // Relaxed: a gauge (see publish()).
  s.current_version = impl_->current_version.load(std::memory_order_relaxed);
  s.pinned_version = pinned();
  return s;
}

}  // namespace tickinfer
