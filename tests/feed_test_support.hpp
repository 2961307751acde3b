#pragma once
// Shared by the feed tests: where the recorded market data lives, scratch directories, a spec-following
// ITCH 5.0 encoder for hand-built order flow, and a helper that expects a tickinfer::Error.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tickinfer/error.hpp"

namespace tickinfer::feed::testing {

/// Real recorded data is read where the workspace keeps it, never copied into the repository.
inline std::filesystem::path data_dir() {
  return std::filesystem::path(TICKINFER_SOURCE_DIR) / ".." / "shared" / "data";
}

/// GTEST_SKIPs (from the calling test) when `path` is missing.
#define TICKINFER_REQUIRE_DATA(path)                                                                       \
  do {                                                                                                     \
    if (!std::filesystem::exists(path)) {                                                                  \
      GTEST_SKIP() << "recorded market data not found at " << (path)                                       \
                   << " (expected under ${TICKINFER_SOURCE_DIR}/../shared/data; see its SOURCE.md files)"; \
    }                                                                                                      \
  } while (0)

inline std::filesystem::path amzn_messages() {
  return data_dir() / "lobster-amzn-l1" / "AMZN_2012-06-21_34200000_57600000_message_1.csv";
}
inline std::filesystem::path amzn_orderbook() {
  return data_dir() / "lobster-amzn-l1" / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv";
}
inline std::filesystem::path goog_zip() {
  return data_dir() / "lobster-goog-l10" / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip";
}
inline std::filesystem::path itch_fixture() { return data_dir() / "itch50-nasdaq-directory-fixture" / "sample.itch"; }
inline std::filesystem::path tardis_trades() {
  return data_dir() / "tardis-binance-futures-btcusdt" / "tardis_trades.csv";
}
inline std::filesystem::path tardis_quotes() {
  return data_dir() / "tardis-binance-futures-btcusdt" / "tardis_quotes.csv";
}

/// A fresh directory removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tickinfer_feed_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// Creates `path` as a sparse file of `size` zero bytes (ftruncate: no disk, no memory).
inline void sparse_file(const std::string& path, std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  const int rc = ::ftruncate(fd, static_cast<off_t>(size));
  ::close(fd);
  if (rc != 0) throw std::runtime_error("ftruncate failed on " + path);
}

/// The most memory this process has held resident so far, in bytes (getrusage's high-water mark, which
/// counts the pages of mapped files too: mapping and touching a file shows up here, MAP_POPULATE included).
inline std::uint64_t peak_rss_bytes() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
}

/// Runs `f`, expects a tickinfer::Error with `code`, and returns its message ("" when none was thrown).
inline std::string expect_error(ErrorCode code, const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected tickinfer::Error, got: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected tickinfer::Error, nothing was thrown";
  return {};
}

/// Builds ITCH 5.0 BinaryFILE bytes message by message, per the spec's layouts (big-endian fields,
/// 6-byte timestamps, space-padded alphanumerics, Price(4) as 4-byte integers).
class ItchEncoder {
 public:
  /// Starts a message: type, stock locate, tracking number, timestamp. end() closes it.
  ItchEncoder& begin(char type, std::uint16_t locate, std::int64_t ts_ns, std::uint16_t tracking = 0) {
    msg_.clear();
    u8(static_cast<std::uint8_t>(type));
    be(locate, 2);
    be(tracking, 2);
    be(static_cast<std::uint64_t>(ts_ns), 6);
    return *this;
  }
  ItchEncoder& u8(std::uint8_t v) {
    msg_.push_back(static_cast<char>(v));
    return *this;
  }
  ItchEncoder& ch(char c) { return u8(static_cast<std::uint8_t>(c)); }
  ItchEncoder& be(std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) msg_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  ItchEncoder& alpha(std::string_view s, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) msg_.push_back(i < s.size() ? s[i] : ' ');
    return *this;
  }
  /// Frames the message with its 2-byte big-endian length.
  ItchEncoder& end() {
    out_.push_back(static_cast<char>((msg_.size() >> 8) & 0xff));
    out_.push_back(static_cast<char>(msg_.size() & 0xff));
    out_ += msg_;
    return *this;
  }

  // Whole messages used by the book tests.
  ItchEncoder& system_event(std::int64_t ts, char code) { return begin('S', 0, ts).ch(code).end(); }
  ItchEncoder& directory(std::uint16_t locate, std::int64_t ts, std::string_view stock) {
    return begin('R', locate, ts)
        .alpha(stock, 8)
        .ch('Q')
        .ch('N')
        .be(100, 4)
        .ch('N')
        .ch('C')
        .alpha("Z", 2)
        .ch('P')
        .ch(' ')
        .ch('N')
        .ch('1')
        .ch('N')
        .be(0, 4)
        .ch('N')
        .end();
  }
  ItchEncoder& add(std::uint16_t locate, std::int64_t ts, std::uint64_t ref, char side, std::uint32_t shares,
                   std::string_view stock, std::uint32_t price) {
    return begin('A', locate, ts).be(ref, 8).ch(side).be(shares, 4).alpha(stock, 8).be(price, 4).end();
  }
  ItchEncoder& add_mpid(std::uint16_t locate, std::int64_t ts, std::uint64_t ref, char side, std::uint32_t shares,
                        std::string_view stock, std::uint32_t price, std::string_view mpid) {
    return begin('F', locate, ts).be(ref, 8).ch(side).be(shares, 4).alpha(stock, 8).be(price, 4).alpha(mpid, 4).end();
  }
  ItchEncoder& executed(std::uint16_t locate, std::int64_t ts, std::uint64_t ref, std::uint32_t shares,
                        std::uint64_t match) {
    return begin('E', locate, ts).be(ref, 8).be(shares, 4).be(match, 8).end();
  }
  ItchEncoder& executed_with_price(std::uint16_t locate, std::int64_t ts, std::uint64_t ref, std::uint32_t shares,
                                   std::uint64_t match, char printable, std::uint32_t price) {
    return begin('C', locate, ts).be(ref, 8).be(shares, 4).be(match, 8).ch(printable).be(price, 4).end();
  }
  ItchEncoder& cancel(std::uint16_t locate, std::int64_t ts, std::uint64_t ref, std::uint32_t shares) {
    return begin('X', locate, ts).be(ref, 8).be(shares, 4).end();
  }
  ItchEncoder& del(std::uint16_t locate, std::int64_t ts, std::uint64_t ref) {
    return begin('D', locate, ts).be(ref, 8).end();
  }
  ItchEncoder& replace(std::uint16_t locate, std::int64_t ts, std::uint64_t ref, std::uint64_t new_ref,
                       std::uint32_t shares, std::uint32_t price) {
    return begin('U', locate, ts).be(ref, 8).be(new_ref, 8).be(shares, 4).be(price, 4).end();
  }
  ItchEncoder& trade(std::uint16_t locate, std::int64_t ts, std::uint64_t ref, char side, std::uint32_t shares,
                     std::string_view stock, std::uint32_t price, std::uint64_t match) {
    return begin('P', locate, ts).be(ref, 8).ch(side).be(shares, 4).alpha(stock, 8).be(price, 4).be(match, 8).end();
  }
  /// Appends raw bytes (for damaged input).
  ItchEncoder& raw(std::string_view bytes) {
    out_ += bytes;
    return *this;
  }

  const std::string& bytes() const { return out_; }
  std::size_t size() const { return out_.size(); }

 private:
  std::string msg_;
  std::string out_;
};

}  // namespace tickinfer::feed::testing
