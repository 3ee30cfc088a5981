// Parameterised tests: a table of decimal texts and what they parse, round and print to.
#include <gtest/gtest.h>

#include <string>

#include "cxxlib/fixed.h"

namespace {

using cxxlib::Fixed;

struct Case {
  const char* text;
  std::int32_t raw;
  int rounded;
  const char* printed;  // to_string(3)
};

void PrintTo(const Case& c, std::ostream* os) { *os << '"' << c.text << '"'; }

class FixedParse : public ::testing::TestWithParam<Case> {};

TEST_P(FixedParse, ParsesToTheExactRawValue) {
  Fixed f;
  ASSERT_TRUE(Fixed::parse(GetParam().text, &f));
  EXPECT_EQ(f.raw(), GetParam().raw);
}

TEST_P(FixedParse, RoundsHalfAwayFromZero) {
  Fixed f;
  ASSERT_TRUE(Fixed::parse(GetParam().text, &f));
  EXPECT_EQ(f.round_to_int(), GetParam().rounded);
}

TEST_P(FixedParse, PrintsWithThreeDecimals) {
  Fixed f;
  ASSERT_TRUE(Fixed::parse(GetParam().text, &f));
  EXPECT_EQ(f.to_string(3), GetParam().printed);
}

INSTANTIATE_TEST_SUITE_P(
    Decimal, FixedParse,
    ::testing::Values(Case{"0", 0, 0, "0.000"}, Case{"1", 65536, 1, "1.000"},
                      Case{"-1", -65536, -1, "-1.000"}, Case{"0.5", 32768, 1, "0.500"},
                      Case{"-0.5", -32768, -1, "-0.500"}, Case{"2.25", 147456, 2, "2.250"},
                      Case{"-12.375", -811008, -12, "-12.375"}, Case{"+3.0", 196608, 3, "3.000"},
                      Case{"0.0001", 7, 0, "0.000"}, Case{"100.999", 6619070, 101, "100.999"}));

class FixedRejects : public ::testing::TestWithParam<std::string> {};

TEST_P(FixedRejects, MalformedText) {
  Fixed f = Fixed::from_int(7);
  EXPECT_FALSE(Fixed::parse(GetParam(), &f));
  EXPECT_EQ(f, Fixed::from_int(7));
}

INSTANTIATE_TEST_SUITE_P(Bad, FixedRejects, ::testing::Values("", "-", ".", "1.2.3", "abc", "1e3", "99999"));

TEST(FixedArithmetic, AddSubtractMultiplyDivide) {
  const Fixed a = Fixed::from_double(1.5), b = Fixed::from_double(-2.25);
  EXPECT_EQ((a + b).to_double(), -0.75);
  EXPECT_EQ((a - b).to_double(), 3.75);
  EXPECT_EQ((a * b).to_double(), -3.375);
  EXPECT_EQ((b / a).to_double(), -1.5);
}

TEST(FixedArithmetic, Saturates) {
  EXPECT_EQ(Fixed::max() + Fixed::from_int(1), Fixed::max());
  EXPECT_EQ(Fixed::min() - Fixed::from_int(1), Fixed::min());
  EXPECT_EQ(-Fixed::min(), Fixed::max());
  EXPECT_EQ(Fixed::from_int(1) / Fixed(), Fixed::max());
  EXPECT_EQ(Fixed::from_int(-1) / Fixed(), Fixed::min());
  EXPECT_EQ(Fixed::from_int(40000), Fixed::max());
}

TEST(FixedArithmetic, SquareRoot) {
  EXPECT_EQ(cxxlib::sqrt(Fixed::from_int(16)), Fixed::from_int(4));
  EXPECT_EQ(cxxlib::sqrt(Fixed::from_double(2.25)), Fixed::from_double(1.5));
  EXPECT_EQ(cxxlib::sqrt(Fixed::from_int(-4)), Fixed());
  EXPECT_NEAR(cxxlib::sqrt(Fixed::from_int(2)).to_double(), 1.41421, 1e-4);
}

TEST(FixedArithmetic, FloorOfNegativeValues) {
  EXPECT_EQ(Fixed::from_double(-0.25).floor_to_int(), -1);
  EXPECT_EQ(Fixed::from_double(2.75).floor_to_int(), 2);
}

}  // namespace
