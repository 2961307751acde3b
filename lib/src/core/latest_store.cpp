#include "tickinfer/latest_store.hpp"

#include <bit>
#include <stdexcept>

namespace tickinfer {
namespace {

constexpr std::size_t kLineWords = 64 / sizeof(std::uint64_t);

std::uint64_t pack(float lo, float hi) noexcept {
  return std::bit_cast<std::uint32_t>(lo) | (static_cast<std::uint64_t>(std::bit_cast<std::uint32_t>(hi)) << 32);
}
float low(std::uint64_t w) noexcept { return std::bit_cast<float>(static_cast<std::uint32_t>(w)); }
float high(std::uint64_t w) noexcept { return std::bit_cast<float>(static_cast<std::uint32_t>(w >> 32)); }

}  // namespace

LatestStore::LatestStore(std::size_t keys, std::size_t output_width)
    : keys_(keys),
      width_(output_width),
      stride_((kHeaderWords + (output_width + 1) / 2 + kLineWords - 1) / kLineWords * kLineWords) {
  if (keys == 0 || output_width == 0) throw std::invalid_argument("LatestStore: keys and output_width must be >= 1");
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
  const std::size_t words = keys * stride_;
  auto* raw = static_cast<std::atomic<std::uint64_t>*>(
      ::operator new[](words * sizeof(std::atomic<std::uint64_t>), std::align_val_t{64}));
  for (std::size_t i = 0; i < words; ++i) new (raw + i) std::atomic<std::uint64_t>(0);
  words_.reset(raw);
}

// Payload stores are release and payload loads acquire (plain moves on x86): see "Memory ordering" in the header.
bool LatestStore::write(std::size_t key, std::span<const float> outputs, std::uint64_t model_version,
                        std::int64_t event_ns, std::int64_t prediction_ns) noexcept {
  if (key >= keys_ || outputs.size() != width_) return false;
  std::atomic<std::uint64_t>* w = slot(key);
  std::atomic<std::uint64_t>& seq = w[0];
  std::uint64_t s = seq.load(std::memory_order_relaxed);
  // Odd: another writer of this key is mid-write; wait for it. Acquire: this write's payload stores come after
  // the previous writer's (pairs with the release store that ended that write).
  while ((s & 1u) != 0 || !seq.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
    s = seq.load(std::memory_order_relaxed);
  }
  w[1].store(model_version, std::memory_order_release);
  w[2].store(static_cast<std::uint64_t>(event_ns), std::memory_order_release);
  w[3].store(static_cast<std::uint64_t>(prediction_ns), std::memory_order_release);
  w[4].store(w[4].load(std::memory_order_relaxed) + 1, std::memory_order_release);  // only writers store it
  std::atomic<std::uint64_t>* out = w + kHeaderWords;
  std::size_t i = 0;
  for (; i + 1 < width_; i += 2) out[i / 2].store(pack(outputs[i], outputs[i + 1]), std::memory_order_release);
  if (i < width_) out[i / 2].store(pack(outputs[i], 0.0f), std::memory_order_release);
  // Release: a reader that acquires this even value sees the whole payload (pairs with try_read()'s first load).
  seq.store(s + 2, std::memory_order_release);
  return true;
}

bool LatestStore::try_read(std::size_t key, LatestPrediction& out, std::span<float> outputs) const noexcept {
  if (key >= keys_ || outputs.size() != width_) return false;
  const std::atomic<std::uint64_t>* w = slot(key);
  // Acquire: pairs with the release store that ended the last write.
  const std::uint64_t before = w[0].load(std::memory_order_acquire);
  if ((before & 1u) != 0) return false;
  out.model_version = w[1].load(std::memory_order_acquire);
  out.event_ns = static_cast<std::int64_t>(w[2].load(std::memory_order_acquire));
  out.prediction_ns = static_cast<std::int64_t>(w[3].load(std::memory_order_acquire));
  out.updates = w[4].load(std::memory_order_acquire);
  const std::atomic<std::uint64_t>* in = w + kHeaderWords;
  std::size_t i = 0;
  for (; i + 1 < width_; i += 2) {
    const std::uint64_t v = in[i / 2].load(std::memory_order_acquire);
    outputs[i] = low(v);
    outputs[i + 1] = high(v);
  }
  if (i < width_) outputs[i] = low(in[i / 2].load(std::memory_order_acquire));
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
