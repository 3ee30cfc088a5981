#include <gtest/gtest.h>

#include "cxxlib/text.h"

namespace {

TEST(Text, TrimRemovesAsciiSpaceOnly) {
  EXPECT_EQ(cxxlib::trim("  a b \t\n"), "a b");
  EXPECT_EQ(cxxlib::trim("\xA0x\xA0"), "\xA0x\xA0");  // NBSP in Latin-1 is not ASCII space
  EXPECT_EQ(cxxlib::trim("   "), "");
}

TEST(Text, SplitKeepsEmptyFields) {
  const std::vector<std::string> expected = {"a", "", "b", ""};
  EXPECT_EQ(cxxlib::split("a,,b,", ','), expected);
  EXPECT_EQ(cxxlib::split("", ',').size(), 1u);
}

TEST(Text, JoinIsTheInverseOfSplit) {
  const std::string s = "x;y;;z";
  EXPECT_EQ(cxxlib::join(cxxlib::split(s, ';'), ";"), s);
}

TEST(Text, UpperCaseLeavesHighBytesAlone) {
  EXPECT_EQ(cxxlib::to_upper_ascii("abc-xyz \xE9"), "ABC-XYZ \xE9");
}

TEST(Text, StartsWith) {
  EXPECT_TRUE(cxxlib::starts_with("crossbuild", "cross"));
  EXPECT_FALSE(cxxlib::starts_with("cross", "crossbuild"));
}

TEST(Text, EditDistance) {
  EXPECT_EQ(cxxlib::edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(cxxlib::edit_distance("", "abc"), 3u);
  EXPECT_EQ(cxxlib::edit_distance("same", "same"), 0u);
}

TEST(Text, ByteValueIsUnsignedEverywhere) {
  EXPECT_EQ(cxxlib::byte_value('\xFF'), 255);
  EXPECT_EQ(cxxlib::byte_value('A'), 65);
}

}  // namespace
