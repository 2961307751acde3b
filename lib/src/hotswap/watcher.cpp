// CheckpointWatcher: inotify read through a Boost.Asio stream_descriptor, or a polling timer, on one thread.

#include "tickinfer/watcher.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "tickinfer/error.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSidecarSuffix = ".sha256";

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// A file and its sidecar as stat() sees them. inotify mode keeps the last reported one per name, so the
// start-up listing racing with an event, or an overflow rescan, does not report an unchanged file twice;
// polling reports a file once its fingerprint stayed the same for two scans.
struct Fingerprint {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;
  ino_t sidecar_inode = 0;  // a sidecar renamed over another has a new inode, even within one mtime tick
  off_t sidecar_size = -1;
  std::int64_t sidecar_mtime_ns = 0, sidecar_ctime_ns = 0;
  bool operator==(const Fingerprint&) const = default;
};

std::int64_t nanoseconds(const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

std::optional<Fingerprint> fingerprint(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  Fingerprint f{st.st_dev, st.st_ino, st.st_size, nanoseconds(st.st_mtim), nanoseconds(st.st_ctim)};
  fs::path sidecar = path;
  sidecar += std::string(kSidecarSuffix);
  if (::stat(sidecar.c_str(), &st) == 0) {
    f.sidecar_inode = st.st_ino;
    f.sidecar_size = st.st_size;
    f.sidecar_mtime_ns = nanoseconds(st.st_mtim);
    f.sidecar_ctime_ns = nanoseconds(st.st_ctim);
  }
  return f;
}

struct Seen {
  Fingerprint fingerprint;
  bool reported = false;
};

}  // namespace

bool is_ignored_checkpoint_name(std::string_view name) noexcept {
  return name.empty() || name.front() == '.' || ends_with(name, ".tmp") || ends_with(name, ".part") ||
         ends_with(name, kSidecarSuffix);
}

struct CheckpointWatcher::Impl {
  WatcherConfig config;
  Callback callback;
  boost::asio::io_context io;
  std::optional<boost::asio::posix::stream_descriptor> inotify;  // engaged in inotify mode
  boost::asio::steady_timer timer{io};
  // inotify_event records are aligned to their struct; the kernel never splits one across reads.
  alignas(inotify_event) std::array<char, 64 * 1024> buffer{};
  std::map<std::string, Seen> polled;                // polling state; watcher thread only
  std::map<std::string, Fingerprint> last_reported;  // inotify state; watcher thread only
  std::atomic<bool> uses_inotify{false};
  std::thread thread;
  std::once_flag stop_once;

  // emit_log never throws: a failing sink must not stop the watcher.
  void log(LogLevel level, const std::string& message, const fs::path& path = {}) const {
    emit_log(config.log, LogRecord{level, "watcher", message, path, std::nullopt, std::nullopt});
  }

  // inotify mode: reports `path` unless it is unchanged since its last report (or `force`).
  void report_changed(const fs::path& path, bool force) {
    const auto now = fingerprint(path);
    if (!now) return;  // gone again
    auto& last = last_reported[path.filename().string()];
    if (!force && last == *now) return;
    last = *now;
    report(path);
  }

  void report(const fs::path& path) {
    try {
      callback(path);
    } catch (const std::exception& e) {
      log(LogLevel::kError, "callback threw for " + path.string() + ": " + e.what(), path);
    } catch (...) {
      log(LogLevel::kError, "callback threw for " + path.string(), path);
    }
  }

  // A checkpoint name is reported as is; its sidecar re-reports the checkpoint if that exists.
  void on_name(const std::string& name) {
    if (ends_with(name, kSidecarSuffix) && name.front() != '.') {
      const fs::path checkpoint = config.directory / name.substr(0, name.size() - kSidecarSuffix.size());
      std::error_code ec;
      if (!is_ignored_checkpoint_name(checkpoint.filename().string()) && fs::exists(checkpoint, ec)) {
        report_changed(checkpoint, /*force=*/false);
      }
      return;
    }
    if (!is_ignored_checkpoint_name(name)) report_changed(config.directory / name, /*force=*/false);
  }

  // Every checkpoint present, in name order (inotify start-up, queue overflow, rescan() with `force`).
  void report_all(bool force) {
    std::vector<fs::path> found;
    std::error_code ec;
    for (fs::directory_iterator it(config.directory, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!is_ignored_checkpoint_name(name) && !it->is_directory(ec)) found.push_back(it->path());
    }
    if (ec) log(LogLevel::kWarning, "cannot list " + config.directory.string() + ": " + ec.message(), config.directory);
    std::sort(found.begin(), found.end());
    if (force) last_reported.clear();
    for (const auto& path : found) report_changed(path, force);
  }

