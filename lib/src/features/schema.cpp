#include "tickinfer/features/schema.hpp"

#include <cmath>
#include <cstdio>
#include <unordered_set>

#include "tickinfer/error.hpp"

namespace tickinfer::features {
namespace {

constexpr std::string_view kCanonicalHeader = "tickinfer-features/1\n";

// printf "%.17g" round-trips every double and Python's "%.17g" % x prints the same digits, so the
// canonical text (and its hash) can be recomputed outside C++.
std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

[[noreturn]] void invalid(std::size_t index, const FeatureSpec& spec, const std::string& why) {
  throw Error(ErrorCode::kInvalidConfig,
              "feature schema: features[" + std::to_string(index) + "] '" + spec.name + "': " + why);
}

void validate(std::size_t index, const FeatureSpec& spec) {
  if (!valid_name(spec.name)) invalid(index, spec, "name must be non-empty and use only [A-Za-z0-9_.-]");
  if (spec.kind >= FeatureKind::kCount) invalid(index, spec, "unknown kind");
  if (spec.kind == FeatureKind::kImbalance && (spec.levels < 1 || spec.levels > 64))
    invalid(index, spec, "levels must be in 1..64");
  if (spec.kind == FeatureKind::kOfi || spec.kind == FeatureKind::kTradeFlow || spec.kind == FeatureKind::kReturn) {
    const Window& w = spec.window;
    if ((w.events == 0) == (w.ns == 0)) invalid(index, spec, "give exactly one of events and window_us");
    if (w.events > 1'000'000) invalid(index, spec, "events must be in 1..1000000");
    if (w.ns < 0) invalid(index, spec, "window_us must be > 0");
    if (w.ns != 0 && (w.capacity < 1 || w.capacity > (1u << 24)))
      invalid(index, spec, "capacity must be in 1..16777216");
  }
  if (spec.zscore && !(std::isfinite(spec.mean) && std::isfinite(spec.stddev) && spec.stddev > 0.0))
    invalid(index, spec, "zscore needs a finite mean and a finite std > 0");
  if (spec.clip && !(std::isfinite(spec.clip_lo) && std::isfinite(spec.clip_hi) && spec.clip_lo < spec.clip_hi))
    invalid(index, spec, "clip needs finite bounds [lo, hi] with lo < hi");
}

std::string window_text(const Window& w) {
  if (w.events != 0) return "events=" + std::to_string(w.events);
  return "window_ns=" + std::to_string(w.ns) + ",capacity=" + std::to_string(w.capacity);
}

}  // namespace

const char* to_string(FeatureKind kind) noexcept {
  switch (kind) {
    case FeatureKind::kMid:
      return "mid";
    case FeatureKind::kSpread:
      return "spread";
    case FeatureKind::kMicroprice:
      return "microprice";
    case FeatureKind::kImbalance:
      return "imbalance";
    case FeatureKind::kOfi:
      return "ofi";
    case FeatureKind::kTradeFlow:
      return "trade_flow";
    case FeatureKind::kReturn:
      return "return";
    case FeatureKind::kCount:
      break;
  }
  return "unknown";
}

std::uint64_t fnv1a64(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string canonical_line(const FeatureSpec& spec) {
  std::string line = spec.name + "|" + to_string(spec.kind) + "|";
  switch (spec.kind) {
    case FeatureKind::kSpread:
    case FeatureKind::kMicroprice:
      line += spec.unit == PriceUnit::kBps ? "unit=bps" : "unit=price";
      break;
    case FeatureKind::kImbalance:
      line += "levels=" + std::to_string(spec.levels);
      break;
    case FeatureKind::kOfi:
    case FeatureKind::kTradeFlow:
    case FeatureKind::kReturn:
      line += window_text(spec.window);
      break;
    default:
      line += "-";
      break;
  }
  line += spec.zscore ? "|zscore=" + number(spec.mean) + "," + number(spec.stddev) : "|zscore=none";
  line += spec.clip ? "|clip=" + number(spec.clip_lo) + "," + number(spec.clip_hi) : "|clip=none";
  return line;
}

FeatureSchema::FeatureSchema(std::vector<FeatureSpec> features) : features_(std::move(features)) {
  if (features_.empty()) throw Error(ErrorCode::kInvalidConfig, "feature schema: no features");
  std::unordered_set<std::string> seen;
  canonical_ = kCanonicalHeader;
  for (std::size_t i = 0; i < features_.size(); ++i) {
    validate(i, features_[i]);
    if (!seen.insert(features_[i].name).second) invalid(i, features_[i], "duplicate name");
    canonical_ += canonical_line(features_[i]);
    canonical_ += '\n';
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(fnv1a64(canonical_)));
  hash_ = buf;
}

std::vector<std::string> FeatureSchema::names() const {
  std::vector<std::string> out;
  out.reserve(features_.size());
  for (const auto& f : features_) out.push_back(f.name);
  return out;
}

void check_schema(const ModelMetadata& model, const FeatureSchema& schema, const std::string& model_source) {
  const std::vector<std::string> ours = schema.names();
  const std::vector<std::string>& theirs = model.input_names;
  if (model.feature_schema_hash == schema.hash() && theirs == ours) return;

  std::string diff;
  auto add = [&diff](const std::string& part) { diff += (diff.empty() ? "" : "; ") + part; };
  const std::size_t common = std::min(ours.size(), theirs.size());
  for (std::size_t i = 0; i < common; ++i)
    if (ours[i] != theirs[i])
      add("position " + std::to_string(i) + ": model '" + theirs[i] + "', pipeline '" + ours[i] + "'");
  auto list = [](const std::vector<std::string>& names, std::size_t from) {
    std::string s;
    for (std::size_t i = from; i < names.size(); ++i) s += (i == from ? "'" : ", '") + names[i] + "'";
    return s;
  };
  if (theirs.size() > common) add("model only: " + list(theirs, common));
  if (ours.size() > common) add("pipeline only: " + list(ours, common));
  if (diff.empty()) diff = "same names, so a parameter or normalisation differs";

  const std::string who = model_source.empty() ? model.name : model_source;
  throw Error(ErrorCode::kSchemaMismatch, "model " + who + ": feature schema differs from the pipeline's (hash " +
                                              model.feature_schema_hash + " vs " + schema.hash() + "): " + diff);
}

}  // namespace tickinfer::features
