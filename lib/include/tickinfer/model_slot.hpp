#pragma once
// The published model version: swapped atomically by loaders, read lock-free by workers.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "tickinfer/model.hpp"

namespace tickinfer {

/// Holds the model the pipeline serves. Workers keep their own shared_ptr and only touch the mutex
/// when the generation moved (once per swap), so the per-batch path is one acquire load.
class ModelSlot {
 public:
  ModelSlot() = default;
  explicit ModelSlot(std::shared_ptr<const Model> initial) { publish(std::move(initial)); }
  ModelSlot(const ModelSlot&) = delete;
  ModelSlot& operator=(const ModelSlot&) = delete;

  /// Makes `model` current. Thread-safe. Batches already running finish on the old model.
  void publish(std::shared_ptr<const Model> model) {
    std::lock_guard lock(mutex_);
    current_ = std::move(model);
    // Release: a reader that sees the new generation then locks and reads current_ (the mutex orders it too).
    generation_.fetch_add(1, std::memory_order_release);
  }

  /// The current model (may be null). Thread-safe; takes the mutex, so not for per-request use.
  std::shared_ptr<const Model> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

  /// Bumped by every publish(). Thread-safe.
  std::uint64_t generation() const noexcept {
    // Acquire pairs with the release in publish().
    return generation_.load(std::memory_order_acquire);
  }

  /// Updates `cached` if a publish happened since `seen_generation`. Lock-free when nothing changed.
  /// Returns true if `cached` changed. Call from one thread per (cached, seen_generation) pair.
  bool refresh(std::shared_ptr<const Model>& cached, std::uint64_t& seen_generation) const {
    const std::uint64_t generation = this->generation();
    if (generation == seen_generation) return false;
    std::lock_guard lock(mutex_);
    cached = current_;
    seen_generation = generation_.load(std::memory_order_relaxed);  // under the mutex: matches current_
    return true;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Model> current_;  // guarded by mutex_
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace tickinfer
