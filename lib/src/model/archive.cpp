// Checkpoint bytes: one bounded read of the file, the zip directory scan and the per-member size bounds.

#include "model/archive.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "core/fd.hpp"
#include "tickinfer/error.hpp"
#include "tickinfer/model.hpp"

namespace tickinfer::internal {
namespace {

constexpr char kZipMagic[4] = {'P', 'K', '\x03', '\x04'};
constexpr std::uint32_t kEndOfDirectory = 0x06054b50;
constexpr std::uint32_t kZip64Locator = 0x07064b50;
constexpr std::uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr std::uint32_t kDirectoryEntry = 0x02014b50;
constexpr std::size_t kEndOfDirectorySize = 22;
constexpr std::size_t kDirectoryEntrySize = 46;

std::uint64_t le(const std::vector<char>& bytes, std::size_t at, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value |= std::uint64_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  }
  return value;
}

[[noreturn]] void damaged(const std::string& source, const std::string& problem) {
  throw Error(ErrorCode::kTruncatedArchive, source + ": truncated or damaged zip archive (" + problem + ")");
}

bool is_metadata_member(std::string_view name) {
  const std::string wanted = std::string("extra/") + kMetadataFileName;
  return name == wanted || (name.size() > wanted.size() && name.substr(name.size() - wanted.size()) == wanted &&
                            name[name.size() - wanted.size() - 1] == '/');
}

}  // namespace

Bytes read_checkpoint_file(const std::filesystem::path& path, std::size_t max_bytes) {
  const std::string source = path.string();
  // O_NONBLOCK: opening a FIFO must not hang the caller.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT) throw Error(ErrorCode::kFileNotFound, source + ": no such file");
    throw Error(ErrorCode::kFileNotFound, source + ": cannot be opened for reading: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error(ErrorCode::kFileNotFound, source + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    throw Error(ErrorCode::kNotTorchScript, source + ": not a regular file, so not a TorchScript archive");
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_bytes) {
    throw Error(ErrorCode::kTooLarge, source + ": " + std::to_string(size) + " bytes, more than the " +
                                          std::to_string(max_bytes) + " allowed (LoadOptions::max_archive_bytes)");
  }
  auto bytes = std::make_shared<std::vector<char>>(static_cast<std::size_t>(size));
  std::size_t done = 0;
  while (done < bytes->size()) {
    const ssize_t n = ::pread(fd.get(), bytes->data() + done, bytes->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::kFileNotFound, source + ": read failed: " + std::strerror(errno));
    if (n == 0) break;  // shrank while reading: what was read is what is checked
    done += static_cast<std::size_t>(n);
  }
  bytes->resize(done);
  return bytes;
}

