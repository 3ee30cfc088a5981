// Small text utilities over bytes (ASCII semantics; bytes >= 0x80 are never letters or
// spaces), with results independent of whether `char` is signed on the platform.
#pragma once

#include <string>
#include <vector>

namespace cxxlib {

std::string trim(const std::string& s);
std::vector<std::string> split(const std::string& s, char sep);
std::string join(const std::vector<std::string>& parts, const std::string& sep);
std::string to_upper_ascii(std::string s);
bool starts_with(const std::string& s, const std::string& prefix);
// Levenshtein edit distance.
std::size_t edit_distance(const std::string& a, const std::string& b);
// The byte's value, 0..255, whatever the signedness of `char`.
int byte_value(char c);
// What a plain `static_cast<int>(c)` gives on this platform: differs between x86-64 (char is
// signed) and aarch64 Linux (char is unsigned) for bytes >= 0x80. Kept to show the difference.
int platform_char_value(char c);

}  // namespace cxxlib
