// File checks of the hot-swap registry: safety (owner, mode, symlinks), one bounded read, sha256 sidecars.

#include "hotswap/file_checks.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/fd.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::internal {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kSidecarMaxBytes = 4096;

FileIdentity identity_of(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size,
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

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

std::string lower(std::string text) {
  for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}

// Resolves a symlink (refusing one that leaves the file's directory when checking safety) and opens the file.
struct Opened {
  fs::path target;
  int fd = -1;
  struct stat st {};
};

Opened open_safely(const fs::path& path, const FileCheckOptions& options) {
  const std::string source = path.string();
  struct stat link_stat {};
  if (::lstat(path.c_str(), &link_stat) != 0) {
    throw Error(ErrorCode::kFileNotFound, source + ": " + errno_text(errno));
  }
  Opened opened;
  opened.target = path;
  if (S_ISLNK(link_stat.st_mode)) {
    std::error_code ec;
    opened.target = fs::canonical(path, ec);
    if (ec) throw Error(ErrorCode::kFileNotFound, source + ": dangling symlink (" + ec.message() + ")");
    if (options.check_safety) {
      const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
      const fs::path directory = fs::canonical(parent, ec);
      if (ec || !is_within(opened.target, directory)) {
        throw Error(ErrorCode::kUnsafeFile, source + ": symlink to " + opened.target.string() +
                                                " leaves the directory " + (ec ? parent.string() : directory.string()));
      }
    }
  }
  // O_NONBLOCK: opening a FIFO must not hang the loader; O_NOFOLLOW: the target was resolved above.
  opened.fd = ::open(opened.target.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (opened.fd < 0) throw Error(ErrorCode::kFileNotFound, source + ": cannot open: " + errno_text(errno));
  if (::fstat(opened.fd, &opened.st) != 0) {
    const int error = errno;
    ::close(opened.fd);
    throw Error(ErrorCode::kFileNotFound, source + ": " + errno_text(error));
  }
  try {
    if (!S_ISREG(opened.st.st_mode)) throw Error(ErrorCode::kUnsafeFile, source + ": not a regular file");
    if (options.check_safety) check_owner_and_mode(opened.st, source);
  } catch (...) {
    ::close(opened.fd);
    throw;
  }
  return opened;
}

void check_sidecar(const fs::path& path, const std::vector<char>& bytes, const FileCheckOptions& options) {
  if (options.checksum == ChecksumPolicy::kIgnore) return;
  const std::string source = path.string();
  fs::path sidecar = path;
  sidecar += ".sha256";
  const std::string sidecar_name = sidecar.string();
  struct stat link_stat {};
  if (::lstat(sidecar.c_str(), &link_stat) != 0) {
    if (options.checksum == ChecksumPolicy::kRequire) {
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
  if (options.check_safety) check_owner_and_mode(st, "sidecar " + sidecar_name);
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
  const std::string actual = sha256_hex(bytes.data(), bytes.size(), source);
  if (actual != expected) {
    throw Error(ErrorCode::kChecksumMismatch, source + ": SHA-256 is " + actual + ", the sidecar says " + expected);
  }
}

}  // namespace

std::string sha256_hex(const char* data, std::size_t size, const std::string& source) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorCode::kUnsupported, source + ": OpenSSL cannot compute SHA-256");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

FileIdentity check_file_safety(const fs::path& path, const FileCheckOptions& options) {
  const Opened opened = open_safely(path, options);
  const Fd fd(opened.fd);
  return identity_of(opened.st);
}

CheckedFile open_checked(const fs::path& path, const FileCheckOptions& options) {
  const std::string source = path.string();
  const Opened opened = open_safely(path, options);
  const Fd fd(opened.fd);
  const auto size = static_cast<std::uint64_t>(opened.st.st_size);
  if (size > options.max_bytes) {
    throw Error(ErrorCode::kTooLarge, source + ": " + std::to_string(size) + " bytes, more than the " +
                                          std::to_string(options.max_bytes) +
                                          " allowed (LoadOptions::max_archive_bytes)");
  }
  auto bytes = std::make_shared<std::vector<char>>(static_cast<std::size_t>(size));
  std::size_t done = 0;
  while (done < bytes->size()) {
    const ssize_t n = ::pread(fd.get(), bytes->data() + done, bytes->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::kFileNotFound, source + ": read failed: " + errno_text(errno));
    if (n == 0) break;  // shrank while reading: what was read is what is checked
    done += static_cast<std::size_t>(n);
  }
  bytes->resize(done);
  check_sidecar(path, *bytes, options);
  CheckedFile checked;
  checked.target = opened.target;
  checked.identity = identity_of(opened.st);
  checked.bytes = std::move(bytes);
  return checked;
}

std::optional<FileIdentity> identity_now(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return identity_of(st);
}

}  // namespace tickinfer::internal
