// Catch2 v2 (the header from Debian's catch2 package). Case names hold spaces, brackets and
// commas on purpose: a runner must quote them to select exactly one case.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "cxxlib/text.h"

TEST_CASE("trim removes leading and trailing spaces", "[text]") {
  REQUIRE(cxxlib::trim("  padded  ") == "padded");
  REQUIRE(cxxlib::trim("") == "");
}

TEST_CASE("split on [comma], keeping empty fields", "[text][split]") {
  const auto parts = cxxlib::split("a,,b", ',');
  REQUIRE(parts.size() == 3);
  CHECK(parts[1].empty());
}

TEST_CASE("edit distance: kitten -> sitting is 3", "[text]") {
  CHECK(cxxlib::edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("upper-casing (ASCII only)", "[text]") {
  SECTION("letters") { CHECK(cxxlib::to_upper_ascii("abc") == "ABC"); }
  SECTION("high bytes stay") { CHECK(cxxlib::to_upper_ascii("\xE9") == "\xE9"); }
}

TEST_CASE("byte values are 0..255 on every architecture", "[text][arch]") {
  for (int v = 0; v < 256; ++v) CHECK(cxxlib::byte_value(static_cast<char>(v)) == v);
}
