#include "tickinfer/replay/source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "tickinfer/error.hpp"
#include "tickinfer/feed/capture.hpp"
#include "tickinfer/feed/itch.hpp"
#include "tickinfer/feed/lobster.hpp"
#include "tickinfer/feed/lobster_book.hpp"
#include "tickinfer/feed/tardis.hpp"

namespace tickinfer::replay {
namespace {

using feed::BookResult;
using feed::Event;
using feed::EventKind;
using feed::Side;

bool warns(BookResult r) noexcept {
  return r != BookResult::kOk && r != BookResult::kIgnored && r != BookResult::kCrossed;
}

bool book_event(const Event& e) noexcept { return feed::is_market_event(e); }

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

void expect_paths(const SourceOptions& o, std::size_t lo, std::size_t hi, const char* what) {
  if (o.paths.size() < lo || o.paths.size() > hi)
    throw Error(ErrorCode::kInvalidConfig, std::string(to_string(o.format)) + " replay takes " + what + ", got " +
                                               std::to_string(o.paths.size()) + " path(s)");
}

// A plain order book for feeds whose events apply directly (synthetic, ITCH, Tardis, non-LOBSTER captures).
struct PlainBook {
  explicit PlainBook(std::size_t expected_orders = 1 << 16) : book(0, expected_orders) {}

  feed::OrderBook book;
  SourceStats stats;

  void apply(const Event& e, Tick& tick) {
    tick.event = &e;
    tick.trade = features::classify_trade(e, book);  // before: an execution's side may live in the book
    if (warns(book.apply(e))) ++stats.book_warnings;
    tick.book = &book;
    ++stats.events;
  }
};

// LOBSTER's orderbook row is the book after its message (a level-N file never shows what happens deeper, so
// a book rebuilt from the messages drifts). The replayed book is therefore the row itself: both sides are
// replaced by the row's levels, best first up to the first empty placeholder, when they changed.
struct RowBook {
  feed::OrderBook book{0, 0};
  std::vector<feed::Level> scratch;

  explicit RowBook(std::size_t levels) { scratch.reserve(levels); }

  void set(std::span<const std::int64_t> row) {
    set_side(Side::kSell, row, 0, feed::kLobsterEmptyAsk);
    set_side(Side::kBuy, row, 2, feed::kLobsterEmptyBid);
  }
  // A level-1 top of book carried by the event itself (kFlagTopOfBook; qty 0 = side empty).
  void set(const Event& e) {
    const std::int64_t row[4] = {e.ask_qty != 0 ? e.ask_price : feed::kLobsterEmptyAsk, e.ask_qty,
                                 e.bid_qty != 0 ? e.bid_price : feed::kLobsterEmptyBid, e.bid_qty};
    set(row);
  }

 private:
  void set_side(Side side, std::span<const std::int64_t> row, std::size_t column, std::int64_t empty) {
    scratch.clear();
    for (std::size_t j = column; j + 1 < row.size(); j += 4) {
      if (row[j] == empty) break;
      scratch.push_back(feed::Level{row[j], row[j + 1], 0});
    }
    bool same = scratch.size() == book.depth(side);
    for (std::size_t j = 0; same && j < scratch.size(); ++j)
      same = book.level(side, j).price == scratch[j].price && book.level(side, j).qty == scratch[j].qty;
    if (!same) book.replace_side(side, scratch);
  }
};

// One book per symbol (Event::symbol is the symbol's index; a single-symbol feed's events all say 0).
class SyntheticSource final : public MarketSource {
 public:
  explicit SyntheticSource(const SyntheticOptions& o) : events_(generate_synthetic(o)), options_(o) {
    const std::size_t expected =
        o.symbols == 1 ? std::size_t{1} << 16 : std::clamp<std::size_t>(events_.size() / o.symbols, 64, 1 << 12);
    books_.reserve(o.symbols);
    for (std::uint32_t k = 0; k < o.symbols; ++k) books_.emplace_back(expected);
  }
  const Event* read() override { return next_ < events_.size() ? &events_[next_++] : nullptr; }
  void apply(Tick& tick) override {
    const Event& e = events_[next_ - 1];
    tick.key = e.symbol;
    books_[e.symbol].apply(e, tick);
  }
  feed::SymbolInfo symbol() const override { return symbol_info(0); }
  std::uint32_t symbol_count() const noexcept override { return options_.symbols; }
  feed::SymbolInfo symbol_info(std::uint32_t key) const override {
    return SyntheticFeed::symbol(key, options_.symbols);
  }
  std::uint64_t size_hint() const noexcept override { return events_.size(); }
  SourceStats stats() const override {
    SourceStats s;
    for (const PlainBook& b : books_) {
      s.events += b.stats.events;
      s.book_warnings += b.stats.book_warnings;
    }
    s.parse.records = s.parse.events = events_.size();
    return s;
  }
  std::string describe() const override {
    std::string text = "synthetic (seed " + std::to_string(options_.seed) + ", " + std::to_string(events_.size()) +
                       " events, " + std::to_string(static_cast<long long>(options_.rate_per_s)) + " events/s recorded";
    if (options_.symbols > 1) {
      char zipf[32];
      std::snprintf(zipf, sizeof zipf, "%g", options_.zipf);
      text.append(", ").append(std::to_string(options_.symbols)).append(" symbols, zipf ").append(zipf);
    }
    if (options_.burst_probability > 0) {
      char bursts[64];
      std::snprintf(bursts, sizeof bursts, ", bursts p=%g x%u at %gx", options_.burst_probability,
                    options_.burst_events, options_.burst_speedup);
      text.append(bursts);
    }
    return text.append(")");
  }

