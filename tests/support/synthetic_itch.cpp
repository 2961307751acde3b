// Writes a synthetic ITCH 5.0 day (BinaryFILE framing): a system event, a stock directory message per symbol, then
// the order flow of `symbols` seeded synthetic books (replay::SyntheticFeed), merged by timestamp, as add, cancel,
// delete, execute and trade messages. Test data for the daemon's ITCH-over-MoldUDP64 end-to-end test (no recorded
// ITCH order flow is bundled). Usage: synthetic_itch OUT.itch EVENTS SYMBOLS

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "feed_test_support.hpp"
#include "tickinfer/feed/event.hpp"
#include "tickinfer/replay/synthetic.hpp"

using tickinfer::feed::Event;
using tickinfer::feed::EventKind;
using tickinfer::feed::Side;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: synthetic_itch OUT.itch EVENTS SYMBOLS\n");
    return 2;
  }
  const std::uint64_t events = std::strtoull(argv[2], nullptr, 10);
  const auto symbols = static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 10));
  if (events == 0 || symbols == 0 || symbols > 1000) {
    std::fprintf(stderr, "synthetic_itch: EVENTS >= 1 and SYMBOLS in [1, 1000]\n");
    return 2;
  }
  std::vector<std::unique_ptr<tickinfer::replay::SyntheticFeed>> feeds;
  std::vector<Event> next(symbols);
  std::vector<bool> live(symbols);
  std::vector<std::string> stock(symbols);
  tickinfer::feed::testing::ItchEncoder enc;
  enc.system_event(34'000'000'000'000, 'O');
  for (std::uint32_t k = 0; k < symbols; ++k) {
    tickinfer::replay::SyntheticOptions o;
    o.seed = 100 + k;
    o.events = events / symbols + (k < events % symbols ? 1 : 0);
    feeds.push_back(std::make_unique<tickinfer::replay::SyntheticFeed>(o));
    live[k] = feeds[k]->next(next[k]);
    stock[k] = "SYN" + std::to_string(k);
    enc.directory(static_cast<std::uint16_t>(k + 1), 34'000'000'000'000, stock[k]);
  }
  std::uint64_t match = 1;
  for (;;) {
    std::uint32_t k = symbols;  // the feed whose next event is earliest
    for (std::uint32_t i = 0; i < symbols; ++i)
      if (live[i] && (k == symbols || next[i].ts_ns < next[k].ts_ns)) k = i;
    if (k == symbols) break;
    const Event& e = next[k];
    const auto locate = static_cast<std::uint16_t>(k + 1);
    const std::uint64_t ref = (std::uint64_t{k} << 40) | e.order_id;  // order numbers unique across the books
    const char side = e.side == Side::kBuy ? 'B' : 'S';
    const auto shares = static_cast<std::uint32_t>(e.qty);
    const auto price = static_cast<std::uint32_t>(e.price);
    switch (e.kind) {
      case EventKind::kAdd:
        enc.add(locate, e.ts_ns, ref, side, shares, stock[k], price);
        break;
      case EventKind::kCancel:
        enc.cancel(locate, e.ts_ns, ref, shares);
        break;
      case EventKind::kDelete:
        enc.del(locate, e.ts_ns, ref);
        break;
      case EventKind::kExecute:
        enc.executed(locate, e.ts_ns, ref, shares, match++);
        break;
      case EventKind::kTrade:
        enc.trade(locate, e.ts_ns, 0, side, shares, stock[k], price, match++);
        break;
      default:
        std::fprintf(stderr, "synthetic_itch: no ITCH message for event kind %d\n", static_cast<int>(e.kind));
        return 1;
    }
    live[k] = feeds[k]->next(next[k]);
  }
  std::ofstream out(argv[1], std::ios::binary);
  out << enc.bytes();
  if (!out) {
    std::fprintf(stderr, "synthetic_itch: cannot write %s\n", argv[1]);
    return 1;
  }
  return 0;
}
