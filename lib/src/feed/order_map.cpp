#include "tickinfer/feed/order_map.hpp"

#include <bit>

namespace tickinfer::feed {

bool OrderMap::insert(std::uint64_t id, const RestingOrder& order) {
  if (id == kEmptyId) return false;
  if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 64 : slots_.size() * 2);
  for (std::size_t i = home(id);; i = (i + 1) & mask_) {
    if (slots_[i].id == id) return false;
    if (slots_[i].id == kEmptyId) {
      slots_[i].id = id;
      slots_[i].order = order;
      ++size_;
      return true;
    }
  }
}

bool OrderMap::erase(std::uint64_t id) noexcept {
  if (slots_.empty() || id == kEmptyId) return false;
  std::size_t i = home(id);
  while (slots_[i].id != id) {
    if (slots_[i].id == kEmptyId) return false;
    i = (i + 1) & mask_;
  }
  // Backward shift: pull later members of the probe run into the hole unless that would move one
  // before its home slot, so lookups never need tombstones.
  for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
    if (slots_[j].id == kEmptyId) break;
    const std::size_t h = home(slots_[j].id);
    // Slot j may move to hole i when its home is not cyclically within (i, j].
    const bool home_in_range = i <= j ? (h > i && h <= j) : (h > i || h <= j);
    if (!home_in_range) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i].id = kEmptyId;
  --size_;
  return true;
}

void OrderMap::reserve(std::size_t expected) {
  if (expected == 0) return;
  const std::size_t want = std::bit_ceil(expected * 2);
  if (want > slots_.size()) rehash(want);
}

void OrderMap::clear() noexcept {
  for (auto& s : slots_) s.id = kEmptyId;
  size_ = 0;
}

void OrderMap::rehash(std::size_t capacity) {
  std::vector<Slot> old(capacity);
  old.swap(slots_);
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  size_ = 0;
  for (const auto& s : old) {
    if (s.id != kEmptyId) insert(s.id, s.order);
  }
}

}  // namespace tickinfer::feed
