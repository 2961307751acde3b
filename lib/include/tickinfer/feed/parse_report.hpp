#pragma once
// How feed readers treat bad input: a policy (skip or stop), counters by reason, and located reports.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tickinfer::feed {

/// kSkip: count the bad record, keep its report, drop it and go on. kStop: throw tickinfer::Error
/// (ErrorCode::kParseError) whose message is ParseIssueReport::message(); a later next() resumes after it.
/// Two issues are not records to drop and behave the same under both policies except for the throw:
/// kOutOfOrderTimestamp (the record is still handed out: dropping a book update would desync the book for
/// every later message of that order) and kStreamLost (the reader ends the stream there).
enum class ParsePolicy : std::uint8_t { kSkip, kStop };

enum class ParseIssue : std::uint8_t {
  kColumnCount,          // a CSV line has too few or too many fields
  kBadNumber,            // a field is not a number, overflows, or has more decimals than the scale keeps
  kBadValue,             // a field parses but is out of domain (side, direction, trading-status price)
  kUnknownMessageType,   // ITCH type byte or LOBSTER event type the spec does not define
  kBadLength,            // an ITCH message length differs from the spec's length for its type
  kTruncated,            // the input ends inside a record, or paired files differ in length
  kOutOfOrderTimestamp,  // a timestamp earlier than the previous accepted record's
  kCrossedBook,          // a quote or book row with best bid >= best ask
  kStreamLost,           // framing is lost (too many consecutive framing errors): the reader stops there
  kCount
};

inline constexpr std::size_t kParseIssueCount = static_cast<std::size_t>(ParseIssue::kCount);

/// Stable name, e.g. "bad_number" (used in messages and as a metrics label).
const char* to_string(ParseIssue issue) noexcept;

/// One bad record, located by line (text formats) or byte offset (binary formats).
struct ParseIssueReport {
  ParseIssue reason = ParseIssue::kCount;
  std::string file;
  std::uint64_t where = 0;  // 1-based line, or 0-based byte offset when byte_offset
  bool byte_offset = false;
  std::string detail;
  /// "file:LINE: reason: detail" or "file@OFFSET: reason: detail".
  std::string message() const;
};

struct ParseStats {
  std::uint64_t records = 0;  // lines or messages looked at, good or bad
  std::uint64_t events = 0;   // events handed out
  std::array<std::uint64_t, kParseIssueCount> issues{};
  /// The first kMaxKeptReports reports in input order, plus the kStreamLost report when there is one (so
  /// at most kMaxKeptReports + 1 whatever the input): memory stays bounded, counts by kind are in issues.
  std::vector<ParseIssueReport> first_issues;

  static constexpr std::size_t kMaxKeptReports = 16;

  std::uint64_t count(ParseIssue issue) const noexcept { return issues[static_cast<std::size_t>(issue)]; }
  std::uint64_t total_issues() const noexcept {
    std::uint64_t n = 0;
    for (auto c : issues) n += c;
    return n;
  }
  /// The reader stopped early because it lost the framing (kStreamLost).
  bool stream_lost() const noexcept { return count(ParseIssue::kStreamLost) != 0; }
};

/// Adds `from` to `into` (counts, and reports while `into` keeps fewer than the bound): several readers
/// of one replay give one account.
void merge(ParseStats& into, const ParseStats& from);

/// Counts `report` in `stats` and keeps it; under kStop throws it as a tickinfer::Error (kParseError).
/// Off the hot path: only called for bad input.
void report_issue(ParseStats& stats, ParsePolicy policy, ParseIssueReport report);

}  // namespace tickinfer::feed
