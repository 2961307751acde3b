#include "tickinfer/feed/capture.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "feed/crc32c.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::feed {
namespace {

static_assert(std::endian::native == std::endian::little,
              "captures store Events in host byte order, which the format defines as little-endian");

constexpr std::size_t kWriteBuffer = std::size_t{1} << 20;

void write_all(int fd, const char* data, std::size_t size, std::uint64_t offset, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(ErrorCode::kInvalidConfig, path + ": write failed: " + std::strerror(errno));
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

std::uint64_t header_bytes_for(std::uint64_t symbols) {
  return sizeof(CaptureHeader) + symbols * sizeof(CaptureSymbol);  // both 64-byte: a multiple of 64
}

std::uint64_t block_count(std::uint64_t records, std::uint32_t block_records) {
  return records / block_records + (records % block_records != 0 ? 1 : 0);
}

std::string hex(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// The magic as found, for the refusal: printable bytes as text, others as \xNN.
std::string shown(const char* bytes, std::size_t n) {
  std::string s = "'";
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      s.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      s += buf;
    }
  }
  return s + "'";
}

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kParseError, path + ": not a usable tickinfer capture: " + why);
}

// Reads exactly `size` bytes at `offset` (false when the file is shorter).
bool read_at(int fd, char* out, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

CaptureWriter::CaptureWriter(const std::string& path, std::span<const SymbolInfo> symbols, CaptureContents contents)
    : path_(path) {
  if (symbols.size() > kCaptureMaxSymbols) {
    throw Error(ErrorCode::kInvalidConfig, path + ": " + std::to_string(symbols.size()) + " symbols, at most " +
                                               std::to_string(kCaptureMaxSymbols));
  }
  if (contents.lobster_levels > kCaptureMaxLevels) {
    throw Error(ErrorCode::kInvalidConfig, path + ": " + std::to_string(contents.lobster_levels) +
                                               " LOBSTER levels, at most " + std::to_string(kCaptureMaxLevels));
  }
  head_.assign(header_bytes_for(symbols.size()), '\0');
  CaptureHeader header{};
  std::memcpy(header.magic, kCaptureMagic, sizeof header.magic);
  header.version = kCaptureVersion;
  header.record_size = sizeof(Event);
  header.record_count = kCaptureUnfinished;  // until finish() says otherwise
  header.symbol_count = static_cast<std::uint32_t>(symbols.size());
  header.header_bytes = static_cast<std::uint32_t>(head_.size());
  header.lobster_levels = contents.lobster_levels;
  header.flags = contents.flags;
  header.block_records = kCaptureBlockRecords;
  std::memcpy(head_.data(), &header, sizeof header);
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    const SymbolInfo& s = symbols[i];
    CaptureSymbol entry{};
    if (s.name.size() >= sizeof entry.name) {
      throw Error(ErrorCode::kInvalidConfig, path + ": symbol name '" + s.name + "' is longer than " +
                                                 std::to_string(sizeof entry.name - 1) + " bytes");
    }
    entry.id = s.id;
    entry.price_scale = s.price_scale;
    entry.qty_scale = s.qty_scale;
    std::memcpy(entry.name, s.name.data(), s.name.size());
    std::memcpy(head_.data() + sizeof header + i * sizeof entry, &entry, sizeof entry);
  }
  data_offset_ = header.header_bytes;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(ErrorCode::kFileNotFound, path + ": cannot create: " + std::strerror(errno));
  try {
    write_all(fd_, head_.data(), head_.size(), 0, path_);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
  buffer_.resize(kWriteBuffer);
}

CaptureWriter::~CaptureWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void CaptureWriter::flush() {
  if (fd_ < 0) throw Error(ErrorCode::kInvalidConfig, path_ + ": capture writer already finished");
  const std::uint64_t flushed = count_ - buffer_used_ / sizeof(Event);  // records already on disk
  // Block checksums, continued across flushes (a block may straddle two).
  for (std::size_t at = 0; at < buffer_used_;) {
    const std::size_t records =
        std::min<std::size_t>(kCaptureBlockRecords - block_fill_, (buffer_used_ - at) / sizeof(Event));
    block_crc_ = detail::crc32c(buffer_.data() + at, records * sizeof(Event), block_crc_);
    block_fill_ += static_cast<std::uint32_t>(records);
    at += records * sizeof(Event);
    if (block_fill_ == kCaptureBlockRecords) {
      block_crcs_.push_back(block_crc_);
      block_crc_ = 0;
      block_fill_ = 0;
    }
  }
  write_all(fd_, buffer_.data(), buffer_used_, data_offset_ + flushed * sizeof(Event), path_);
  buffer_used_ = 0;
}

void CaptureWriter::finish() {
  flush();
  if (block_fill_ != 0) {
    block_crcs_.push_back(block_crc_);
    block_crc_ = 0;
    block_fill_ = 0;
  }
  write_all(fd_, reinterpret_cast<const char*>(block_crcs_.data()), block_crcs_.size() * sizeof(std::uint32_t),
            data_offset_ + count_ * sizeof(Event), path_);
  CaptureHeader header;
  std::memcpy(&header, head_.data(), sizeof header);
  header.record_count = count_;
  header.header_crc = 0;
  std::memcpy(head_.data(), &header, sizeof header);
  header.header_crc = detail::crc32c(head_.data(), head_.size());
  std::memcpy(head_.data(), &header, sizeof header);
  write_all(fd_, head_.data(), head_.size(), 0, path_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw Error(ErrorCode::kInvalidConfig, path_ + ": close failed: " + std::strerror(errno));
  }
  fd_ = -1;
}

CaptureReader::CaptureReader(const std::string& path, bool prefault) {
  // Everything the header claims is checked against the file before a byte of it is mapped: a large file
  // that is not a capture costs a 64-byte read, never a mapping.
  const Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    const int err = errno;
    throw Error(err == ENOENT ? ErrorCode::kFileNotFound : ErrorCode::kParseError,
                path + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode)) refuse(path, "not a regular file");
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < sizeof(CaptureHeader) || !read_at(file.fd, reinterpret_cast<char*>(&header_), sizeof header_, 0)) {
    refuse(path, "truncated header (" + std::to_string(file_size) + " of " + std::to_string(sizeof(CaptureHeader)) +
                     " bytes)");
  }
  if (std::memcmp(header_.magic, kCaptureMagic, sizeof header_.magic) != 0) {
    refuse(path, "bad magic " + shown(header_.magic, sizeof header_.magic) + " (expected " +
                     shown(kCaptureMagic, sizeof kCaptureMagic) + ")");
  }
  if (header_.version == 1) {
    refuse(path, "version 1 (no checksums, no level count in the header), this build reads version " +
                     std::to_string(kCaptureVersion) +
                     ": convert the source data again (tickinfer-replay DATA "
                     "--write-capture FILE)");
  }
  if (header_.version != kCaptureVersion) {
    refuse(path, "version " + std::to_string(header_.version) + ", this build reads version " +
                     std::to_string(kCaptureVersion));
  }
  if (header_.record_size != sizeof(Event)) {
    refuse(path, "record size " + std::to_string(header_.record_size) + ", this build's Event is " +
                     std::to_string(sizeof(Event)) + " bytes");
  }
  if (header_.record_count == kCaptureUnfinished) refuse(path, "unfinished (the writer never called finish())");
  if (header_.symbol_count > kCaptureMaxSymbols || header_.header_bytes != header_bytes_for(header_.symbol_count)) {
    refuse(path, "damaged header (" + std::to_string(header_.symbol_count) + " symbols but " +
                     std::to_string(header_.header_bytes) + " header bytes)");
  }
  if (header_.block_records == 0 || header_.lobster_levels > kCaptureMaxLevels) {
    refuse(path, "damaged header (" + std::to_string(header_.block_records) + " records per block, " +
                     std::to_string(header_.lobster_levels) + " LOBSTER levels)");
  }
  if (file_size < header_.header_bytes) {
    refuse(path, "truncated symbol table (" + std::to_string(file_size) + " of " +
                     std::to_string(header_.header_bytes) + " header bytes)");
  }
  // The sizes the header implies, in 64 bits with no overflow: record_count is bounded by the file first.
  const std::uint64_t payload = file_size - header_.header_bytes;
  if (header_.record_count > payload / sizeof(Event)) {
    refuse(path, "truncated: the header says " + std::to_string(header_.record_count) + " records, the file holds " +
                     std::to_string(payload / sizeof(Event)) + " (" + std::to_string(payload) + " bytes)");
  }
  const std::uint64_t blocks = block_count(header_.record_count, header_.block_records);
  const std::uint64_t expected = header_.record_count * sizeof(Event) + blocks * sizeof(std::uint32_t);
  if (payload != expected) {
    refuse(path, "the header says " + std::to_string(header_.record_count) + " records and " + std::to_string(blocks) +
                     " block checksums (" + std::to_string(expected) + " bytes after the header), the file has " +
                     std::to_string(payload));
  }
  std::vector<char> head(header_.header_bytes);
  if (!read_at(file.fd, head.data(), head.size(), 0)) refuse(path, "cannot read the symbol table");
  {
    CaptureHeader zeroed = header_;
    zeroed.header_crc = 0;
    std::memcpy(head.data(), &zeroed, sizeof zeroed);
    const std::uint32_t crc = detail::crc32c(head.data(), head.size());
    if (crc != header_.header_crc) {
      refuse(path, "header and symbol table (bytes 0.." + std::to_string(head.size()) +
                       ") fail their CRC32C check (stored " + hex(header_.header_crc) + ", computed " + hex(crc) + ")");
    }
  }
  symbols_.reserve(header_.symbol_count);
  for (std::uint32_t i = 0; i < header_.symbol_count; ++i) {
    CaptureSymbol entry;
    std::memcpy(&entry, head.data() + sizeof(CaptureHeader) + i * sizeof(CaptureSymbol), sizeof entry);
    const void* nul = std::memchr(entry.name, '\0', sizeof entry.name);
    if (nul == nullptr) refuse(path, "symbol " + std::to_string(i) + " has an unterminated name");
    symbols_.push_back(SymbolInfo{entry.id, std::string(entry.name), entry.price_scale, entry.qty_scale});
  }

  source_ = ByteSource::map_file(path, prefault);
  const auto bytes = source_.bytes();
  if (bytes.size() != file_size) refuse(path, "the file changed size while it was opened");
  const char* records = bytes.data() + header_.header_bytes;
  const char* crcs = records + header_.record_count * sizeof(Event);
  for (std::uint64_t b = 0; b < blocks; ++b) {
    const std::uint64_t first = b * header_.block_records;
    const std::uint64_t n = std::min<std::uint64_t>(header_.block_records, header_.record_count - first);
    std::uint32_t stored;
    std::memcpy(&stored, crcs + b * sizeof stored, sizeof stored);
    const std::uint32_t crc = detail::crc32c(records + first * sizeof(Event), n * sizeof(Event));
    if (crc != stored) {
      const std::uint64_t begin = header_.header_bytes + first * sizeof(Event);
      refuse(path, "block " + std::to_string(b) + " (records " + std::to_string(first) + ".." +
                       std::to_string(first + n - 1) + ", bytes " + std::to_string(begin) + ".." +
                       std::to_string(begin + n * sizeof(Event) - 1) + ") fails its CRC32C check (stored " +
                       hex(stored) + ", computed " + hex(crc) + ")");
    }
  }
  // header_bytes is a multiple of 64 and mappings are page-aligned, so the records are aligned Events.
  // The mapping is read-only and outlives the span; Event is trivially copyable (an implicit-lifetime type).
  events_ =
      std::span<const Event>(reinterpret_cast<const Event*>(records), static_cast<std::size_t>(header_.record_count));
}

}  // namespace tickinfer::feed
