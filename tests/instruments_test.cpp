// InstrumentRegistry: dense keys in order of first appearance, bounded.

#include <gtest/gtest.h>

#include <stdexcept>

#include "tickinfer/instruments.hpp"

namespace tickinfer {
namespace {

TEST(InstrumentRegistry, KeysAreDenseInOrderOfFirstAppearance) {
  InstrumentRegistry r;
  EXPECT_EQ(r.add("AMZN"), 0u);
  EXPECT_EQ(r.add("GOOG"), 1u);
  EXPECT_EQ(r.add("AMZN"), 0u);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.key_of("GOOG"), 1u);
  EXPECT_FALSE(r.key_of("MSFT").has_value());
  EXPECT_EQ(r.name(1), "GOOG");
  EXPECT_EQ(r.name(7), "");
}

TEST(InstrumentRegistry, GrowthIsBounded) {
  InstrumentRegistry r;
  r.add("A", 2);
  r.add("B", 2);
  EXPECT_EQ(r.add("A", 2), 0u) << "a known symbol needs no room";
  try {
    r.add("C", 2);
    FAIL();
  } catch (const std::length_error& e) {
    EXPECT_STREQ(e.what(), "InstrumentRegistry: more than 2 instruments");
  }
}

}  // namespace
}  // namespace tickinfer
