#include "tickinfer/feed/tardis.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include "feed/text_scan.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::feed {
namespace {

constexpr std::string_view kTradesHeader = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";
constexpr std::string_view kQuotesHeader =
    "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount";
constexpr const char* kTradeFields[] = {"exchange", "symbol", "timestamp", "local_timestamp",
                                        "id",       "side",   "price",     "amount"};
constexpr const char* kQuoteFields[] = {"exchange",   "symbol",    "timestamp", "local_timestamp",
                                        "ask_amount", "ask_price", "bid_price", "bid_amount"};

std::int64_t pow10(int n) {
  std::int64_t v = 1;
  for (int i = 0; i < n; ++i) v *= 10;
  return v;
}

}  // namespace

TardisReader TardisReader::open(const std::string& path, TardisOptions options) {
  return TardisReader(ByteSource::map_file(path), options);
}

TardisReader::TardisReader(ByteSource source, TardisOptions options) : source_(std::move(source)), options_(options) {
  if (options_.price_decimals < 0 || options_.price_decimals > 18 || options_.qty_decimals < 0 ||
      options_.qty_decimals > 18) {
    throw Error(ErrorCode::kInvalidConfig, source_.name() + ": decimals must be within 0..18");
  }
  const auto bytes = source_.bytes();
  const detail::Line header = detail::next_line(bytes.data(), bytes.data() + bytes.size());
  const std::string_view text(header.begin, static_cast<std::size_t>(header.end - header.begin));
  if (text == kTradesHeader) {
    schema_ = Schema::kTrades;
  } else if (text == kQuotesHeader) {
    schema_ = Schema::kQuotes;
  } else {
    throw Error(ErrorCode::kParseError, source_.name() + ":1: not a Tardis trades or quotes header: " +
                                            detail::excerpt(header.begin, header.end));
  }
  pos_ = header.next;
  end_ = bytes.data() + bytes.size();
}

bool TardisReader::fail(ParseIssue issue, std::string detail) {
  report_issue(stats_, options_.policy, ParseIssueReport{issue, source_.name(), line_, false, std::move(detail)});
  return false;
}

bool TardisReader::symbol_id(std::string_view name, std::uint32_t& id) {
  // Files hold one symbol or long runs of one, so the previous line's symbol is checked first.
  if (last_symbol_ < names_.size() && names_[last_symbol_] == name) {
    id = options_.first_symbol_id + static_cast<std::uint32_t>(last_symbol_);
    return true;
  }
  std::size_t i = 0;
  while (i < names_.size() && names_[i] != name) ++i;
  if (i == names_.size()) {
    // Both bounds keep memory and the lookup bounded on arbitrary input; scan_symbols() applies the same.
    if (name.size() > kTardisMaxSymbolName) {
      return fail(ParseIssue::kBadValue, "symbol of " + std::to_string(name.size()) + " bytes (at most " +
                                             std::to_string(kTardisMaxSymbolName) + ")");
    }
    if (names_.size() >= kTardisMaxSymbols) {
      return fail(ParseIssue::kBadValue, "symbol '" + std::string(name) + "': more than " +
                                             std::to_string(kTardisMaxSymbols) + " distinct symbols");
    }
    names_.emplace_back(name);  // a new symbol: the only allocation, once per symbol
  }
  last_symbol_ = i;
  id = options_.first_symbol_id + static_cast<std::uint32_t>(i);
  return true;
}

