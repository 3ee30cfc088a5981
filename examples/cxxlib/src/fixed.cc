#include "cxxlib/fixed.h"

#include <cmath>
#include <cstdlib>

namespace cxxlib {
namespace {

std::int32_t saturate(std::int64_t v) {
  if (v > INT32_MAX) return INT32_MAX;
  if (v < INT32_MIN) return INT32_MIN;
  return static_cast<std::int32_t>(v);
}

// n / d rounded half away from zero (d > 0).
std::int64_t div_round(std::int64_t n, std::int64_t d) {
  return n >= 0 ? (n + d / 2) / d : -((-n + d / 2) / d);
}

}  // namespace

Fixed Fixed::from_int(int value) { return Fixed(saturate(static_cast<std::int64_t>(value) * kOne)); }

Fixed Fixed::from_double(double value) {
  if (std::isnan(value)) return Fixed();
  const double scaled = std::round(value * kOne);
  if (scaled >= 2147483647.0) return max();
  if (scaled <= -2147483648.0) return min();
  return Fixed(static_cast<std::int32_t>(scaled));
}

bool Fixed::parse(const std::string& text, Fixed* out) {
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  std::int64_t whole = 0, frac = 0, scale = 1;
  bool digits = false;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, digits = true) {
    whole = whole * 10 + (text[i] - '0');
    if (whole > 40000) return false;
  }
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, digits = true) {
      if (scale < 100000000) {
        frac = frac * 10 + (text[i] - '0');
        scale *= 10;
      }
    }
  }
  if (!digits || i != text.size()) return false;
  std::int64_t raw = whole * kOne + div_round(frac * kOne, scale);
  *out = Fixed(saturate(negative ? -raw : raw));
  return true;
}

double Fixed::to_double() const { return static_cast<double>(raw_) / kOne; }

int Fixed::round_to_int() const { return static_cast<int>(div_round(raw_, kOne)); }

int Fixed::floor_to_int() const { return static_cast<int>(raw_ >> kFractionBits); }

std::string Fixed::to_string(int decimals) const {
  if (decimals < 0) decimals = 0;
  if (decimals > 6) decimals = 6;
  std::int64_t pow10 = 1;
  for (int i = 0; i < decimals; ++i) pow10 *= 10;
  const std::int64_t scaled = div_round(static_cast<std::int64_t>(raw_) * pow10, kOne);
  const std::int64_t mag = std::llabs(scaled);
  std::string s = (scaled < 0 ? "-" : "") + std::to_string(mag / pow10);
  if (decimals > 0) {
    std::string frac = std::to_string(mag % pow10);
    s += "." + std::string(static_cast<std::size_t>(decimals) - frac.size(), '0') + frac;
  }
  return s;
}

Fixed operator+(Fixed a, Fixed b) { return Fixed(saturate(static_cast<std::int64_t>(a.raw_) + b.raw_)); }
Fixed operator-(Fixed a, Fixed b) { return Fixed(saturate(static_cast<std::int64_t>(a.raw_) - b.raw_)); }
Fixed operator-(Fixed a) { return Fixed(saturate(-static_cast<std::int64_t>(a.raw_))); }

Fixed operator*(Fixed a, Fixed b) {
  return Fixed(saturate(div_round(static_cast<std::int64_t>(a.raw_) * b.raw_, Fixed::kOne)));
}

Fixed operator/(Fixed a, Fixed b) {
  if (b.raw_ == 0) return a.raw_ < 0 ? Fixed::min() : Fixed::max();
  std::int64_t n = static_cast<std::int64_t>(a.raw_) * Fixed::kOne;
  std::int64_t d = b.raw_;
  if (d < 0) {
    n = -n;
    d = -d;
  }
  return Fixed(saturate(div_round(n, d)));
}

Fixed sqrt(Fixed x) {
  if (x.raw() <= 0) return Fixed();
  // sqrt(raw / 2^16) * 2^16 == sqrt(raw * 2^16)
  const std::uint64_t n = static_cast<std::uint64_t>(x.raw()) << Fixed::kFractionBits;
  std::uint64_t r = n, prev = 0;
  while (r != prev) {
    prev = r;
    r = (r + n / r) / 2;
    if (r > prev) r = prev;  // converged from above
  }
  if ((r + 1) * (r + 1) <= n) ++r;
  return Fixed::from_raw(static_cast<std::int32_t>(r));
}

}  // namespace cxxlib
