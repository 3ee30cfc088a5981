// What differs between x86-64 and aarch64 Linux, asserted per architecture: the same source
// passes on both only because each expectation is the right one for where it runs.
#include <gtest/gtest.h>

#include <cstddef>
#include <limits>

#include "cxxlib/text.h"

namespace {

TEST(Architecture, PlainCharSignedness) {
#if defined(__aarch64__)
  // AAPCS64: plain char is unsigned.
  EXPECT_FALSE(std::numeric_limits<char>::is_signed);
  EXPECT_EQ(cxxlib::platform_char_value('\xE9'), 0xE9);
#elif defined(__x86_64__)
  EXPECT_TRUE(std::numeric_limits<char>::is_signed);
  EXPECT_EQ(cxxlib::platform_char_value('\xE9'), 0xE9 - 256);
#else
  GTEST_SKIP() << "no expectation for this architecture";
#endif
  // The library's own accessor agrees everywhere.
  EXPECT_EQ(cxxlib::byte_value('\xE9'), 0xE9);
}

TEST(Architecture, LongDoubleMantissa) {
#if defined(__aarch64__)
  // IEEE binary128 on aarch64 Linux.
  EXPECT_EQ(std::numeric_limits<long double>::digits, 113);
  EXPECT_EQ(sizeof(long double), 16u);
#elif defined(__x86_64__)
  // x87 80-bit extended precision, padded to 16 bytes.
  EXPECT_EQ(std::numeric_limits<long double>::digits, 64);
  EXPECT_EQ(sizeof(long double), 16u);
#else
  GTEST_SKIP() << "no expectation for this architecture";
#endif
}

TEST(Architecture, MaxAlignment) {
  EXPECT_EQ(alignof(std::max_align_t), 16u);
}

}  // namespace
