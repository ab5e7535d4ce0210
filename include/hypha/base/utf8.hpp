// UTF-8 checks shared by what writes text for other programs (JSON logs, the HTTP API).
#pragma once

#include <string_view>

namespace hypha::utf8 {

// Well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid(std::string_view s) noexcept;
// The length of the well-formed sequence at s[i] (1 for ASCII), or 0 when it is not one.
std::size_t sequence_at(std::string_view s, std::size_t i) noexcept;

}  // namespace hypha::utf8
