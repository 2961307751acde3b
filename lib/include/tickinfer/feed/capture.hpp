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
///   header_bytes (a multiple of 64, so the records are aligned in the mapping) | Event x record_count |
///   uint32 CRC32C per block of block_records records (the last block may be short).
/// Checksums are CRC32C (Castagnoli): header_crc over the header_bytes first bytes with header_crc zeroed,
/// and one per block of records over the block's record bytes. What a replay must know about the records
/// (LOBSTER level count, top-of-book events) is in the header, never inferred from the records.
/// Version 1 files (no checksums, no level count) are refused: convert the source data again.
inline constexpr char kCaptureMagic[8] = {'T', 'I', 'C', 'K', 'C', 'A', 'P', '\0'};
inline constexpr std::uint32_t kCaptureVersion = 2;
/// record_count while a writer has not finished: readers refuse such a file.
inline constexpr std::uint64_t kCaptureUnfinished = ~std::uint64_t{0};
/// Records per checksum block written by CaptureWriter (80 KiB of Events).
inline constexpr std::uint32_t kCaptureBlockRecords = 1024;
/// Readers refuse a header that claims more symbols (BookSet's own limit) or LOBSTER levels.
inline constexpr std::uint32_t kCaptureMaxSymbols = 1u << 20;
inline constexpr std::uint32_t kCaptureMaxLevels = 1000;

/// CaptureHeader::flags bits.
/// Events carry their LOBSTER orderbook top (kFlagTopOfBook): feed::convert_to_capture of a LobsterReader
/// with an orderbook file; a replay checks a level-1 book against it.
inline constexpr std::uint32_t kCaptureTopOfBook = 1u << 0;

struct CaptureHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t record_size;  // sizeof(Event) of the writer
  std::uint64_t record_count;
  std::uint32_t symbol_count;
  std::uint32_t header_bytes;    // offset of the first record
  std::uint32_t lobster_levels;  // levels of the LOBSTER "sync quote" rows after each message; 0: none
  std::uint32_t flags;           // kCaptureTopOfBook
  std::uint32_t block_records;   // records per checksum block
  std::uint32_t header_crc;      // CRC32C of the header_bytes first bytes, this field zeroed
  std::uint64_t reserved[2];
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

/// What the header says about the records, written by whoever converts the data.
struct CaptureContents {
  std::uint32_t lobster_levels = 0;  // LOBSTER rows follow each message as that many sync quotes
  std::uint32_t flags = 0;           // kCaptureTopOfBook
};

/// Writes a capture: the symbol table up front, then events through a fixed buffer (no allocation per
/// event). finish() writes the record count; a file left unfinished is refused by CaptureReader.
/// Not thread-safe.
class CaptureWriter {
 public:
  /// Throws Error kInvalidConfig (symbol name too long, too many symbols or levels) or kFileNotFound
  /// (cannot create the file).
  CaptureWriter(const std::string& path, std::span<const SymbolInfo> symbols, CaptureContents contents = {});
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
  /// Flushes, writes the block checksums, then the header with the record count and its checksum, closes.
  /// Throws Error on I/O failure.
  void finish();
  std::uint64_t count() const noexcept { return count_; }

 private:
  void flush();

  int fd_ = -1;
  std::string path_;
  std::vector<char> head_;         // header + symbol table + padding, rewritten by finish()
  std::uint64_t data_offset_ = 0;  // header_bytes: where record 0 goes
  std::vector<std::uint32_t> block_crcs_;
  std::uint32_t block_crc_ = 0;   // CRC32C of the records of the block being filled
  std::uint32_t block_fill_ = 0;  // records in it
  std::vector<char> buffer_;
  std::size_t buffer_used_ = 0;
  std::uint64_t count_ = 0;
};

/// Maps a capture and hands out its records in place. The header and symbol table are read and checked
/// (sizes against the file's, checksum) before anything is mapped; every block's checksum is checked before
/// the constructor returns. Throws Error (kFileNotFound, or kParseError "PATH: not a usable tickinfer
/// capture: REASON": short or damaged header, bad magic, other version, other record size, unfinished,
/// fewer/more bytes than the header says, or a checksum mismatch naming the block's records and byte range).
/// Thread-safe after construction (read-only).
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
