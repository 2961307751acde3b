// Feed replay throughput on the real LOBSTER AMZN level-1 day (57,515 events, message + orderbook files).
// Targets on one core: >= 5M events/s from a binary capture into a book, >= 1M events/s from the CSVs.
// Every benchmark keeps the book checked against LOBSTER's own top of book (LobsterBook::sync): a level-1
// message file alone leaves out changes beyond the best level, and an unsynchronised book drifts.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>

#include "tickinfer/feed/capture.hpp"
#include "tickinfer/feed/capture_convert.hpp"
#include "tickinfer/feed/lobster.hpp"
#include "tickinfer/feed/lobster_book.hpp"

namespace {

using namespace tickinfer::feed;

const std::filesystem::path kDir =
    std::filesystem::path(TICKINFER_SOURCE_DIR) / ".." / "shared" / "data" / "lobster-amzn-l1";
const std::string kMessages = (kDir / "AMZN_2012-06-21_34200000_57600000_message_1.csv").string();
const std::string kOrderbook = (kDir / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv").string();

bool have_data(benchmark::State& state) {
  if (std::filesystem::exists(kMessages) && std::filesystem::exists(kOrderbook)) return true;
  state.SkipWithError(("LOBSTER AMZN sample not found under " + kDir.string()).c_str());
  return false;
}

// Made once per process in the temp directory from the CSVs (the data is never copied into the repo).
const std::string& capture_path() {
  static const std::string path = [] {
    const std::string p = (std::filesystem::temp_directory_path() / "tickinfer_feed_bench_amzn.tcap").string();
    auto reader = LobsterReader::open(kMessages, kOrderbook);
    convert_to_capture(reader, p);
    return p;
  }();
  return path;
}

void report(benchmark::State& state, std::uint64_t events, std::uint64_t disagreements) {
  if (disagreements != 0) state.SkipWithError("the book disagreed with LOBSTER's top of book");
  state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}

// Steady-state replay: a mapped capture into a session-long book (reset, not rebuilt, per pass).
void BM_CaptureReplayToBook(benchmark::State& state) {
  if (!have_data(state)) return;
  const CaptureReader capture(capture_path());
  LobsterBook book(1, 1 << 14);
  std::uint64_t events = 0, disagreements = 0, row = 0;
  for (auto _ : state) {
    book.reset();
    for (const Event& e : capture.events()) {
      book.apply(e);
      disagreements += book.sync(e, ++row);
    }
    benchmark::DoNotOptimize(book.book().best_bid());
    events += capture.events().size();
  }
  report(state, events, disagreements);
}
BENCHMARK(BM_CaptureReplayToBook)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same, opening (mapping, prefaulting and checking) the capture on every pass.
void BM_CaptureOpenAndReplayToBook(benchmark::State& state) {
  if (!have_data(state)) return;
  const std::string& path = capture_path();
  LobsterBook book(1, 1 << 14);
  std::uint64_t events = 0, disagreements = 0, row = 0;
  for (auto _ : state) {
    const CaptureReader capture(path);
    book.reset();
    for (const Event& e : capture.events()) {
      book.apply(e);
      disagreements += book.sync(e, ++row);
    }
    benchmark::DoNotOptimize(book.book().best_bid());
    events += capture.events().size();
  }
  report(state, events, disagreements);
}
BENCHMARK(BM_CaptureOpenAndReplayToBook)->Unit(benchmark::kMillisecond)->UseRealTime();

// Parse both CSVs in lockstep (mmap, from_chars) into the book, checked against every orderbook row.
void BM_LobsterCsvToBook(benchmark::State& state) {
  if (!have_data(state)) return;
  LobsterBook book(1, 1 << 14);
  std::uint64_t events = 0, disagreements = 0;
  for (auto _ : state) {
    auto reader = LobsterReader::open(kMessages, kOrderbook);
    book.reset();
    Event e{};
    while (reader.next(e)) {
      book.apply(e);
      disagreements += book.sync(reader.book_row(), reader.line());
    }
    benchmark::DoNotOptimize(book.book().best_bid());
    events += reader.stats().events;
  }
  report(state, events, disagreements);
}
BENCHMARK(BM_LobsterCsvToBook)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
