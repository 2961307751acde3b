// A feature config (TOML) through parse_feature_config, then a FeatureEngine built on the schema (it
// preallocates every window ring the config asks for). Input: the TOML text.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tickinfer/error.hpp"
#include "tickinfer/features/engine.hpp"
#include "tickinfer/features/schema.hpp"

using namespace tickinfer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto schema =
        features::parse_feature_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
    (void)schema.canonical_text();
    features::FeatureEngine engine(std::move(schema), features::Scales{});
    (void)engine.width();
  } catch (const Error&) {
  }
  return 0;
}
