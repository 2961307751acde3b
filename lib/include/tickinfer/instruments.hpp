#pragma once
// Keys for instruments: dense small integers a trading engine assigns to its symbols at start, so per-key state
// (latest predictions, conflation, sequence-model state) is an array index, never a hash lookup on the hot path.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tickinfer/result.hpp"  // InstrumentKey, kNoKey

namespace tickinfer {

/// Filled at start (add), then read. add() is not thread-safe; the const members are thread-safe once adding
/// is finished (no writer left). key_of() hashes the name: call it when a symbol first appears, not per tick.
class InstrumentRegistry {
 public:
  /// The key of `symbol`, added with the next key (0, 1, 2, ...) if new. Throws std::length_error beyond
  /// max_keys (bounded: a feed that invents symbols cannot grow it without limit).
  InstrumentKey add(std::string_view symbol, std::size_t max_keys = 1u << 20) {
    if (const auto it = keys_.find(std::string(symbol)); it != keys_.end()) return it->second;
    if (names_.size() >= max_keys)
      throw std::length_error("InstrumentRegistry: more than " + std::to_string(max_keys) + " instruments");
    const auto key = static_cast<InstrumentKey>(names_.size());
    names_.emplace_back(symbol);
    keys_.emplace(names_.back(), key);
    return key;
  }
  std::optional<InstrumentKey> key_of(std::string_view symbol) const {
    const auto it = keys_.find(std::string(symbol));
    if (it == keys_.end()) return std::nullopt;
    return it->second;
  }
  /// The symbol of `key`; empty for an unknown key.
  std::string_view name(InstrumentKey key) const noexcept {
    return key < names_.size() ? std::string_view(names_[key]) : std::string_view();
  }
  std::size_t size() const noexcept { return names_.size(); }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, InstrumentKey> keys_;
};

}  // namespace tickinfer