  void read_inotify() {
    inotify->async_read_some(boost::asio::buffer(buffer), [this](const boost::system::error_code& ec, std::size_t n) {
      if (ec == boost::asio::error::operation_aborted) return;
      if (ec) {
        log(LogLevel::kWarning, "inotify read failed (" + ec.message() + "); polling instead", config.directory);
        start_polling(/*report_present=*/true);
        return;
      }
      bool lost_watch = false;
      for (std::size_t offset = 0; offset + sizeof(inotify_event) <= n;) {
        inotify_event event;
        std::memcpy(&event, buffer.data() + offset, sizeof event);
        const char* name = buffer.data() + offset + sizeof(inotify_event);
        offset += sizeof(inotify_event) + event.len;
        if ((event.mask & IN_Q_OVERFLOW) != 0) {
          log(LogLevel::kWarning, "inotify queue overflowed; rescanning " + config.directory.string(),
              config.directory);
          report_all(/*force=*/false);
        } else if ((event.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
          lost_watch = true;
        } else if (event.len > 0 && (event.mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) != 0) {
          on_name(std::string(name, ::strnlen(name, event.len)));
        }
      }
      if (lost_watch) {
        log(LogLevel::kWarning,
            "lost the inotify watch on " + config.directory.string() + " (removed or moved?); polling instead",
            config.directory);
        start_polling(/*report_present=*/true);
        return;
      }
      read_inotify();
    });
  }

  void start_polling(bool report_present) {
    if (inotify) {
      boost::system::error_code ignored;
      inotify->close(ignored);
      inotify.reset();
    }
    // Relaxed: a status flag for callers; nothing is published through it.
    uses_inotify.store(false, std::memory_order_relaxed);
    polled.clear();
    scan(/*initial=*/!report_present);
    schedule_poll();
  }

  void schedule_poll() {
    timer.expires_after(config.poll_interval);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: stopping
      scan(/*initial=*/false);
      schedule_poll();
    });
  }

  // Polling: a file is reported once its size, mtime (and its sidecar's) were the same in two consecutive
  // scans, so a file still being written in place is not picked up half-way. `initial` marks what is there
  // as already reported (report_existing = false).
  void scan(bool initial) {
    std::map<std::string, Seen> now;
    std::error_code ec;
    for (fs::directory_iterator it(config.directory, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code file_ec;
      if (is_ignored_checkpoint_name(name) || !it->is_regular_file(file_ec)) continue;
      const auto f = fingerprint(it->path());
      if (!f) continue;  // vanished mid-scan
      now.emplace(name, Seen{*f, false});
    }
    if (ec) {
      log(LogLevel::kWarning, "cannot list " + config.directory.string() + ": " + ec.message(), config.directory);
      return;
    }
    std::vector<fs::path> ready;
    for (auto& [name, seen] : now) {
      const auto before = polled.find(name);
      if (initial) {
        seen.reported = true;
      } else if (before != polled.end() && before->second.fingerprint == seen.fingerprint) {
        seen.reported = before->second.reported;
        if (!seen.reported) {
          seen.reported = true;
          ready.push_back(config.directory / name);
        }
      }
    }
    polled = std::move(now);
    for (const auto& path : ready) report(path);
  }

  void rescan() {
    if (inotify) {
      report_all(/*force=*/true);
    } else {
      for (auto& [name, seen] : polled) seen.reported = false;  // reported again at the next stable scan
    }
  }
};

std::unique_ptr<CheckpointWatcher> CheckpointWatcher::create(const WatcherConfig& config, Callback on_checkpoint) {
  std::error_code ec;
  if (!fs::is_directory(config.directory, ec)) {
    throw Error(ErrorCode::kFileNotFound, "checkpoint watcher: " + config.directory.string() + " is not a directory");
  }
  if (config.poll_interval.count() <= 0) {
    throw Error(ErrorCode::kInvalidConfig, "checkpoint watcher: poll_interval must be > 0");
  }
  if (!on_checkpoint) throw Error(ErrorCode::kInvalidConfig, "checkpoint watcher: no callback given");
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->callback = std::move(on_checkpoint);

  bool inotify_ok = false;
  if (config.mode != WatchMode::kPolling) {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    std::string why;
    if (fd < 0) {
      why = std::string("inotify_init1: ") + std::strerror(errno);
    } else if (::inotify_add_watch(fd, config.directory.c_str(),
                                   IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
      why = std::string("inotify_add_watch: ") + std::strerror(errno);
      ::close(fd);
    } else {
      impl->inotify.emplace(impl->io, fd);  // owns fd from here
      inotify_ok = true;
    }
    if (!inotify_ok && config.mode == WatchMode::kInotify) {
      throw Error(ErrorCode::kUnsupported, "checkpoint watcher: " + config.directory.string() + ": " + why);
    }
    if (!inotify_ok) {
      impl->log(LogLevel::kWarning, why + "; polling " + config.directory.string() + " instead", config.directory);
    }
  }

  Impl* raw = impl.get();
  if (inotify_ok) {
    // Relaxed: see start_polling().
    raw->uses_inotify.store(true, std::memory_order_relaxed);
    if (!config.report_existing) {
      // What is there now counts as reported (the thread starts after this: it sees the map).
      for (fs::directory_iterator it(config.directory, ec), end; !ec && it != end; it.increment(ec)) {
        if (auto f = fingerprint(it->path())) raw->last_reported[it->path().filename().string()] = *f;
      }
    }
    // The watch is in place before the listing, so a file renamed in meanwhile is seen by one or the other
    // (or both: the fingerprints keep it to one report).
    boost::asio::post(raw->io, [raw] {
      if (raw->config.report_existing) raw->report_all(/*force=*/false);
      raw->read_inotify();
    });
  } else {
    boost::asio::post(raw->io, [raw] {
      raw->scan(/*initial=*/!raw->config.report_existing);
      raw->schedule_poll();
    });
  }
  raw->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<CheckpointWatcher>(new CheckpointWatcher(std::move(impl)));
}

CheckpointWatcher::CheckpointWatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CheckpointWatcher::~CheckpointWatcher() { stop(); }

bool CheckpointWatcher::uses_inotify() const noexcept {
  // Relaxed: see Impl::start_polling().
  return impl_->uses_inotify.load(std::memory_order_relaxed);
}

void CheckpointWatcher::rescan() {
  Impl* raw = impl_.get();
  boost::asio::post(raw->io, [raw] { raw->rescan(); });
}

void CheckpointWatcher::stop() {
  std::call_once(impl_->stop_once, [this] {
    impl_->io.stop();  // thread-safe; the run() loop returns after the handler in progress
    if (impl_->thread.joinable()) impl_->thread.join();
  });
}

}  // namespace tickinfer
