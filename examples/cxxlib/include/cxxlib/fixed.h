// Q16.16 signed fixed-point numbers with saturating arithmetic and round-half-away-from-zero
// conversions: bit-exact on every architecture (no floating point in the arithmetic).
#pragma once

#include <cstdint>
#include <string>

namespace cxxlib {

class Fixed {
 public:
  static constexpr int kFractionBits = 16;
  static constexpr std::int32_t kOne = 1 << kFractionBits;

  constexpr Fixed() = default;
  static constexpr Fixed from_raw(std::int32_t raw) { return Fixed(raw); }
  static Fixed from_int(int value);                 // saturates
  static Fixed from_double(double value);           // rounds, saturates
  // Parses "-12.375"-style decimal text; false (and `out` untouched) if malformed.
  static bool parse(const std::string& text, Fixed* out);

  constexpr std::int32_t raw() const { return raw_; }
  double to_double() const;
  int round_to_int() const;     // half away from zero
  int floor_to_int() const;
  std::string to_string(int decimals) const;  // rounded to `decimals` (0..6) digits

  static Fixed max() { return Fixed(INT32_MAX); }
  static Fixed min() { return Fixed(INT32_MIN); }

  friend Fixed operator+(Fixed a, Fixed b);
  friend Fixed operator-(Fixed a, Fixed b);
  friend Fixed operator*(Fixed a, Fixed b);
  friend Fixed operator/(Fixed a, Fixed b);  // division by zero saturates by the dividend's sign
  friend Fixed operator-(Fixed a);
  friend constexpr bool operator==(Fixed a, Fixed b) { return a.raw_ == b.raw_; }
  friend constexpr bool operator!=(Fixed a, Fixed b) { return a.raw_ != b.raw_; }
  friend constexpr bool operator<(Fixed a, Fixed b) { return a.raw_ < b.raw_; }

 private:
  constexpr explicit Fixed(std::int32_t raw) : raw_(raw) {}
  std::int32_t raw_ = 0;
};

// Square root by integer Newton iteration; negative input gives 0.
Fixed sqrt(Fixed x);

}  // namespace cxxlib