 private:
  std::vector<Event> events_;
  SyntheticOptions options_;
  std::size_t next_ = 0;
  std::vector<PlainBook> books_;
};

class LobsterSource final : public MarketSource {
 public:
  explicit LobsterSource(const SourceOptions& o)
      : reader_(open(o)), rows_(reader_.levels()), messages_only_(reader_.levels() == 0 ? 1 : 0) {}

  const Event* read() override { return reader_.next(event_) ? &event_ : nullptr; }
  void apply(Tick& tick) override {
    tick.event = &event_;
    if (reader_.levels() != 0) {
      tick.trade = features::classify_trade(event_, rows_.book);  // LOBSTER names the resting side
      rows_.set(reader_.book_row());
      tick.book = &rows_.book;
      ++stats_.book_syncs;
    } else {
      tick.trade = features::classify_trade(event_, messages_only_.book());
      if (warns(messages_only_.apply(event_))) ++stats_.book_warnings;
      tick.book = &messages_only_.book();
    }
    ++stats_.events;
  }
  feed::SymbolInfo symbol() const override { return reader_.symbol(); }
  std::span<const std::int64_t> book_row() const noexcept override { return reader_.book_row(); }
  std::size_t book_levels() const noexcept override { return reader_.levels(); }
  SourceStats stats() const override {
    SourceStats s = stats_;
    s.parse = reader_.stats();
    s.parse_issues = s.parse.total_issues();
    return s;
  }
  std::string describe() const override {
    return "lobster " + description_ +
           (reader_.levels() ? " + orderbook (" + std::to_string(reader_.levels()) + " levels)"
                             : " (no orderbook file: book rebuilt from messages only)");
  }

 private:
  feed::LobsterReader open(const SourceOptions& o) {
    expect_paths(o, 1, 2, "MESSAGE.csv [ORDERBOOK.csv] or a sample .zip");
    feed::LobsterOptions lo;
    lo.policy = o.policy;
    const std::string& first = o.paths[0];
    description_ = file_name(first);
    if (first.size() > 4 && first.compare(first.size() - 4, 4, ".zip") == 0)
      return feed::LobsterReader::open_zip(first, lo);
    std::string orderbook = o.paths.size() > 1 ? o.paths[1] : std::string();
    if (orderbook.empty()) {
      const auto at = first.rfind("_message_");
      if (at != std::string::npos) {
        std::string guess = first;
        guess.replace(at, 9, "_orderbook_");
        if (std::filesystem::exists(guess)) orderbook = guess;
      }
    }
    return feed::LobsterReader::open(first, orderbook, lo);
  }

  std::string description_;
  feed::LobsterReader reader_;
  RowBook rows_;
  feed::LobsterBook messages_only_;  // without an orderbook file: LOBSTER's message semantics, unchecked
  Event event_{};
  SourceStats stats_;
};

// Several single-symbol sources merged by event time (ties: the earlier source first); instrument k is part k.
// A part's event stays valid until that part is read again, which happens only after the event was applied.
class MergedSource final : public MarketSource {
 public:
  explicit MergedSource(std::vector<std::unique_ptr<MarketSource>> parts)
      : parts_(std::move(parts)), pending_(parts_.size()) {
    for (std::size_t k = 0; k < parts_.size(); ++k) pending_[k] = parts_[k]->read();
  }

