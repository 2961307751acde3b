#pragma once
// The latest prediction per key (instrument): written by whoever predicts, read by any thread without a lock.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>

namespace tickinfer {

/// What a reader gets for one key. outputs points into the reader's buffer.
struct LatestPrediction {
  std::uint64_t model_version = 0;
  std::int64_t event_ns = 0;       // when the event that produced the features arrived (caller's clock)
  std::int64_t prediction_ns = 0;  // when the prediction was written
  std::uint64_t updates = 0;       // how many predictions this key has had; 0: none yet
};

/// One slot per key, each a seqlock on its own cache lines: a write never waits for readers, a read never blocks a
/// writer and never returns a torn value (it retries while a write is in progress). Fixed size, allocated once.
///
/// Memory ordering (after Boehm, "Can seqlocks get along with programming language memory models?", 2012): the
/// payload words are atomics, so a racing read is not a data race. A writer makes the sequence odd with an
/// acquire CAS (excluding other writers of that key), stores the payload with release stores (ordered after the
/// odd sequence), and publishes with a release store of the next even value. A reader loads the sequence with
/// acquire (pairs with that publishing store), loads the payload with acquire loads and reloads the sequence: a
/// payload word from a later write carries that write's odd sequence with it (release store -> acquire load), so
/// equal and even means every word came from one write. No fences, which ThreadSanitizer does not model; on x86
/// every one of these is a plain move.
class LatestStore {
 public:
  /// Allocates keys x (header + output_width floats). Throws std::invalid_argument for 0 keys or width.
  LatestStore(std::size_t keys, std::size_t output_width);
  LatestStore(const LatestStore&) = delete;
  LatestStore& operator=(const LatestStore&) = delete;

  std::size_t keys() const noexcept { return keys_; }
  std::size_t output_width() const noexcept { return width_; }

  /// Thread-safe; never allocates; writers of the same key exclude each other by spinning (a write is a few
  /// dozen stores), writers of different keys never touch each other's lines. outputs.size() must be
  /// output_width(); key < keys(). Returns false (nothing written) otherwise.
  bool write(std::size_t key, std::span<const float> outputs, std::uint64_t model_version, std::int64_t event_ns,
             std::int64_t prediction_ns) noexcept;

  /// Thread-safe, never blocks a writer, never allocates. One attempt: false when a write was in progress (or the
  /// key or buffer size is wrong); `out` and `outputs` are then unspecified.
  bool try_read(std::size_t key, LatestPrediction& out, std::span<float> outputs) const noexcept;

  /// Thread-safe: try_read() until it succeeds. Returns false only for a wrong key or buffer size.
  bool read(std::size_t key, LatestPrediction& out, std::span<float> outputs) const noexcept;

 private:
  // 64-bit words: [0] sequence, [1] version, [2] event_ns, [3] prediction_ns, [4] updates; then the outputs, two
  // floats a word (the first in the low half), so a read is 7 + ceil(width / 2) loads.
  static constexpr std::size_t kHeaderWords = 5;
  std::atomic<std::uint64_t>* slot(std::size_t key) const noexcept { return words_.get() + key * stride_; }

  struct AlignedFree {
    void operator()(std::atomic<std::uint64_t>* p) const noexcept { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::size_t keys_, width_, stride_;  // stride_: words per slot, a multiple of a cache line (8 words)
  std::unique_ptr<std::atomic<std::uint64_t>[], AlignedFree> words_;
};

}  // namespace tickinfer