bool TardisReader::parse_line(const char* begin, const char* end, bool last_line, Event& out) {
  if (begin == end) return fail(ParseIssue::kColumnCount, "empty line");
  detail::LineCursor c{begin, end};
  std::string_view exchange, symbol, side;
  std::int64_t ts = 0, local_ts = 0;
  out = Event{};
  bool ok = c.text(exchange) && c.text(symbol);
  // Ids are assigned as soon as a symbol field exists, bad line or not, the way scan_symbols() sees them.
  if (ok && !symbol_id(symbol, out.symbol)) return false;
  ok = ok && c.integer(ts) && c.integer(local_ts);
  if (schema_ == Schema::kTrades) {
    ok = ok && c.integer(out.order_id) && c.text(side) && c.fixed(out.price, options_.price_decimals) &&
         c.fixed(out.qty, options_.qty_decimals, true);
  } else {
    ok = ok && c.fixed(out.ask_qty, options_.qty_decimals, false, true) &&
         c.fixed(out.ask_price, options_.price_decimals, false, true) &&
         c.fixed(out.bid_price, options_.price_decimals, false, true) &&
         c.fixed(out.bid_qty, options_.qty_decimals, true, true);
  }
  if (!ok) {
    if (last_line) return fail(ParseIssue::kTruncated, "file ends inside " + detail::excerpt(begin, end));
    const bool number = c.error == detail::FieldError::kBadNumber;
    return fail(number ? ParseIssue::kBadNumber : ParseIssue::kColumnCount,
                detail::describe_field(c, schema_ == Schema::kTrades ? kTradeFields : kQuoteFields, 8) +
                    (number                                  ? ": not a number (or more decimals than the scale keeps)"
                     : c.error == detail::FieldError::kExtra ? ": too many fields"
                                                             : ": too few fields") +
                    " in " + detail::excerpt(begin, end));
  }
  const std::int64_t us = options_.use_local_timestamp ? local_ts : ts;
  if (us < 0 || __builtin_mul_overflow(us, std::int64_t{1000}, &out.ts_ns)) {
    return fail(ParseIssue::kBadValue, "timestamp " + std::to_string(us) + " us is out of range");
  }
  if (schema_ == Schema::kTrades) {
    out.kind = EventKind::kTrade;
    // Tardis names the aggressor; Event::side names the passive order (see EventKind::kTrade).
    if (side == "buy") {
      out.side = Side::kSell;
      out.aux = 'B';
    } else if (side == "sell") {
      out.side = Side::kBuy;
      out.aux = 'S';
    } else if (side != "unknown") {
      return fail(ParseIssue::kBadValue, "side '" + std::string(side) + "' is not buy, sell or unknown");
    }
    if (out.qty <= 0 || out.price <= 0) return fail(ParseIssue::kBadValue, "non-positive price or amount");
  } else {
    out.kind = EventKind::kQuote;
    if (out.ask_qty < 0 || out.bid_qty < 0) return fail(ParseIssue::kBadValue, "negative amount");
    if (out.ask_qty > 0 && out.bid_qty > 0 && out.bid_price >= out.ask_price) {
      return fail(ParseIssue::kCrossedBook, "bid " + std::to_string(out.bid_price) + " >= ask " +
                                                std::to_string(out.ask_price) + " (scaled by 10^" +
                                                std::to_string(options_.price_decimals) + ")");
    }
  }
  if (out.ts_ns < last_ts_) {
    // Reported, then handed out all the same (under kStop this throws): a quote is a book update.
    fail(ParseIssue::kOutOfOrderTimestamp,
         "time " + std::to_string(out.ts_ns) + " ns after " + std::to_string(last_ts_) + " ns");
  }
  return true;
}

bool TardisReader::next(Event& out) {
  while (pos_ != end_) {
    const detail::Line line = detail::next_line(pos_, end_);
    pos_ = line.next;
    ++line_;
    ++stats_.records;
    if (parse_line(line.begin, line.end, !line.terminated, out)) {
      last_ts_ = std::max(last_ts_, out.ts_ns);  // one late line is one issue, not a cascade
      ++stats_.events;
      return true;
    }
  }
  return false;
}

std::size_t TardisReader::read(std::span<Event> out) {
  std::size_t n = 0;
  while (n < out.size() && next(out[n])) ++n;
  return n;
}

std::vector<SymbolInfo> TardisReader::symbols() const {
  std::vector<SymbolInfo> out;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    out.push_back(SymbolInfo{options_.first_symbol_id + static_cast<std::uint32_t>(i), names_[i],
                             pow10(options_.price_decimals), pow10(options_.qty_decimals)});
  }
  return out;
}

std::vector<SymbolInfo> TardisReader::scan_symbols() const {
  // Same rule as next(): a symbol gets its id on the first line with a symbol field, good or bad.
  std::vector<std::string> names;
  const auto bytes = source_.bytes();
  const char* end = bytes.data() + bytes.size();
  for (const char* p = detail::next_line(bytes.data(), end).next; p != end;) {
    const detail::Line line = detail::next_line(p, end);
    p = line.next;
    detail::LineCursor c{line.begin, line.end};
    std::string_view exchange, symbol;
    if (!(c.text(exchange) && c.text(symbol))) continue;
    bool seen = false;
    for (const auto& n : names) seen = seen || n == symbol;
    if (!seen && symbol.size() <= kTardisMaxSymbolName && names.size() < kTardisMaxSymbols) names.emplace_back(symbol);
  }
  std::vector<SymbolInfo> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out.push_back(SymbolInfo{options_.first_symbol_id + static_cast<std::uint32_t>(i), names[i],
                             pow10(options_.price_decimals), pow10(options_.qty_decimals)});
  }
  return out;
}

}  // namespace tickinfer::feed