  const Event* read() override {
    if (last_ < parts_.size()) pending_[last_] = parts_[last_]->read();
    std::size_t pick = parts_.size();
    for (std::size_t k = 0; k < parts_.size(); ++k)
      if (pending_[k] != nullptr && (pick == parts_.size() || pending_[k]->ts_ns < pending_[pick]->ts_ns)) pick = k;
    last_ = pick;
    return pick < parts_.size() ? pending_[pick] : nullptr;
  }
  void apply(Tick& tick) override {
    parts_[last_]->apply(tick);
    tick.key = static_cast<std::uint32_t>(last_);
  }
  feed::SymbolInfo symbol() const override { return parts_[0]->symbol(); }
  std::uint32_t symbol_count() const noexcept override { return static_cast<std::uint32_t>(parts_.size()); }
  feed::SymbolInfo symbol_info(std::uint32_t key) const override { return parts_.at(key)->symbol(); }
  // The deepest part's: the parts' rows are not merged (a capture of them is refused).
  std::size_t book_levels() const noexcept override {
    std::size_t levels = 0;
    for (const auto& part : parts_) levels = std::max(levels, part->book_levels());
    return levels;
  }
  std::uint64_t size_hint() const noexcept override {
    std::uint64_t total = 0;
    for (const auto& part : parts_) {
      if (part->size_hint() == 0) return 0;
      total += part->size_hint();
    }
    return total;
  }
  SourceStats stats() const override {
    SourceStats s;
    for (const auto& part : parts_) {
      const SourceStats p = part->stats();
      s.events += p.events;
      s.skipped += p.skipped;
      s.book_warnings += p.book_warnings;
      s.book_syncs += p.book_syncs;
      feed::merge(s.parse, p.parse);
    }
    s.parse_issues = s.parse.total_issues();
    return s;
  }
  std::string describe() const override {
    std::string text = "merged by time:";
    for (std::size_t k = 0; k < parts_.size(); ++k) text.append(k ? " + " : " ").append(parts_[k]->describe());
    return text;
  }

 private:
  std::vector<std::unique_ptr<MarketSource>> parts_;
  std::vector<const Event*> pending_;   // each part's next event, not yet applied; nullptr when it ended
  std::size_t last_ = ~std::size_t{0};  // the part whose event read() returned last
};

bool is_lobster_messages(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  return name.find("_message_") != std::string::npos ||
         (name.size() > 4 && name.compare(name.size() - 4, 4, ".zip") == 0);
}

// Several LOBSTER message files (or sample zips): one symbol each, merged by time; each orderbook file is found
// next to its message file.
std::unique_ptr<MarketSource> open_lobster(const SourceOptions& options) {
  const auto messages = std::count_if(options.paths.begin(), options.paths.end(), is_lobster_messages);
  if (messages <= 1) return std::make_unique<LobsterSource>(options);
  std::vector<std::unique_ptr<MarketSource>> parts;
  for (const auto& path : options.paths) {
    if (!is_lobster_messages(path))
      throw Error(ErrorCode::kInvalidConfig,
                  "lobster: merging several files takes message files (*_message_*) or sample zips only, each "
                  "orderbook found next to its message file; got '" +
                      path + "'");
    SourceOptions one = options;
    one.paths = {path};
    parts.push_back(std::make_unique<LobsterSource>(one));
  }
  if (parts.size() > kMaxReplaySymbols)
    throw Error(ErrorCode::kInvalidConfig, "lobster: more than " + std::to_string(kMaxReplaySymbols) + " files");
  return std::make_unique<MergedSource>(std::move(parts));
}

class TardisSource final : public MarketSource {
 public:
  explicit TardisSource(const SourceOptions& o) {
    expect_paths(o, 1, 2, "a trades and/or a quotes CSV");
    feed::TardisOptions to;
    to.policy = o.policy;
    // Two files interleave on arrival time, the only clock they share.
    to.use_local_timestamp = o.paths.size() > 1;
    for (const auto& path : o.paths) {
      readers_.push_back(feed::TardisReader::open(path, to));
      description_ += (description_.empty() ? "" : " + ") + file_name(path);
    }
    symbols_ = readers_[0].scan_symbols();
    if (symbols_.empty()) symbols_.push_back(feed::SymbolInfo{0, "?", 1, 1});
    pending_.resize(readers_.size());
    for (std::size_t i = 0; i < readers_.size(); ++i) refill(i);
  }

