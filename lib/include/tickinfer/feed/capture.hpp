#pragma once
// tickinfer's binary capture: a versioned header, a symbol table, then Events byte for byte, mmap-read.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "tickinfer/feed/byte_source.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/feed/symbol.hpp"

namespace tickinfer::feed {

/// File layout, all little-endian:
///   CaptureHeader (64 bytes) | CaptureSymbol x symbol_count (64 bytes each) | zero padding up to
///   header_bytes (a multiple of 64, so the records are aligned in the mapping) | Event x record_count.
inline constexpr char kCaptureMagic[8] = {'T', 'I', 'C', 'K', 'C', 'A', 'P', '\0'};
inline constexpr std::uint32_t kCaptureVersion = 1;
/// record_count while a writer has not finished: readers refuse such a file.
inline constexpr std::uint64_t kCaptureUnfinished = ~std::uint64_t{0};

struct CaptureHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t record_size;  // sizeof(Event) of the writer
  std::uint64_t record_count;
  std::uint32_t symbol_count;
  std::uint32_t header_bytes;  // offset of the first record
  std::uint64_t reserved[4];
};
static_assert(sizeof(CaptureHeader) == 64, "capture header layout is part of the file format");

struct CaptureSymbol {
  std::uint32_t id;
  std::uint32_t reserved;
  std::int64_t price_scale;
  std::int64_t qty_scale;
  char name[40];  // NUL-terminated
};
static_assert(sizeof(CaptureSymbol) == 64, "capture symbol layout is part of the file format");

/// Writes a capture: the symbol table up front, then events through a fixed buffer (no allocation per
/// event). finish() writes the record count; a file left unfinished is refused by CaptureReader.
/// Not thread-safe.
class CaptureWriter {
 public:
  /// Throws Error kInvalidConfig (symbol name too long) or kFileNotFound (cannot create the file).
  CaptureWriter(const std::string& path, std::span<const SymbolInfo> symbols);
  CaptureWriter(const CaptureWriter&) = delete;
  CaptureWriter& operator=(const CaptureWriter&) = delete;
  ~CaptureWriter();  // closes without finishing when finish() was not called

  void append(const Event& event) {
    if (buffer_used_ + sizeof(Event) > buffer_.size()) flush();
    std::memcpy(buffer_.data() + buffer_used_, &event, sizeof(Event));
    buffer_used_ += sizeof(Event);
    ++count_;
  }
  void append(std::span<const Event> events) {
    for (const auto& e : events) append(e);
  }
  /// Flushes, writes the record count, closes. Throws Error on I/O failure.
  void finish();
  std::uint64_t count() const noexcept { return count_; }

 private:
  void flush();

  int fd_ = -1;
  std::string path_;
  std::uint64_t data_offset_ = 0;  // header_bytes: where record 0 goes
  std::vector<char> buffer_;
  std::size_t buffer_used_ = 0;
  std::uint64_t count_ = 0;
};

/// Maps a capture and hands out its records in place. Throws Error (kFileNotFound, or kParseError with
/// the reason: short or damaged header, bad magic, other version, other record size, unfinished, or
/// fewer/more record bytes than the header says). Thread-safe after construction (read-only).
class CaptureReader {
 public:
  /// `prefault`: map every page up front (see ByteSource::map_file), the right call before a replay.
  explicit CaptureReader(const std::string& path, bool prefault = true);

  std::span<const Event> events() const noexcept { return events_; }
  const std::vector<SymbolInfo>& symbols() const noexcept { return symbols_; }
  const CaptureHeader& header() const noexcept { return header_; }

 private:
  ByteSource source_;
  CaptureHeader header_{};
  std::vector<SymbolInfo> symbols_;
  std::span<const Event> events_;
};

}  // namespace tickinfer::feed
