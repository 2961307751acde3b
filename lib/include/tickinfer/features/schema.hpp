#pragma once
// The feature schema: the ordered features a model was trained on, with every parameter that changes a
// value. Its names and hash travel in the model's metadata; a model built on another schema is refused.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tickinfer/model.hpp"

namespace tickinfer::features {

enum class FeatureKind : std::uint8_t {
  kMid,         // (best bid + best ask) / 2, in quote currency
  kSpread,      // best ask - best bid; unit price or bps of mid
  kMicroprice,  // size-weighted mid (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty); unit price, or
                // bps = (microprice - mid) / mid * 1e4
  kImbalance,   // (bid qty - ask qty) / (bid qty + ask qty) over the best `levels` levels of each side
  kOfi,         // order-flow imbalance at the best level (Cont, Kukanov, Stoikov 2014), summed over a window
  kTradeFlow,   // signed traded quantity (+ buyer-initiated, - seller-initiated), summed over a window
  kReturn,      // mid now vs. mid `window` ago, in bps: (mid / mid_then - 1) * 1e4
  kCount
};

/// Stable TOML name, e.g. "trade_flow".
const char* to_string(FeatureKind kind) noexcept;

enum class PriceUnit : std::uint8_t { kPrice, kBps };

/// A look-back over the last `events` events, or over the events of the last `ns` nanoseconds of event
/// time (kept in a ring of `capacity` entries; when a burst overflows it the oldest entries are dropped,
/// so the window is shorter for that burst).
struct Window {
  std::uint32_t events = 0;  // exactly one of events / ns is non-zero
  std::int64_t ns = 0;
  std::uint32_t capacity = 0;  // time windows only

  friend bool operator==(const Window&, const Window&) = default;
};

/// Ring entries a time window keeps when the config does not say (`capacity`).
inline constexpr std::uint32_t kDefaultWindowCapacity = 4096;

/// One feature: what to compute and how to normalise it. Every field is part of the schema hash.
struct FeatureSpec {
  std::string name;  // unique within a schema; the model's input name
  FeatureKind kind = FeatureKind::kMid;
  std::uint32_t levels = 1;            // kImbalance
  PriceUnit unit = PriceUnit::kPrice;  // kSpread, kMicroprice
  Window window;                       // kOfi, kTradeFlow, kReturn
  bool zscore = false;                 // value = (value - mean) / std
  double mean = 0.0, stddev = 1.0;
  bool clip = false;  // then clamped to [clip_lo, clip_hi]
  double clip_lo = 0.0, clip_hi = 0.0;

  friend bool operator==(const FeatureSpec&, const FeatureSpec&) = default;
};

/// The ordered feature list. The canonical text (one line per feature, every parameter spelled out,
/// numbers as printf "%.17g") is what the hash covers: see docs/REPLAY.md.
class FeatureSchema {
 public:
  FeatureSchema() = default;
  /// Throws Error(kInvalidConfig) on an empty list, a duplicate or empty name, or a bad parameter.
  explicit FeatureSchema(std::vector<FeatureSpec> features);

  const std::vector<FeatureSpec>& features() const noexcept { return features_; }
  std::size_t size() const noexcept { return features_.size(); }
  std::vector<std::string> names() const;
  /// "tickinfer-features/1\n" then one line per feature.
  const std::string& canonical_text() const noexcept { return canonical_; }
  /// "fnv1a64:" + 16 lowercase hex digits of FNV-1a (64-bit) over canonical_text().
  const std::string& hash() const noexcept { return hash_; }

 private:
  std::vector<FeatureSpec> features_;
  std::string canonical_;
  std::string hash_;
};

/// The canonical line of one feature, e.g. "ofi_10|ofi|events=10|zscore=0,500|clip=-10,10".
std::string canonical_line(const FeatureSpec& spec);

/// 64-bit FNV-1a.
std::uint64_t fnv1a64(std::string_view bytes) noexcept;

/// Parses a feature config (TOML; format in docs/REPLAY.md). `source` labels errors. Throws
/// Error(kInvalidConfig) naming the source, the feature (index and name) and the problem, e.g.
/// "default.toml: features[3] 'x': unknown kind 'foo' (known: mid, spread, ...)".
FeatureSchema parse_feature_config(std::string_view toml_text, const std::string& source);
/// Reads and parses a config file; Error(kFileNotFound) when it cannot be read.
FeatureSchema load_feature_config(const std::string& path);

/// Accepts a model whose metadata carries this schema's hash. Otherwise throws Error(kSchemaMismatch)
/// naming the features that differ, e.g. "model m.pt: feature schema differs from the pipeline's
/// (hash fnv1a64:... vs fnv1a64:...): position 2: model 'imb_5', pipeline 'imb_3'; pipeline only: 'ret_1s'".
/// Same names with another hash: the message says a parameter or normalisation differs.
void check_schema(const ModelMetadata& model, const FeatureSchema& schema, const std::string& model_source = {});

}  // namespace tickinfer::features
