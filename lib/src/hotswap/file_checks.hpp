#pragma once
// File checks of the hot-swap registry: owner, mode and symlink safety, a bounded single read, and the
// sha256 sidecar. Internal; no torch headers.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tickinfer/registry.hpp"

namespace tickinfer::internal {

/// Which file a check refers to, to notice a file replaced or rewritten after it was read.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

struct FileCheckOptions {
  bool check_safety = true;  // world-writable, foreign owner, symlink leaving the directory: kUnsafeFile
  ChecksumPolicy checksum = ChecksumPolicy::kIfPresent;
  std::size_t max_bytes = std::size_t{1} << 30;  // larger files are kTooLarge, never read
};

struct CheckedFile {
  std::filesystem::path target;                    // `path` with a symlink resolved
  FileIdentity identity;                           // of what was read
  std::shared_ptr<const std::vector<char>> bytes;  // the whole file, read once from the checked descriptor
};

/// Safety only, no read: lstat, symlink target within the directory, regular file, owner and mode (when
/// options.check_safety). What a file the registry does not load (not newer, already loaded) still gets.
/// Throws Error naming `path`: kFileNotFound, kUnsafeFile.
FileIdentity check_file_safety(const std::filesystem::path& path, const FileCheckOptions& options);

/// The safety checks, then one bounded read from the same descriptor, then the sidecar `<path>.sha256`
/// (options.checksum) verified over the bytes read. Throws Error naming `path`: kFileNotFound, kUnsafeFile,
/// kTooLarge, kChecksumMismatch.
CheckedFile open_checked(const std::filesystem::path& path, const FileCheckOptions& options);

/// The identity of `path` now (following symlinks); nullopt if it is gone.
std::optional<FileIdentity> identity_now(const std::filesystem::path& path);

/// Lower-case hex SHA-256 of `size` bytes; throws Error(kUnsupported) naming `source` if OpenSSL fails.
std::string sha256_hex(const char* data, std::size_t size, const std::string& source);

}  // namespace tickinfer::internal
