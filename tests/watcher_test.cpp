// CheckpointWatcher (inotify, polling) on its own: Torch-free, so ThreadSanitizer covers it (label core).

#include "tickinfer/watcher.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/wait.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/log.hpp"

namespace tickinfer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::wait_until;
using TempDir = testing::TestTempDir;

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ASSERT_TRUE(out.good()) << path;
}

// Collects what a watcher reports.
struct Reports {
  CheckpointWatcher::Callback callback() {
    return [this](const fs::path& p) {
      std::lock_guard lock(mutex);
      paths.push_back(p);
    };
  }
  std::vector<fs::path> snapshot() {
    std::lock_guard lock(mutex);
    return paths;
  }
  std::mutex mutex;
  std::vector<fs::path> paths;
};

// Collects what a watcher logs.
struct Logs {
  LogSink sink() {
    return [this](const LogRecord& record) {
      std::lock_guard lock(mutex);
      records.push_back(record);
    };
  }
  std::vector<LogRecord> snapshot() {
    std::lock_guard lock(mutex);
    return records;
  }
  std::mutex mutex;
  std::vector<LogRecord> records;
};

TEST(Watcher, IgnoredNamesAreDotFilesTemporariesAndSidecars) {
  EXPECT_TRUE(is_ignored_checkpoint_name(".model_epoch3.pt"));
  EXPECT_TRUE(is_ignored_checkpoint_name("model_epoch3.pt.tmp"));
  EXPECT_TRUE(is_ignored_checkpoint_name("model_epoch3.pt.part"));
  EXPECT_TRUE(is_ignored_checkpoint_name("model_epoch3.pt.sha256"));
  EXPECT_FALSE(is_ignored_checkpoint_name("model_epoch3.pt"));
}

TEST(Watcher, ReportsRenamedInFilesButNotTemporaryOrHiddenOnes) {
  TempDir dir;
  Reports reports;
  WatcherConfig config;
  config.directory = dir.path();
  config.mode = WatchMode::kInotify;
  auto watcher = CheckpointWatcher::create(config, reports.callback());
  EXPECT_TRUE(watcher->uses_inotify());
  write_bytes(dir.path() / ".hidden.pt", "x");
  write_bytes(dir.path() / "b.pt.part", "x");
  write_bytes(dir.path() / "c.pt.tmp", "x");
  fs::rename(dir.path() / "c.pt.tmp", dir.path() / "c.pt");
  // inotify delivers events in order: once the last file is reported, anything before it would have been too.
  write_bytes(dir.path() / "d.pt.tmp", "x");
  fs::rename(dir.path() / "d.pt.tmp", dir.path() / "d.pt");
  ASSERT_TRUE(wait_until([&] { return reports.snapshot().size() >= 2; }));
  EXPECT_EQ(reports.snapshot(), (std::vector<fs::path>{dir.path() / "c.pt", dir.path() / "d.pt"}));
}

TEST(Watcher, ReportsFilesPresentAtStartAndAgainOnRescan) {
  TempDir dir;
  write_bytes(dir.path() / "a.pt", "x");
  Reports reports;
  WatcherConfig config;
  config.directory = dir.path();
  auto watcher = CheckpointWatcher::create(config, reports.callback());
  ASSERT_TRUE(wait_until([&] { return reports.snapshot().size() == 1; }));
  watcher->rescan();
  ASSERT_TRUE(wait_until([&] { return reports.snapshot().size() == 2; }));
  EXPECT_EQ(reports.snapshot()[1], dir.path() / "a.pt");
}

TEST(Watcher, PollingReportsEachFileOnceAfterItStoppedChanging) {
  TempDir dir;
  Reports reports;
  WatcherConfig config;
  config.directory = dir.path();
  config.mode = WatchMode::kPolling;
  config.poll_interval = 20ms;
  auto watcher = CheckpointWatcher::create(config, reports.callback());
  EXPECT_FALSE(watcher->uses_inotify());
  write_bytes(dir.path() / "a.pt", "x");
  ASSERT_TRUE(wait_until([&] { return reports.snapshot().size() == 1; }));
  // Every scan looks at every file: by the time b.pt is reported, a.pt has been seen unchanged several times.
  write_bytes(dir.path() / "b.pt", "x");
  ASSERT_TRUE(wait_until([&] { return reports.snapshot().size() >= 2; }));
  EXPECT_EQ(reports.snapshot(), (std::vector<fs::path>{dir.path() / "a.pt", dir.path() / "b.pt"}));
}

TEST(Watcher, CreateThrowsFileNotFoundForAMissingDirectory) {
  WatcherConfig config;
  config.directory = "/nonexistent/tickinfer/dir";
  try {
    CheckpointWatcher::create(config, [](const fs::path&) {});
    ADD_FAILURE() << "create() accepted a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFileNotFound) << e.what();
    EXPECT_EQ(std::string(e.what()), "checkpoint watcher: /nonexistent/tickinfer/dir is not a directory");
  }
}

TEST(Watcher, CreateThrowsInvalidConfigForANonPositivePollInterval) {
  TempDir dir;
  WatcherConfig config;
  config.directory = dir.path();
  config.poll_interval = 0ms;
  try {
    CheckpointWatcher::create(config, [](const fs::path&) {});
    ADD_FAILURE() << "create() accepted poll_interval 0";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig) << e.what();
    EXPECT_EQ(std::string(e.what()), "checkpoint watcher: poll_interval must be > 0");
  }
}

TEST(Watcher, ACallbackThatThrowsIsLoggedAsAnErrorRecordNamingTheFile) {
  TempDir dir;
  Logs logs;
  WatcherConfig config;
  config.directory = dir.path();
  config.mode = WatchMode::kInotify;
  config.log = logs.sink();
  auto watcher = CheckpointWatcher::create(config, [](const fs::path&) { throw std::runtime_error("full queue"); });
  write_bytes(dir.path() / "a.pt.tmp", "x");
  fs::rename(dir.path() / "a.pt.tmp", dir.path() / "a.pt");
  ASSERT_TRUE(wait_until([&] { return !logs.snapshot().empty(); }));
  const LogRecord record = logs.snapshot().front();
  EXPECT_EQ(record.level, LogLevel::kError);
  EXPECT_EQ(record.component, "watcher");
  EXPECT_EQ(record.path, dir.path() / "a.pt");
  EXPECT_EQ(record.message, "callback threw for " + (dir.path() / "a.pt").string() + ": full queue");
}

TEST(Watcher, LosingTheWatchedDirectoryIsLoggedAsAWarningRecord) {
  TempDir root;
  const fs::path dir = root.path() / "watched";
  fs::create_directories(dir);
  Logs logs;
  WatcherConfig config;
  config.directory = dir;
  config.mode = WatchMode::kInotify;
  config.poll_interval = 20ms;
  config.log = logs.sink();
  auto watcher = CheckpointWatcher::create(config, [](const fs::path&) {});
  fs::rename(dir, root.path() / "moved");
  const std::string expected = "lost the inotify watch on " + dir.string() + " (removed or moved?); polling instead";
  ASSERT_TRUE(wait_until([&] {
    for (const auto& r : logs.snapshot()) {
      if (r.message == expected) return true;
    }
    return false;
  }));
  for (const auto& r : logs.snapshot()) {
    if (r.message != expected) continue;
    EXPECT_EQ(r.level, LogLevel::kWarning);
    EXPECT_EQ(r.component, "watcher");
    EXPECT_EQ(r.path, dir);
  }
  ASSERT_TRUE(wait_until([&] { return !watcher->uses_inotify(); }));
}

}  // namespace
}  // namespace tickinfer
