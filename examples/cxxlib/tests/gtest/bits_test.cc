// Typed tests: every bit operation on uint8_t, uint16_t, uint32_t and uint64_t.
#include <gtest/gtest.h>

#include <cstdint>

#include "cxxlib/bits.h"

namespace {

template <class T>
class BitsTest : public ::testing::Test {};

using UnsignedTypes = ::testing::Types<std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>;
TYPED_TEST_SUITE(BitsTest, UnsignedTypes);

TYPED_TEST(BitsTest, PopcountOfZeroAndAllOnes) {
  using T = TypeParam;
  EXPECT_EQ(cxxlib::popcount(T{0}), 0);
  EXPECT_EQ(cxxlib::popcount(static_cast<T>(~T{0})), cxxlib::bit_width_of<T>());
  EXPECT_EQ(cxxlib::popcount(T{0xA5}), 4);
}

TYPED_TEST(BitsTest, LeadingAndTrailingZeros) {
  using T = TypeParam;
  const int w = cxxlib::bit_width_of<T>();
  EXPECT_EQ(cxxlib::count_leading_zeros(T{0}), w);
  EXPECT_EQ(cxxlib::count_trailing_zeros(T{0}), w);
  EXPECT_EQ(cxxlib::count_leading_zeros(T{1}), w - 1);
  EXPECT_EQ(cxxlib::count_trailing_zeros(static_cast<T>(T{1} << (w - 1))), w - 1);
}

TYPED_TEST(BitsTest, RotationsAreInverse) {
  using T = TypeParam;
  const T x = static_cast<T>(0x8123456789ABCDEFull);
  for (int c = -70; c <= 70; c += 7) {
    EXPECT_EQ(cxxlib::rotate_right(cxxlib::rotate_left(x, c), c), x) << "count " << c;
  }
  EXPECT_EQ(cxxlib::rotate_left(x, cxxlib::bit_width_of<T>()), x);
}

TYPED_TEST(BitsTest, RotateLeftMovesTheTopBitToBitZero) {
  using T = TypeParam;
  const T top = static_cast<T>(T{1} << (cxxlib::bit_width_of<T>() - 1));
  EXPECT_EQ(cxxlib::rotate_left(top, 1), T{1});
  EXPECT_EQ(cxxlib::rotate_right(T{1}, 1), top);
}

TYPED_TEST(BitsTest, PowersOfTwo) {
  using T = TypeParam;
  EXPECT_FALSE(cxxlib::is_power_of_two(T{0}));
  EXPECT_TRUE(cxxlib::is_power_of_two(T{64}));
  EXPECT_FALSE(cxxlib::is_power_of_two(T{96}));
  EXPECT_EQ(cxxlib::next_power_of_two(T{0}), T{1});
  EXPECT_EQ(cxxlib::next_power_of_two(T{65}), T{128});
  EXPECT_EQ(cxxlib::next_power_of_two(static_cast<T>(~T{0})), T{0});  // does not fit
}

TYPED_TEST(BitsTest, ReverseBitsTwiceIsIdentity) {
  using T = TypeParam;
  const T x = static_cast<T>(0x0123456789ABCDEFull);
  EXPECT_EQ(cxxlib::reverse_bits(cxxlib::reverse_bits(x)), x);
  EXPECT_EQ(cxxlib::reverse_bits(T{1}), static_cast<T>(T{1} << (cxxlib::bit_width_of<T>() - 1)));
}

TEST(ByteOrder, LittleAndBigEndianLoads) {
  const unsigned char b[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  EXPECT_EQ(cxxlib::load_le32(b), 0x04030201u);
  EXPECT_EQ(cxxlib::load_be32(b), 0x01020304u);
  EXPECT_EQ(cxxlib::load_le64(b), 0x0807060504030201ull);
}

TEST(ByteOrder, UnalignedStoresRoundTrip) {
  unsigned char buf[9] = {};
  cxxlib::store_le32(buf + 1, 0xDEADBEEFu);  // deliberately unaligned
  EXPECT_EQ(cxxlib::load_le32(buf + 1), 0xDEADBEEFu);
  cxxlib::store_be32(buf + 3, 0xCAFEF00Du);
  EXPECT_EQ(buf[3], 0xCA);
  EXPECT_EQ(cxxlib::load_be32(buf + 3), 0xCAFEF00Du);
}

TEST(GrayCode, AdjacentCodesDifferInOneBit) {
  for (std::uint32_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(cxxlib::popcount(cxxlib::to_gray(i) ^ cxxlib::to_gray(i + 1)), 1) << i;
    EXPECT_EQ(cxxlib::from_gray(cxxlib::to_gray(i)), i);
  }
}

// Kept disabled: listed (and reported as skipped) but never run.
TEST(GrayCode, DISABLED_ExhaustiveRoundTrip) {
  for (std::uint64_t i = 0; i <= 0xFFFFFFFFull; ++i) {
    ASSERT_EQ(cxxlib::from_gray(cxxlib::to_gray(static_cast<std::uint32_t>(i))), i);
  }
}

}  // namespace