  const Event* read() override {
    for (;;) {
      std::size_t pick = readers_.size();
      for (std::size_t i = 0; i < readers_.size(); ++i)
        if (pending_[i] && (pick == readers_.size() || pending_[i]->ts_ns < pending_[pick]->ts_ns)) pick = i;
      if (pick == readers_.size()) return nullptr;
      event_ = *pending_[pick];
      refill(pick);
      if (event_.symbol == symbols_[0].id) return &event_;
      ++book_.stats.skipped;
    }
  }
  void apply(Tick& tick) override { book_.apply(event_, tick); }
  feed::SymbolInfo symbol() const override { return symbols_[0]; }
  SourceStats stats() const override {
    SourceStats s = book_.stats;
    for (const auto& r : readers_) feed::merge(s.parse, r.stats());
    s.parse_issues = s.parse.total_issues();
    return s;
  }
  std::string describe() const override { return "tardis " + description_; }

 private:
  void refill(std::size_t i) {
    Event e{};
    if (readers_[i].next(e)) {
      pending_[i] = e;
    } else {
      pending_[i].reset();
    }
  }

  std::vector<feed::TardisReader> readers_;
  std::vector<std::optional<Event>> pending_;
  std::vector<feed::SymbolInfo> symbols_;
  std::string description_;
  Event event_{};
  PlainBook book_;
};

// The first symbol id whose events touch a book, scanning `next` until one does.
template <typename Next>
std::optional<std::uint32_t> first_book_symbol(Next&& next) {
  Event e{};
  while (next(e))
    if (e.kind == EventKind::kAdd || e.kind == EventKind::kQuote || e.kind == EventKind::kTrade) return e.symbol;
  return std::nullopt;
}

std::uint32_t pick_symbol(const std::vector<feed::SymbolInfo>& symbols, const std::string& wanted,
                          std::optional<std::uint32_t> fallback, const std::string& what) {
  if (!wanted.empty()) {
    for (const auto& s : symbols)
      if (s.name == wanted) return s.id;
    throw Error(ErrorCode::kInvalidConfig, what + ": no symbol '" + wanted + "'");
  }
  if (fallback) return *fallback;
  return symbols.empty() ? 0 : symbols.front().id;
}

feed::SymbolInfo find_symbol(const std::vector<feed::SymbolInfo>& symbols, std::uint32_t id, std::int64_t price_scale) {
  for (const auto& s : symbols)
    if (s.id == id) return s;
  return {id, "symbol-" + std::to_string(id), price_scale, 1};
}

// SourceOptions::symbol as a list: "A,B,C" -> {A, B, C}; "*" -> every directory entry (at most kMaxReplaySymbols);
// one name or none -> {} (the single-symbol choice).
std::vector<std::string> symbol_list(const std::string& wanted, const std::vector<feed::SymbolInfo>& directory,
                                     const std::string& what) {
  std::vector<std::string> names;
  if (wanted == "*") {
    if (directory.empty())
      throw Error(ErrorCode::kInvalidConfig, what + ": '*' needs a stock directory, the file has none");
    if (directory.size() > kMaxReplaySymbols)
      throw Error(ErrorCode::kInvalidConfig, what + ": '*' would replay " + std::to_string(directory.size()) +
                                                 " symbols, more than " + std::to_string(kMaxReplaySymbols) +
                                                 ": name them");
    for (const auto& s : directory) names.push_back(s.name);
    return names;
  }
  if (wanted.find(',') == std::string::npos) return names;
  std::size_t from = 0;
  for (;;) {
    const std::size_t comma = wanted.find(',', from);
    std::string name = wanted.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
    if (name.empty()) throw Error(ErrorCode::kInvalidConfig, what + ": empty name in the symbol list '" + wanted + "'");
    names.push_back(std::move(name));
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  if (names.size() > kMaxReplaySymbols)
    throw Error(ErrorCode::kInvalidConfig, what + ": more than " + std::to_string(kMaxReplaySymbols) + " symbols");
  return names;
}

// One symbol, or several (SourceOptions::symbol "A,B,C" or "*"): instrument k is the k-th named (or the k-th of the
// stock directory), with a book of its own.
class ItchSource final : public MarketSource {
 public:
  explicit ItchSource(const SourceOptions& o) : reader_(open(o)) {
    const auto directory = reader_.scan_directory();
    const std::vector<std::string> names = symbol_list(o.symbol, directory, o.paths[0]);
    if (names.empty()) {
      std::optional<std::uint32_t> fallback;
      if (o.symbol.empty()) {
        auto scan = feed::ItchReader::open(o.paths[0], options(o));
        fallback = first_book_symbol([&scan](Event& e) { return scan.next(e); });
      }
      symbols_.push_back(
          find_symbol(directory, pick_symbol(directory, o.symbol, fallback, o.paths[0]), feed::kItchPriceScale));
    } else {
      for (const auto& name : names)
        symbols_.push_back(find_symbol(directory, pick_symbol(directory, name, {}, o.paths[0]), feed::kItchPriceScale));
    }
    for (std::uint32_t k = 0; k < symbols_.size(); ++k) {
      const std::uint32_t locate = symbols_[k].id;
      if (locate >= key_of_.size()) key_of_.resize(locate + 1, kNotReplayed);
      if (key_of_[locate] != kNotReplayed)
        throw Error(ErrorCode::kInvalidConfig, o.paths[0] + ": symbol '" + symbols_[k].name + "' named twice");
      key_of_[locate] = k;
    }
    books_.reserve(symbols_.size());
    for (std::size_t k = 0; k < symbols_.size(); ++k) books_.emplace_back(symbols_.size() == 1 ? 1 << 16 : 1 << 10);
    description_ = file_name(o.paths[0]);
  }

  const Event* read() override {
    while (reader_.next(event_)) {
      if (event_.symbol < key_of_.size() && key_of_[event_.symbol] != kNotReplayed && book_event(event_))
        return &event_;
      ++skipped_;
    }
    return nullptr;
  }
  void apply(Tick& tick) override {
    tick.key = key_of_[event_.symbol];
    books_[tick.key].apply(event_, tick);
  }
  feed::SymbolInfo symbol() const override { return symbols_[0]; }
  std::uint32_t symbol_count() const noexcept override { return static_cast<std::uint32_t>(symbols_.size()); }
  feed::SymbolInfo symbol_info(std::uint32_t key) const override { return symbols_.at(key); }
  SourceStats stats() const override {
    SourceStats s;
    for (const PlainBook& b : books_) {
      s.events += b.stats.events;
      s.book_warnings += b.stats.book_warnings;
    }
    s.skipped = skipped_;
    s.parse = reader_.stats();
    s.parse_issues = s.parse.total_issues();
    return s;
  }
  std::string describe() const override {
    if (symbols_.size() == 1) return "itch " + description_ + " (" + symbols_[0].name + ")";
    std::string names;
    for (std::size_t k = 0; k < symbols_.size() && k < 4; ++k) names += (k ? ", " : "") + symbols_[k].name;
    if (symbols_.size() > 4) names += ", ...";
    return "itch " + description_ + " (" + std::to_string(symbols_.size()) + " symbols: " + names + ")";
  }

 private:
  static feed::ItchOptions options(const SourceOptions& o) {
    feed::ItchOptions io;
    io.policy = o.policy;
    return io;
  }
  static feed::ItchReader open(const SourceOptions& o) {
    expect_paths(o, 1, 1, "one ITCH file");
    return feed::ItchReader::open(o.paths[0], options(o));
  }

  static constexpr std::uint32_t kNotReplayed = ~std::uint32_t{0};

  feed::ItchReader reader_;
  std::vector<feed::SymbolInfo> symbols_;
  std::vector<std::uint32_t> key_of_;  // by stock locate: the instrument's key, or kNotReplayed
  std::vector<PlainBook> books_;       // by key
  std::uint64_t skipped_ = 0;
  std::string description_;
  Event event_{};
};

class CaptureSource final : public MarketSource {
 public:
  explicit CaptureSource(const SourceOptions& o) : capture_(open(o)), events_(capture_.events()), rows_(1) {
    const std::vector<std::string> names = symbol_list(o.symbol, capture_.symbols(), o.paths[0]);
    if (!names.empty()) {
      open_several(o, names);
      return;
    }
    std::size_t i = 0;
    const std::uint32_t id = pick_symbol(capture_.symbols(), o.symbol, first_book_symbol([&](Event& e) {
                                           if (i >= events_.size()) return false;
                                           e = events_[i++];
                                           return true;
                                         }),
                                         o.paths[0]);
    symbol_ = find_symbol(capture_.symbols(), id, 1);
    description_ = file_name(o.paths[0]);
    // LOBSTER captures carry the orderbook rows: as sync quotes after each message (write_capture), or as
    // each event's own top of book (feed::convert_to_capture). The header says which and how many levels;
    // nothing is inferred from the records.
    const auto& header = capture_.header();
    if (header.lobster_levels > 0) {
      row_.resize(4 * std::size_t{header.lobster_levels});
      rows_ = RowBook(header.lobster_levels);
      mode_ = Mode::kSyncQuotes;
    } else if ((header.flags & feed::kCaptureTopOfBook) != 0) {
      mode_ = Mode::kTopOfBook;
    }
    for (const Event& e : events_) count_ += e.symbol == symbol_.id && !is_sync(e) && book_event(e) ? 1 : 0;
  }

  const Event* read() override {
    if (!books_.empty()) return read_several();
    while (next_ < events_.size()) {
      const Event& e = events_[next_++];
      if (e.symbol != symbol_.id || is_sync(e) || !book_event(e)) {
        if (!is_sync(e)) ++plain_.stats.skipped;
        continue;
      }
      current_ = &e;
      if (mode_ == Mode::kSyncQuotes) collect_row();
      return current_;
    }
    return nullptr;
  }

  void apply(Tick& tick) override {
    if (!books_.empty()) {
      tick.key = key_of_[current_->symbol];
      return books_[tick.key].apply(*current_, tick);
    }
    if (mode_ == Mode::kPlain) return plain_.apply(*current_, tick);
    tick.event = current_;
    tick.trade = features::classify_trade(*current_, rows_.book);  // LOBSTER names the resting side
    if (mode_ == Mode::kSyncQuotes && has_row_) {
      rows_.set(row_);
      ++plain_.stats.book_syncs;
    } else if (mode_ == Mode::kTopOfBook && (current_->flags & feed::kFlagTopOfBook) != 0) {
      rows_.set(*current_);
      ++plain_.stats.book_syncs;
    }
    tick.book = &rows_.book;
    ++plain_.stats.events;
  }

  feed::SymbolInfo symbol() const override { return books_.empty() ? symbol_ : symbols_[0]; }
  std::uint32_t symbol_count() const noexcept override {
    return books_.empty() ? 1 : static_cast<std::uint32_t>(symbols_.size());
  }
  feed::SymbolInfo symbol_info(std::uint32_t key) const override {
    return books_.empty() ? MarketSource::symbol_info(key) : symbols_.at(key);
  }
  std::uint64_t size_hint() const noexcept override { return count_; }
  std::span<const std::int64_t> book_row() const noexcept override {
    return has_row_ ? std::span<const std::int64_t>(row_) : std::span<const std::int64_t>();
  }
  std::size_t book_levels() const noexcept override { return row_.size() / 4; }
  SourceStats stats() const override {
    SourceStats s = plain_.stats;
    for (const PlainBook& b : books_) {
      s.events += b.stats.events;
      s.book_warnings += b.stats.book_warnings;
    }
    s.parse.records = s.parse.events = events_.size();
    return s;
  }
  std::string describe() const override {
    if (!books_.empty()) {
      std::string names;
      for (std::size_t k = 0; k < symbols_.size() && k < 4; ++k) names += (k ? ", " : "") + symbols_[k].name;
      if (symbols_.size() > 4) names += ", ...";
      return "capture " + description_ + " (" + std::to_string(symbols_.size()) + " symbols: " + names + ")";
    }
    const char* rows = mode_ == Mode::kSyncQuotes  ? ", LOBSTER rows of "
                       : mode_ == Mode::kTopOfBook ? ", LOBSTER top of book"
                                                   : "";
    return "capture " + description_ + " (" + symbol_.name + rows +
           (mode_ == Mode::kSyncQuotes ? std::to_string(row_.size() / 4) + " levels)" : ")");
  }

 private:
  enum class Mode : std::uint8_t { kPlain, kSyncQuotes, kTopOfBook };

  static feed::CaptureReader open(const SourceOptions& o) {
    expect_paths(o, 1, 1, "one capture file");
    return feed::CaptureReader(o.paths[0]);
  }
  static bool is_sync(const Event& e) noexcept { return e.kind == EventKind::kQuote && e.aux == kLobsterSyncAux; }

  // Several symbols ("A,B" or "*"): instrument k is the k-th named (or of the symbol table), with an order book of
  // its own, as ItchSource does. LOBSTER rows describe one instrument's book, so such captures replay one symbol.
  void open_several(const SourceOptions& o, const std::vector<std::string>& names) {
    const auto& header = capture_.header();
    if (header.lobster_levels > 0 || (header.flags & feed::kCaptureTopOfBook) != 0)
      throw Error(ErrorCode::kInvalidConfig, o.paths[0] + ": a capture of LOBSTER orderbook rows replays one " +
                                                 "symbol at a time (it names " + std::to_string(names.size()) + ")");
    for (const auto& name : names) {
      const std::uint32_t id = pick_symbol(capture_.symbols(), name, {}, o.paths[0]);
      if (id >= key_of_.size()) key_of_.resize(std::size_t{id} + 1, kNotReplayed);
      if (key_of_[id] != kNotReplayed)
        throw Error(ErrorCode::kInvalidConfig, o.paths[0] + ": symbol '" + name + "' named twice");
      key_of_[id] = static_cast<std::uint32_t>(symbols_.size());
      symbols_.push_back(find_symbol(capture_.symbols(), id, 1));
    }
    books_.reserve(symbols_.size());
    for (std::size_t k = 0; k < symbols_.size(); ++k) books_.emplace_back(symbols_.size() == 1 ? 1 << 16 : 1 << 10);
    description_ = file_name(o.paths[0]);
    for (const Event& e : events_) count_ += replayed(e) ? 1 : 0;
  }
  bool replayed(const Event& e) const noexcept {
    return e.symbol < key_of_.size() && key_of_[e.symbol] != kNotReplayed && book_event(e);
  }
  const Event* read_several() {
    while (next_ < events_.size()) {
      const Event& e = events_[next_++];
      if (replayed(e)) return current_ = &e;
      ++plain_.stats.skipped;
    }
    return nullptr;
  }

  static constexpr std::uint32_t kNotReplayed = ~std::uint32_t{0};

  void collect_row() {
    // Rows of the file that hold fewer levels leave the rest at LOBSTER's empty placeholders.
    const std::size_t levels = row_.size() / 4;
    for (std::size_t j = 0; j < levels; ++j) {
      row_[4 * j] = feed::kLobsterEmptyAsk, row_[4 * j + 1] = 0;
      row_[4 * j + 2] = feed::kLobsterEmptyBid, row_[4 * j + 3] = 0;
    }
    has_row_ = false;
    while (next_ < events_.size() && is_sync(events_[next_])) {
      const Event& q = events_[next_++];
      if (q.order_id >= levels) continue;
      const std::size_t j = q.order_id;
      row_[4 * j] = q.ask_price, row_[4 * j + 1] = q.ask_qty;
      row_[4 * j + 2] = q.bid_price, row_[4 * j + 3] = q.bid_qty;
      has_row_ = true;
    }
  }

  feed::CaptureReader capture_;
  std::span<const Event> events_;
  feed::SymbolInfo symbol_;
  std::string description_;
  Mode mode_ = Mode::kPlain;
  std::size_t next_ = 0;
  std::uint64_t count_ = 0;
  const Event* current_ = nullptr;
  RowBook rows_;
  std::vector<std::int64_t> row_;
  bool has_row_ = false;
  PlainBook plain_;
  std::vector<feed::SymbolInfo> symbols_;  // several symbols: by key
  std::vector<std::uint32_t> key_of_;      // several symbols: by symbol id, the key or kNotReplayed
  std::vector<PlainBook> books_;           // several symbols: by key; empty: one symbol
};

}  // namespace

const char* to_string(SourceFormat format) noexcept {
  switch (format) {
    case SourceFormat::kSynthetic:
      return "synthetic";
    case SourceFormat::kLobster:
      return "lobster";
    case SourceFormat::kTardis:
      return "tardis";
    case SourceFormat::kItch:
      return "itch";
    case SourceFormat::kCapture:
      return "capture";
  }
  return "unknown";
}

SourceFormat parse_format(std::string_view name) {
  for (const auto f : {SourceFormat::kSynthetic, SourceFormat::kLobster, SourceFormat::kTardis, SourceFormat::kItch,
                       SourceFormat::kCapture})
    if (name == to_string(f)) return f;
  throw Error(ErrorCode::kInvalidConfig,
              "unknown data format '" + std::string(name) + "' (known: synthetic, lobster, tardis, itch, capture)");
}

SourceFormat detect_format(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOENT ? ErrorCode::kFileNotFound : ErrorCode::kParseError,
                path + ": cannot open: " + std::strerror(err));
  }
  unsigned char head[sizeof(feed::CaptureHeader)] = {};
  std::size_t got = 0;
  while (got < sizeof head) {
    const ssize_t n = ::pread(fd, head + got, sizeof head - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got >= sizeof feed::kCaptureMagic && std::memcmp(head, feed::kCaptureMagic, sizeof feed::kCaptureMagic) == 0)
    return SourceFormat::kCapture;
  const std::string name = file_name(path);
  if (name.ends_with(".zip") || name.find("_message_") != std::string::npos) return SourceFormat::kLobster;
  if (name.ends_with(".csv")) return SourceFormat::kTardis;
  // ITCH has no magic: accept it only when the first message is well framed.
  std::string itch;
  if (got < 3) {
    itch = "the file has " + std::to_string(got) + " bytes";
  } else {
    const std::size_t len = std::size_t{head[0]} << 8 | head[1];
    const std::size_t spec = feed::itch_message_length(static_cast<char>(head[2]));
    if (len != 0 && len == spec) return SourceFormat::kItch;
    char type[16];
    std::snprintf(type, sizeof type, "0x%02x", head[2]);
    itch = "length " + std::to_string(len) + ", type " + type +
           (spec == 0 ? std::string(", not an ITCH 5.0 type")
                      : ", which ITCH 5.0 makes " + std::to_string(spec) + " bytes");
  }
  std::string found = "'";
  for (std::size_t i = 0; i < std::min<std::size_t>(got, 8); ++i) {
    const unsigned char c = head[i];
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      found.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      found += buf;
    }
  }
  found += "'";
  std::string damaged;
  if (got >= 16) {
    std::uint32_t version, record_size;
    std::memcpy(&version, head + offsetof(feed::CaptureHeader, version), sizeof version);
    std::memcpy(&record_size, head + offsetof(feed::CaptureHeader, record_size), sizeof record_size);
    if (record_size == sizeof(Event) && version >= 1 && version <= 64) {
      damaged = " (though the rest of the header reads like a capture's: version " + std::to_string(version) +
                ", record size " + std::to_string(record_size) + "; a damaged capture?)";
    }
  }
  throw Error(ErrorCode::kParseError, path + ": cannot detect the format: its first bytes " + found +
                                          " are not a tickinfer capture's magic 'TICKCAP\\x00'" + damaged +
                                          ", nor an ITCH 5.0 message (" + itch +
                                          "); give --format to read it as one anyway");
}

