#pragma once
// What a symbol id in an Event stands for: its name and the fixed-point scales of its prices and sizes.

#include <cstdint>
#include <string>

namespace tickinfer::feed {

struct SymbolInfo {
  std::uint32_t id = 0;
  std::string name;              // e.g. "AMZN", "BTCUSDT" (ITCH: stock with the space padding removed)
  std::int64_t price_scale = 1;  // Event::price / price_scale = price in quote currency
  std::int64_t qty_scale = 1;    // Event::qty / qty_scale = size in shares or base currency

  friend bool operator==(const SymbolInfo&, const SymbolInfo&) = default;
};

}  // namespace tickinfer::feed