std::vector<ZipMember> zip_members(const std::vector<char>& bytes, const std::string& source) {
  if (bytes.size() < sizeof kZipMagic || std::memcmp(bytes.data(), kZipMagic, sizeof kZipMagic) != 0) {
    throw Error(ErrorCode::kNotTorchScript, source + ": not a TorchScript archive (no zip header)");
  }
  if (bytes.size() < kEndOfDirectorySize) damaged(source, "shorter than a zip directory");
  // The end-of-directory record: the last 22 bytes, or earlier by a comment of up to 65535 bytes.
  std::size_t eocd = bytes.size() - kEndOfDirectorySize;
  const std::size_t lowest =
      bytes.size() > kEndOfDirectorySize + 65535 ? bytes.size() - kEndOfDirectorySize - 65535 : 0;
  for (;; --eocd) {
    if (le(bytes, eocd, 4) == kEndOfDirectory) break;
    if (eocd == lowest) damaged(source, "no end of central directory");
  }
  std::uint64_t entries = le(bytes, eocd + 10, 2);
  std::uint64_t directory_size = le(bytes, eocd + 12, 4);
  std::uint64_t directory_offset = le(bytes, eocd + 16, 4);
  if (eocd >= 20 && le(bytes, eocd - 20, 4) == kZip64Locator) {
    const std::uint64_t record = le(bytes, eocd - 20 + 8, 8);
    if (record > bytes.size() || bytes.size() - record < 56 ||
        le(bytes, static_cast<std::size_t>(record), 4) != kZip64EndOfDirectory) {
      damaged(source, "bad zip64 end of central directory");
    }
    const auto at = static_cast<std::size_t>(record);
    entries = le(bytes, at + 32, 8);
    directory_size = le(bytes, at + 40, 8);
    directory_offset = le(bytes, at + 48, 8);
  }
  if (directory_offset > bytes.size() || directory_size > bytes.size() - directory_offset) {
    damaged(source, "central directory outside the file");
  }
  std::vector<ZipMember> members;
  std::size_t at = static_cast<std::size_t>(directory_offset);
  const std::size_t end = at + static_cast<std::size_t>(directory_size);
  for (std::uint64_t i = 0; i < entries; ++i) {
    if (end - at < kDirectoryEntrySize || le(bytes, at, 4) != kDirectoryEntry)
      damaged(source, "bad central directory entry");
    std::uint64_t inflated = le(bytes, at + 24, 4);
    const std::size_t name_length = static_cast<std::size_t>(le(bytes, at + 28, 2));
    const std::size_t extra_length = static_cast<std::size_t>(le(bytes, at + 30, 2));
    const std::size_t comment_length = static_cast<std::size_t>(le(bytes, at + 32, 2));
    const std::size_t entry_size = kDirectoryEntrySize + name_length + extra_length + comment_length;
    if (end - at < entry_size) damaged(source, "bad central directory entry");
    ZipMember member;
    member.name.assign(bytes.data() + at + kDirectoryEntrySize, name_length);
    if (inflated == 0xffffffffu) {  // the real size is in the zip64 extra field (id 1), first value
      bool found = false;
      for (std::size_t x = at + kDirectoryEntrySize + name_length, x_end = x + extra_length; x + 4 <= x_end;) {
        const auto id = le(bytes, x, 2);
        const auto length = static_cast<std::size_t>(le(bytes, x + 2, 2));
        if (id == 1 && length >= 8 && x + 4 + 8 <= x_end) {
          inflated = le(bytes, x + 4, 8);
          found = true;
          break;
        }
        x += 4 + length;
      }
      if (!found) damaged(source, "member '" + member.name + "' lacks its zip64 size");
    }
    member.inflated = inflated;
    members.push_back(std::move(member));
    at += entry_size;
  }
  return members;
}

void check_member_sizes(const std::vector<ZipMember>& members, const std::string& source, const LoadOptions& options) {
  std::uint64_t total = 0;
  for (const ZipMember& member : members) {
    if (is_metadata_member(member.name) && member.inflated > options.max_metadata_bytes) {
      throw Error(ErrorCode::kTooLarge, source + ": archive member '" + member.name + "' inflates to " +
                                            std::to_string(member.inflated) + " bytes, more than the " +
                                            std::to_string(options.max_metadata_bytes) +
                                            " allowed for metadata (LoadOptions::max_metadata_bytes)");
    }
    if (member.inflated > options.max_archive_bytes) {
      throw Error(ErrorCode::kTooLarge, source + ": archive member '" + member.name + "' inflates to " +
                                            std::to_string(member.inflated) + " bytes, more than the " +
                                            std::to_string(options.max_archive_bytes) +
                                            " allowed (LoadOptions::max_archive_bytes)");
    }
    total += member.inflated;
    if (total > options.max_archive_bytes) {
      throw Error(ErrorCode::kTooLarge, source + ": archive members inflate to more than the " +
                                            std::to_string(options.max_archive_bytes) +
                                            " bytes allowed in all (LoadOptions::max_archive_bytes)");
    }
  }
}

std::size_t BytesReader::read(std::uint64_t pos, void* buf, std::size_t n, const char* /*what*/) const {
  if (pos >= bytes_->size()) return 0;
  const std::size_t count = std::min<std::size_t>(n, bytes_->size() - static_cast<std::size_t>(pos));
  std::memcpy(buf, bytes_->data() + pos, count);
  return count;
}

}  // namespace tickinfer::internal
