#include "tickinfer/latest_store.hpp"

#include <bit>
#include <stdexcept>

namespace tickinfer {
namespace {

constexpr std::size_t kLineWords = 64 / sizeof(std::uint32_t);

// Payload stores are release and payload loads acquire (plain moves on x86): see "Memory ordering" in the header.
void put64(std::atomic<std::uint32_t>* w, std::uint64_t v) noexcept {
  w[0].store(static_cast<std::uint32_t>(v), std::memory_order_release);
  w[1].store(static_cast<std::uint32_t>(v >> 32), std::memory_order_release);
}
std::uint64_t get64(const std::atomic<std::uint32_t>* w) noexcept {
  return w[0].load(std::memory_order_acquire) |
         (static_cast<std::uint64_t>(w[1].load(std::memory_order_acquire)) << 32);
}

}  // namespace

LatestStore::LatestStore(std::size_t keys, std::size_t output_width)
    : keys_(keys),
      width_(output_width),
      stride_((kHeaderWords + output_width + kLineWords - 1) / kLineWords * kLineWords) {
  if (keys == 0 || output_width == 0) throw std::invalid_argument("LatestStore: keys and output_width must be >= 1");
  const std::size_t words = keys * stride_;
  auto* raw = static_cast<std::atomic<std::uint32_t>*>(
      ::operator new[](words * sizeof(std::atomic<std::uint32_t>), std::align_val_t{64}));
  for (std::size_t i = 0; i < words; ++i) new (raw + i) std::atomic<std::uint32_t>(0);
  words_.reset(raw);
}

bool LatestStore::write(std::size_t key, std::span<const float> outputs, std::uint64_t model_version,
                        std::int64_t event_ns, std::int64_t prediction_ns) noexcept {
  if (key >= keys_ || outputs.size() != width_) return false;
  std::atomic<std::uint32_t>* w = slot(key);
  std::atomic<std::uint32_t>& seq = w[0];
  std::uint32_t s = seq.load(std::memory_order_relaxed);
  // Odd: another writer of this key is mid-write; wait for it. Acquire: this write's payload stores come after
  // the previous writer's (pairs with the release store that ended that write).
  while ((s & 1u) != 0 || !seq.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
    s = seq.load(std::memory_order_relaxed);
  }
  put64(w + 2, model_version);
  put64(w + 4, static_cast<std::uint64_t>(event_ns));
  put64(w + 6, static_cast<std::uint64_t>(prediction_ns));
  put64(w + 8, get64(w + 8) + 1);
  for (std::size_t i = 0; i < width_; ++i)
    w[kHeaderWords + i].store(std::bit_cast<std::uint32_t>(outputs[i]), std::memory_order_release);
  // Release: a reader that acquires this even value sees the whole payload (pairs with try_read()'s first load).
  seq.store(s + 2, std::memory_order_release);
  return true;
}

bool LatestStore::try_read(std::size_t key, LatestPrediction& out, std::span<float> outputs) const noexcept {
  if (key >= keys_ || outputs.size() != width_) return false;
  const std::atomic<std::uint32_t>* w = slot(key);
  // Acquire: pairs with the release store that ended the last write.
  const std::uint32_t before = w[0].load(std::memory_order_acquire);
  if ((before & 1u) != 0) return false;
  out.model_version = get64(w + 2);
  out.event_ns = static_cast<std::int64_t>(get64(w + 4));
  out.prediction_ns = static_cast<std::int64_t>(get64(w + 6));
  out.updates = get64(w + 8);
  for (std::size_t i = 0; i < width_; ++i)
    outputs[i] = std::bit_cast<float>(w[kHeaderWords + i].load(std::memory_order_acquire));
  // If any acquire load above read a store of a later write, that write's odd sequence (stored before its release
  // payload stores) is visible here, so the check fails and the caller retries.
  return w[0].load(std::memory_order_relaxed) == before;
}

bool LatestStore::read(std::size_t key, LatestPrediction& out, std::span<float> outputs) const noexcept {
  if (key >= keys_ || outputs.size() != width_) return false;
  while (!try_read(key, out, outputs)) {
  }
  return true;
}

}  // namespace tickinfer
