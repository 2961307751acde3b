#include "tickinfer/feed/lobster.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "feed/text_scan.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::feed {
namespace {

constexpr const char* kMessageFields[] = {"time", "type", "order_id", "size", "price", "direction"};

// "dir/AMZN_2012-06-21_..._message_1.csv" or "x.zip!GOOG_..." -> "AMZN" / "GOOG".
std::string ticker_of(const std::string& path) {
  const auto slash = path.find_last_of("/!");
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return base.substr(0, base.find('_'));
}

ParseIssue issue_of(detail::FieldError e) {
  return e == detail::FieldError::kBadNumber ? ParseIssue::kBadNumber : ParseIssue::kColumnCount;
}

const char* what_of(detail::FieldError e) {
  switch (e) {
    case detail::FieldError::kMissing:
      return "too few fields";
    case detail::FieldError::kExtra:
      return "too many fields";
    default:
      return "not a number";
  }
}

}  // namespace

LobsterReader LobsterReader::open(const std::string& message_path, const std::string& orderbook_path,
                                  LobsterOptions options) {
  std::optional<ByteSource> orderbook;
  if (!orderbook_path.empty()) orderbook = ByteSource::map_file(orderbook_path);
  return LobsterReader(ByteSource::map_file(message_path), std::move(orderbook), std::move(options));
}

LobsterReader LobsterReader::open_zip(const std::string& zip_path, LobsterOptions options) {
  std::string message, orderbook;
  for (const auto& name : ByteSource::zip_members(zip_path)) {
    const bool csv = name.size() > 4 && name.compare(name.size() - 4, 4, ".csv") == 0;
    if (csv && name.find("_message_") != std::string::npos) message = name;
    if (csv && name.find("_orderbook_") != std::string::npos) orderbook = name;
  }
  if (message.empty()) throw Error(ErrorCode::kFileNotFound, zip_path + ": no *_message_*.csv member");
  std::optional<ByteSource> book;
  if (!orderbook.empty()) book = ByteSource::from_zip_member(zip_path, orderbook);
  return LobsterReader(ByteSource::from_zip_member(zip_path, message), std::move(book), std::move(options));
}

LobsterReader::LobsterReader(ByteSource messages, std::optional<ByteSource> orderbook, LobsterOptions options)
    : messages_(std::move(messages)), orderbook_(std::move(orderbook)), options_(std::move(options)) {
  if (options_.symbol_name.empty()) options_.symbol_name = ticker_of(messages_.name());
  const auto msg = messages_.bytes();
  msg_pos_ = msg.data();
  msg_end_ = msg.data() + msg.size();
  if (!orderbook_) return;
  const auto book = orderbook_->bytes();
  book_pos_ = book.data();
  book_end_ = book.data() + book.size();
  // The level count is a property of the file: take it from the first row, once.
  const detail::Line first = detail::next_line(book_pos_, book_end_);
  const auto columns = static_cast<std::size_t>(std::count(first.begin, first.end, ',')) + 1;
  if (first.begin == first.end || columns % 4 != 0) {
    throw Error(ErrorCode::kParseError, orderbook_->name() + ":1: orderbook row has " + std::to_string(columns) +
                                            " columns; LOBSTER writes 4 per level");
  }
  if (columns > 4 * kLobsterMaxLevels) {  // the row buffers are sized from this: never trust it unbounded
    throw Error(ErrorCode::kParseError, orderbook_->name() + ":1: orderbook row has " + std::to_string(columns) +
                                            " columns (" + std::to_string(columns / 4) + " levels); at most " +
                                            std::to_string(kLobsterMaxLevels) + " levels are read");
  }
  levels_ = columns / 4;
  row_.assign(columns, 0);
  scratch_.assign(columns, 0);
}

bool LobsterReader::fail(const ByteSource& file, ParseIssue issue, std::string detail) {
  report_issue(stats_, options_.policy, ParseIssueReport{issue, file.name(), cursor_line_, false, std::move(detail)});
  return false;
}

