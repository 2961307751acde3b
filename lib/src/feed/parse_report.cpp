#include "tickinfer/feed/parse_report.hpp"

#include <utility>

#include "tickinfer/error.hpp"

namespace tickinfer::feed {

const char* to_string(ParseIssue issue) noexcept {
  switch (issue) {
    case ParseIssue::kColumnCount:
      return "column_count";
    case ParseIssue::kBadNumber:
      return "bad_number";
    case ParseIssue::kBadValue:
      return "bad_value";
    case ParseIssue::kUnknownMessageType:
      return "unknown_message_type";
    case ParseIssue::kBadLength:
      return "bad_length";
    case ParseIssue::kTruncated:
      return "truncated";
    case ParseIssue::kOutOfOrderTimestamp:
      return "out_of_order_timestamp";
    case ParseIssue::kCrossedBook:
      return "crossed_book";
    case ParseIssue::kStreamLost:
      return "stream_lost";
    case ParseIssue::kCount:
      break;
  }
  return "unknown";
}

std::string ParseIssueReport::message() const {
  std::string s = file;
  s += byte_offset ? "@" : ":";
  s += std::to_string(where);
  s += ": ";
  s += to_string(reason);
  if (!detail.empty()) {
    s += ": ";
    s += detail;
  }
  return s;
}

void merge(ParseStats& into, const ParseStats& from) {
  into.records += from.records;
  into.events += from.events;
  for (std::size_t i = 0; i < kParseIssueCount; ++i) into.issues[i] += from.issues[i];
  for (const auto& r : from.first_issues) {
    if (into.first_issues.size() < ParseStats::kMaxKeptReports || r.reason == ParseIssue::kStreamLost)
      into.first_issues.push_back(r);
  }
}

void report_issue(ParseStats& stats, ParsePolicy policy, ParseIssueReport report) {
  const auto index = static_cast<std::size_t>(report.reason);
  if (index < kParseIssueCount) ++stats.issues[index];
  // The stream-lost report ends a stream, so it is kept past the limit (once): it says where reading stopped.
  const bool keep = stats.first_issues.size() < ParseStats::kMaxKeptReports ||
                    (report.reason == ParseIssue::kStreamLost && stats.count(ParseIssue::kStreamLost) == 1);
  if (policy == ParsePolicy::kStop) {
    const std::string text = report.message();
    if (keep) stats.first_issues.push_back(std::move(report));
    throw Error(ErrorCode::kParseError, text);
  }
  if (keep) stats.first_issues.push_back(std::move(report));
}

}  // namespace tickinfer::feed