std::unique_ptr<MarketSource> MarketSource::open(const SourceOptions& options) {
  switch (options.format) {
    case SourceFormat::kSynthetic:
      if (!options.paths.empty()) throw Error(ErrorCode::kInvalidConfig, "the synthetic feed takes no data path");
      return std::make_unique<SyntheticSource>(options.synthetic);
    case SourceFormat::kLobster:
      return open_lobster(options);
    case SourceFormat::kTardis:
      return std::make_unique<TardisSource>(options);
    case SourceFormat::kItch:
      return std::make_unique<ItchSource>(options);
    case SourceFormat::kCapture:
      return std::make_unique<CaptureSource>(options);
  }
  throw Error(ErrorCode::kInvalidConfig, "unknown data format");
}

std::uint64_t write_capture(MarketSource& source, const std::string& path) {
  // Several symbols: their events as they are, and the symbol table in key order, so that a replay of the capture
  // with the symbol "*" gives each instrument the key it has here. LOBSTER rows describe one instrument's book.
  if (source.symbol_count() > 1 && source.book_levels() > 0)
    throw Error(ErrorCode::kInvalidConfig,
                "write_capture: LOBSTER orderbook rows are written one symbol at a time "
                "(the source has " +
                    std::to_string(source.symbol_count()) + ")");
  std::vector<feed::SymbolInfo> symbols;
  for (std::uint32_t k = 0; k < source.symbol_count(); ++k) {
    symbols.push_back(source.symbol_count() == 1 ? source.symbol() : source.symbol_info(k));
    for (std::uint32_t j = 0; j < k; ++j)
      if (symbols[j].id == symbols[k].id)
        throw Error(ErrorCode::kInvalidConfig, "write_capture: symbols '" + symbols[j].name + "' and '" +
                                                   symbols[k].name + "' share the id " + std::to_string(symbols[k].id) +
                                                   ": the capture could not tell their events apart");
  }
  feed::CaptureContents contents;
  contents.lobster_levels = static_cast<std::uint32_t>(source.book_levels());
  feed::CaptureWriter writer(path, symbols, contents);
  std::uint64_t written = 0;
  while (const Event* e = source.read()) {
    writer.append(*e);
    ++written;
    const auto row = source.book_row();
    for (std::size_t j = 0; j + 3 < row.size(); j += 4) {
      Event q{};
      q.ts_ns = e->ts_ns;
      q.symbol = e->symbol;
      q.kind = EventKind::kQuote;
      q.aux = kLobsterSyncAux;
      q.order_id = j / 4;
      q.ask_price = row[j], q.ask_qty = row[j + 1];
      q.bid_price = row[j + 2], q.bid_qty = row[j + 3];
      writer.append(q);
    }
  }
  writer.finish();
  return written;
}

}  // namespace tickinfer::replay
