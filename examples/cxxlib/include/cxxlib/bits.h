// Bit manipulation on unsigned integers of any width, with the same results on every
// architecture (no reliance on the width of `long` or on compiler builtins' edge cases).
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

namespace cxxlib {

template <class T>
using EnableUnsigned = std::enable_if_t<std::is_unsigned<T>::value && !std::is_same<T, bool>::value, int>;

template <class T, EnableUnsigned<T> = 0>
constexpr int bit_width_of() {
  return std::numeric_limits<T>::digits;
}

// Number of set bits.
template <class T, EnableUnsigned<T> = 0>
constexpr int popcount(T x) {
  int n = 0;
  while (x) {
    x = static_cast<T>(x & (x - 1));
    ++n;
  }
  return n;
}

// Leading zero bits; the type's width for 0.
template <class T, EnableUnsigned<T> = 0>
constexpr int count_leading_zeros(T x) {
  int n = 0;
  for (int i = bit_width_of<T>() - 1; i >= 0 && !((x >> i) & 1u); --i) ++n;
  return n;
}

// Trailing zero bits; the type's width for 0.
template <class T, EnableUnsigned<T> = 0>
constexpr int count_trailing_zeros(T x) {
  if (x == 0) return bit_width_of<T>();
  int n = 0;
  while (!(x & 1u)) {
    x = static_cast<T>(x >> 1);
    ++n;
  }
  return n;
}

// Rotations by any count (taken modulo the width; negative counts rotate the other way).
template <class T, EnableUnsigned<T> = 0>
constexpr T rotate_left(T x, int count) {
  const int w = bit_width_of<T>();
  const int c = ((count % w) + w) % w;
  return c == 0 ? x : static_cast<T>((x << c) | (x >> (w - c)));
}

template <class T, EnableUnsigned<T> = 0>
constexpr T rotate_right(T x, int count) {
  return rotate_left(x, -(count % bit_width_of<T>()));
}

template <class T, EnableUnsigned<T> = 0>
constexpr bool is_power_of_two(T x) {
  return x != 0 && (x & (x - 1)) == 0;
}

// The smallest power of two >= x; 0 if it does not fit in T (and 1 for 0).
template <class T, EnableUnsigned<T> = 0>
constexpr T next_power_of_two(T x) {
  if (x <= 1) return 1;
  const int shift = bit_width_of<T>() - count_leading_zeros(static_cast<T>(x - 1));
  return shift >= bit_width_of<T>() ? T{0} : static_cast<T>(T{1} << shift);
}

// The bits of x in reverse order.
template <class T, EnableUnsigned<T> = 0>
constexpr T reverse_bits(T x) {
  T r = 0;
  for (int i = 0; i < bit_width_of<T>(); ++i) {
    r = static_cast<T>((r << 1) | (x & 1u));
    x = static_cast<T>(x >> 1);
  }
  return r;
}

// Byte order helpers: explicit little/big-endian loads and stores from byte buffers, the same
// on every host whatever its alignment rules.
std::uint32_t load_le32(const unsigned char* p);
std::uint32_t load_be32(const unsigned char* p);
void store_le32(unsigned char* p, std::uint32_t v);
void store_be32(unsigned char* p, std::uint32_t v);
std::uint64_t load_le64(const unsigned char* p);

// Gray code and its inverse.
std::uint32_t to_gray(std::uint32_t x);
std::uint32_t from_gray(std::uint32_t g);

}  // namespace cxxlib
