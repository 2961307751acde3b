#include "tickinfer/feed/capture.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

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

std::uint32_t header_bytes_for(std::size_t symbols) {
  return static_cast<std::uint32_t>(sizeof(CaptureHeader) + symbols * sizeof(CaptureSymbol));  // both 64-byte
}

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kParseError, path + ": not a usable tickinfer capture: " + why);
}

}  // namespace

CaptureWriter::CaptureWriter(const std::string& path, std::span<const SymbolInfo> symbols) : path_(path) {
  std::vector<char> head(header_bytes_for(symbols.size()), '\0');
  CaptureHeader header{};
  std::memcpy(header.magic, kCaptureMagic, sizeof header.magic);
  header.version = kCaptureVersion;
  header.record_size = sizeof(Event);
  header.record_count = kCaptureUnfinished;  // until finish() says otherwise
  header.symbol_count = static_cast<std::uint32_t>(symbols.size());
  header.header_bytes = header_bytes_for(symbols.size());
  std::memcpy(head.data(), &header, sizeof header);
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
    std::memcpy(head.data() + sizeof header + i * sizeof entry, &entry, sizeof entry);
  }
  data_offset_ = header.header_bytes;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(ErrorCode::kFileNotFound, path + ": cannot create: " + std::strerror(errno));
  try {
    write_all(fd_, head.data(), head.size(), 0, path_);
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
  write_all(fd_, buffer_.data(), buffer_used_, data_offset_ + flushed * sizeof(Event), path_);
  buffer_used_ = 0;
}

void CaptureWriter::finish() {
  flush();
  const std::uint64_t count = count_;
  write_all(fd_, reinterpret_cast<const char*>(&count), sizeof count, offsetof(CaptureHeader, record_count), path_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw Error(ErrorCode::kInvalidConfig, path_ + ": close failed: " + std::strerror(errno));
  }
  fd_ = -1;
}

CaptureReader::CaptureReader(const std::string& path, bool prefault) : source_(ByteSource::map_file(path, prefault)) {
  const auto bytes = source_.bytes();
  if (bytes.size() < sizeof(CaptureHeader)) {
    refuse(path, "truncated header (" + std::to_string(bytes.size()) + " of " + std::to_string(sizeof(CaptureHeader)) +
                     " bytes)");
  }
  std::memcpy(&header_, bytes.data(), sizeof header_);
  if (std::memcmp(header_.magic, kCaptureMagic, sizeof header_.magic) != 0) refuse(path, "bad magic");
  if (header_.version != kCaptureVersion) {
    refuse(path, "version " + std::to_string(header_.version) + ", this build reads version " +
                     std::to_string(kCaptureVersion));
  }
  if (header_.record_size != sizeof(Event)) {
    refuse(path, "record size " + std::to_string(header_.record_size) + ", this build's Event is " +
                     std::to_string(sizeof(Event)) + " bytes");
  }
  if (header_.record_count == kCaptureUnfinished) refuse(path, "unfinished (the writer never called finish())");
  if (header_.header_bytes != header_bytes_for(header_.symbol_count)) {
    refuse(path, "damaged header (" + std::to_string(header_.symbol_count) + " symbols but " +
                     std::to_string(header_.header_bytes) + " header bytes)");
  }
  if (bytes.size() < header_.header_bytes) refuse(path, "truncated symbol table");
  const std::uint64_t payload = bytes.size() - header_.header_bytes;
  if (header_.record_count > payload / sizeof(Event)) {
    refuse(path, "truncated: the header says " + std::to_string(header_.record_count) + " records, the file holds " +
                     std::to_string(payload / sizeof(Event)) + " (" + std::to_string(payload) + " bytes)");
  }
  if (payload != header_.record_count * sizeof(Event)) {
    refuse(path, std::to_string(payload - header_.record_count * sizeof(Event)) + " bytes past the last record");
  }
  symbols_.reserve(header_.symbol_count);
  for (std::uint32_t i = 0; i < header_.symbol_count; ++i) {
    CaptureSymbol entry;
    std::memcpy(&entry, bytes.data() + sizeof(CaptureHeader) + i * sizeof(CaptureSymbol), sizeof entry);
    const void* nul = std::memchr(entry.name, '\0', sizeof entry.name);
    if (nul == nullptr) refuse(path, "symbol " + std::to_string(i) + " has an unterminated name");
    symbols_.push_back(SymbolInfo{entry.id, std::string(entry.name), entry.price_scale, entry.qty_scale});
  }
  // header_bytes is a multiple of 64 and mappings are page-aligned, so the records are aligned Events.
  // The mapping is read-only and outlives the span; Event is trivially copyable (an implicit-lifetime type).
  events_ = std::span<const Event>(reinterpret_cast<const Event*>(bytes.data() + header_.header_bytes),
                                   static_cast<std::size_t>(header_.record_count));
}

}  // namespace tickinfer::feed
