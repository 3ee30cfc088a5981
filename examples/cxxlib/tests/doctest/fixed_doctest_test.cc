// doctest (the header from Debian's doctest-dev package).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "cxxlib/bits.h"
#include "cxxlib/fixed.h"

using cxxlib::Fixed;

TEST_SUITE("fixed") {
  TEST_CASE("from_int and back") {
    CHECK(Fixed::from_int(12).round_to_int() == 12);
    CHECK(Fixed::from_int(-3).floor_to_int() == -3);
  }

  TEST_CASE("multiplication rounds half away from zero") {
    const Fixed tiny = Fixed::from_raw(1);  // 2^-16
    CHECK((tiny * Fixed::from_double(0.5)).raw() == 1);
    CHECK((-tiny * Fixed::from_double(0.5)).raw() == -1);
  }

  TEST_CASE("to_string, 0 to 6 decimals") {
    const Fixed f = Fixed::from_double(-1.0625);
    CHECK(f.to_string(0) == "-1");
    CHECK(f.to_string(2) == "-1.06");
    CHECK(f.to_string(4) == "-1.0625");
  }
}

TEST_SUITE("bits") {
  TEST_CASE("popcount of a 64-bit pattern") { CHECK(cxxlib::popcount(0xF0F0F0F0F0F0F0F0ull) == 32); }

  TEST_CASE("gray code round trip [0, 4096)") {
    for (std::uint32_t i = 0; i < 4096; ++i) CHECK(cxxlib::from_gray(cxxlib::to_gray(i)) == i);
  }
}