bool LobsterReader::parse_message(const char* begin, const char* end, bool last_line, Event& out) {
  if (begin == end) return fail(messages_, ParseIssue::kColumnCount, "empty line");
  detail::LineCursor c{begin, end};
  std::int64_t ts = 0, size = 0, price = 0;
  int type = 0, direction = 0;
  std::uint64_t id = 0;
  if (!(c.fixed(ts, 9) && c.integer(type) && c.integer(id) && c.integer(size) && c.integer(price) &&
        c.integer(direction, true))) {
    // A file cut mid-line shows up as a bad last line without its newline.
    if (last_line) return fail(messages_, ParseIssue::kTruncated, "file ends inside " + detail::excerpt(begin, end));
    return fail(
        messages_, issue_of(c.error),
        detail::describe_field(c, kMessageFields, 6) + ": " + what_of(c.error) + " in " + detail::excerpt(begin, end));
  }
  if (ts < 0) return fail(messages_, ParseIssue::kBadValue, "negative time in " + detail::excerpt(begin, end));
  if (size < 0) return fail(messages_, ParseIssue::kBadValue, "negative size in " + detail::excerpt(begin, end));
  if (direction != 1 && direction != -1) {
    return fail(messages_, ParseIssue::kBadValue, "direction " + std::to_string(direction) + " is not 1 or -1");
  }
  out = Event{};
  out.ts_ns = ts;
  out.symbol = options_.symbol_id;
  out.order_id = id;
  out.qty = size;
  out.price = price;
  out.side = direction == 1 ? Side::kBuy : Side::kSell;
  out.aux = static_cast<std::uint8_t>(type);
  switch (type) {
    case 1:
      out.kind = EventKind::kAdd;
      break;
    case 2:
      out.kind = EventKind::kCancel;
      break;
    case 3:
      out.kind = EventKind::kDelete;
      break;
    case 4:
      out.kind = EventKind::kExecute;
      break;
    case 5:
      out.kind = EventKind::kTrade;
      break;
    case 6:
      out.kind = EventKind::kCrossTrade;
      break;
    case 7: {
      // Halt rows carry the state in the price column: -1 halted, 0 quoting resumes, 1 trading resumes.
      static constexpr std::uint8_t kState[] = {'H', 'Q', 'T'};
      if (price < -1 || price > 1) {
        return fail(messages_, ParseIssue::kBadValue, "halt message with price " + std::to_string(price));
      }
      out.kind = EventKind::kTradingStatus;
      out.aux = kState[price + 1];
      out.side = Side::kNone;
      out.price = 0;
      break;
    }
    default:
      return fail(messages_, ParseIssue::kUnknownMessageType, "event type " + std::to_string(type));
  }
  return true;
}

bool LobsterReader::parse_row(const char* begin, const char* end, bool last_line) {
  detail::LineCursor c{begin, end};
  const std::size_t n = scratch_.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (!c.integer(scratch_[i], i + 1 == n)) {
      if (last_line) {
        return fail(*orderbook_, ParseIssue::kTruncated, "file ends inside " + detail::excerpt(begin, end));
      }
      return fail(*orderbook_, issue_of(c.error),
                  "column " + std::to_string(c.error_field + 1) + " of " + std::to_string(n) + ": " + what_of(c.error) +
                      " in " + detail::excerpt(begin, end));
    }
  }
  return true;
}

bool LobsterReader::next(Event& out) {
  while (msg_pos_ != msg_end_) {
    const detail::Line msg = detail::next_line(msg_pos_, msg_end_);
    msg_pos_ = msg.next;
    ++cursor_line_;
    ++stats_.records;
    detail::Line row{};
    if (orderbook_) {
      if (book_pos_ == book_end_) {
        msg_pos_ = msg_end_;  // no further message can be paired with a row
        end_checked_ = true;
        fail(*orderbook_, ParseIssue::kTruncated, "orderbook file ends before the message file");
        return false;
      }
      row = detail::next_line(book_pos_, book_end_);
      book_pos_ = row.next;
    }
    // Both lines of a pair are consumed before either is judged, so the files stay aligned.
    if (!parse_message(msg.begin, msg.end, !msg.terminated, out)) continue;
    if (orderbook_ && !parse_row(row.begin, row.end, !row.terminated)) continue;
    if (out.ts_ns < last_ts_) {
      // Reported, then handed out all the same (under kStop this throws): dropping a book update would desync
      // the book for every later message of that order.
      fail(messages_, ParseIssue::kOutOfOrderTimestamp,
           "time " + std::to_string(out.ts_ns) + " ns after " + std::to_string(last_ts_) + " ns");
    }
    if (orderbook_) {
      const std::int64_t ask = scratch_[0], bid = scratch_[2];
      if (ask != kLobsterEmptyAsk && bid != kLobsterEmptyBid && bid >= ask) {
        fail(*orderbook_, ParseIssue::kCrossedBook,
             "best bid " + std::to_string(bid) + " >= best ask " + std::to_string(ask));
        continue;
      }
      row_.swap(scratch_);
      out.flags |= kFlagTopOfBook;
      if (ask != kLobsterEmptyAsk) {
        out.ask_price = ask;
        out.ask_qty = row_[1];
      }
      if (bid != kLobsterEmptyBid) {
        out.bid_price = bid;
        out.bid_qty = row_[3];
      }
    }
    last_ts_ = std::max(last_ts_, out.ts_ns);  // one late message is one issue, not a cascade
    line_ = cursor_line_;
    ++stats_.events;
    return true;
  }
  if (!end_checked_) {
    end_checked_ = true;
    if (orderbook_ && book_pos_ != book_end_) {
      ++cursor_line_;
      fail(*orderbook_, ParseIssue::kTruncated, "message file ends before the orderbook file");
    }
  }
  return false;
}

std::size_t LobsterReader::read(std::span<Event> out) {
  std::size_t n = 0;
  while (n < out.size() && next(out[n])) ++n;
  return n;
}

SymbolInfo LobsterReader::symbol() const {
  return SymbolInfo{options_.symbol_id, options_.symbol_name, kLobsterPriceScale, 1};
}

}  // namespace tickinfer::feed
