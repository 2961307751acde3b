// Feature configs in TOML (format in docs/REPLAY.md). Strict: an unknown key, a key that does not apply to
// the feature's kind, or a value of the wrong type is refused with the config, feature and key named.

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "tickinfer/error.hpp"
#include "tickinfer/features/schema.hpp"

namespace tickinfer::features {
namespace {

constexpr std::string_view kSchemaPrefix = "feature schema: ";

struct Context {
  const std::string& source;
  std::size_t index;
  std::string name;
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(ErrorCode::kInvalidConfig, source + ": features[" + std::to_string(index) + "] '" + name + "': " + why);
  }
};

FeatureKind parse_kind(const Context& ctx, std::string_view text) {
  std::string known;
  for (int k = 0; k < static_cast<int>(FeatureKind::kCount); ++k) {
    const auto kind = static_cast<FeatureKind>(k);
    if (text == to_string(kind)) return kind;
    known += (k ? ", " : "") + std::string(to_string(kind));
  }
  ctx.fail("unknown kind '" + std::string(text) + "' (known: " + known + ")");
}

std::int64_t integer(const Context& ctx, const toml::node& node, const char* key, std::int64_t lo, std::int64_t hi) {
  const auto v = node.value_exact<std::int64_t>();
  if (!v) ctx.fail(std::string("'") + key + "' must be an integer");
  if (*v < lo || *v > hi)
    ctx.fail(std::string("'") + key + "' must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
             std::to_string(*v));
  return *v;
}

double real(const Context& ctx, const toml::node* node, const std::string& what) {
  if (node == nullptr || !(node->is_floating_point() || node->is_integer())) ctx.fail(what + " must be a number");
  return *node->value<double>();
}

// Keys that apply to each kind, besides name and kind and the normalisation keys.
bool applies(FeatureKind kind, std::string_view key) {
  switch (kind) {
    case FeatureKind::kSpread:
    case FeatureKind::kMicroprice:
      return key == "unit";
    case FeatureKind::kImbalance:
      return key == "levels";
    case FeatureKind::kOfi:
    case FeatureKind::kTradeFlow:
    case FeatureKind::kReturn:
      return key == "events" || key == "window_us" || key == "capacity";
    default:
      return false;
  }
}

FeatureSpec parse_feature(const std::string& source, std::size_t index, const toml::table& table) {
  Context ctx{source, index, {}};
  if (const auto name = table["name"].value<std::string>()) ctx.name = *name;
  if (!table.contains("name") || !table["name"].is_string()) ctx.fail("missing 'name' (a string)");
  const auto kind_text = table["kind"].value<std::string>();
  if (!kind_text) ctx.fail("missing 'kind' (a string)");

  FeatureSpec spec;
  spec.name = ctx.name;
  spec.kind = parse_kind(ctx, *kind_text);
  bool capacity_given = false;
  for (const auto& [key_node, node] : table) {
    const std::string_view key = key_node.str();
    if (key == "name" || key == "kind") continue;
    if (key == "zscore") {
      const toml::table* z = node.as_table();
      if (z == nullptr) ctx.fail("'zscore' must be a table { mean = ..., std = ... }");
      for (const auto& [zkey, znode] : *z)
        if (zkey.str() != "mean" && zkey.str() != "std")
          ctx.fail("unknown key 'zscore." + std::string(zkey.str()) + "' (known: mean, std)");
      spec.zscore = true;
      spec.mean = real(ctx, z->get("mean"), "'zscore.mean'");
      spec.stddev = real(ctx, z->get("std"), "'zscore.std'");
      continue;
    }
    if (key == "clip") {
      const toml::array* a = node.as_array();
      if (a == nullptr || a->size() != 2) ctx.fail("'clip' must be an array [lo, hi]");
      spec.clip = true;
      spec.clip_lo = real(ctx, a->get(0), "'clip[0]'");
      spec.clip_hi = real(ctx, a->get(1), "'clip[1]'");
      continue;
    }
    if (key != "unit" && key != "levels" && key != "events" && key != "window_us" && key != "capacity")
      ctx.fail("unknown key '" + std::string(key) +
               "' (known: name, kind, unit, levels, events, window_us, capacity, zscore, clip)");
    if (!applies(spec.kind, key))
      ctx.fail("key '" + std::string(key) + "' does not apply to kind '" + to_string(spec.kind) + "'");
    if (key == "unit") {
      const auto unit = node.value<std::string>();
      if (unit == "price") {
        spec.unit = PriceUnit::kPrice;
      } else if (unit == "bps") {
        spec.unit = PriceUnit::kBps;
      } else {
        ctx.fail("'unit' must be \"price\" or \"bps\"");
      }
    } else if (key == "levels") {
      spec.levels = static_cast<std::uint32_t>(integer(ctx, node, "levels", 1, 64));
    } else if (key == "events") {
      spec.window.events = static_cast<std::uint32_t>(integer(ctx, node, "events", 1, 1'000'000));
    } else if (key == "window_us") {
      const std::int64_t max_us = std::numeric_limits<std::int64_t>::max() / 1000;
      spec.window.ns = integer(ctx, node, "window_us", 1, max_us) * 1000;
    } else if (key == "capacity") {
      spec.window.capacity = static_cast<std::uint32_t>(integer(ctx, node, "capacity", 1, 1 << 24));
      capacity_given = true;
    }
  }
  const bool windowed =
      spec.kind == FeatureKind::kOfi || spec.kind == FeatureKind::kTradeFlow || spec.kind == FeatureKind::kReturn;
  if (windowed) {
    if ((spec.window.events == 0) == (spec.window.ns == 0)) ctx.fail("give exactly one of 'events' and 'window_us'");
    if (capacity_given && spec.window.ns == 0) ctx.fail("'capacity' applies to time windows (window_us) only");
    if (spec.window.ns != 0 && !capacity_given) spec.window.capacity = kDefaultWindowCapacity;
  }
  return spec;
}

}  // namespace

FeatureSchema parse_feature_config(std::string_view toml_text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw Error(ErrorCode::kInvalidConfig, source + ":" + std::to_string(where.line) + ":" +
                                               std::to_string(where.column) + ": " + std::string(e.description()));
  }
  for (const auto& [key, node] : root)
    if (key.str() != "features")
      throw Error(ErrorCode::kInvalidConfig,
                  source + ": unknown top-level key '" + std::string(key.str()) + "' (known: features)");
  const toml::array* list = root["features"].as_array();
  if (list == nullptr || list->empty())
    throw Error(ErrorCode::kInvalidConfig, source + ": no [[features]] (an array of tables) given");
  std::vector<FeatureSpec> specs;
  specs.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    const toml::table* table = list->get(i)->as_table();
    if (table == nullptr)
      throw Error(ErrorCode::kInvalidConfig, source + ": features[" + std::to_string(i) + "] is not a table");
    specs.push_back(parse_feature(source, i, *table));
  }
  try {
    return FeatureSchema(std::move(specs));
  } catch (const Error& e) {
    // Name the config rather than the schema: that is where the user fixes it.
    std::string message = e.what();
    if (message.rfind(kSchemaPrefix, 0) == 0) message.erase(0, kSchemaPrefix.size());
    throw Error(e.code(), source + ": " + message);
  }
}

FeatureSchema load_feature_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kFileNotFound, path + ": cannot read the feature config");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_feature_config(text.str(), path);
}

}  // namespace tickinfer::features
