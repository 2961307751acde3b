#pragma once
// Open-addressing map from order id to resting order: one flat array, no allocation per insert.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "tickinfer/feed/event.hpp"

namespace tickinfer::feed {

struct RestingOrder {
  std::int64_t price = 0;
  std::int64_t qty = 0;
  Side side = Side::kNone;
};

/// Linear probing with backward-shift deletion (no tombstones, so long replays do not degrade).
/// Capacity doubles at half load; it only allocates while growing. Id kEmptyId is reserved.
/// Not thread-safe.
class OrderMap {
 public:
  static constexpr std::uint64_t kEmptyId = std::numeric_limits<std::uint64_t>::max();

  explicit OrderMap(std::size_t expected = 0) { reserve(expected); }

  /// nullptr when absent. The pointer is valid until the next insert or erase.
  RestingOrder* find(std::uint64_t id) noexcept {
    if (slots_.empty() || id == kEmptyId) return nullptr;
    for (std::size_t i = home(id);; i = (i + 1) & mask_) {
      if (slots_[i].id == id) return &slots_[i].order;
      if (slots_[i].id == kEmptyId) return nullptr;
    }
  }
  const RestingOrder* find(std::uint64_t id) const noexcept { return const_cast<OrderMap*>(this)->find(id); }

  /// False (and no change) when `id` is present or reserved.
  bool insert(std::uint64_t id, const RestingOrder& order);
  /// False when absent.
  bool erase(std::uint64_t id) noexcept;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void reserve(std::size_t expected);
  void clear() noexcept;

 private:
  struct Slot {
    std::uint64_t id = kEmptyId;
    RestingOrder order;
  };

  std::size_t home(std::uint64_t id) const noexcept {
    // Fibonacci hashing: exchanges hand out sequential ids, which this spreads over the table.
    return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void rehash(std::size_t capacity);

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  int shift_ = 64;
  std::size_t size_ = 0;
};

}  // namespace tickinfer::feed
