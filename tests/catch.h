// Catch2 for ethos's tests, version 2 or 3, behind one include.
//
// Debian bookworm ships Catch2 v2 (one header, catch2/catch.hpp, main from CATCH_CONFIG_MAIN);
// trixie and later ship v3 (a compiled library with its own main, catch2/catch_all.hpp). The
// tests are written once for both: the macros are CATCH_-prefixed in either version
// (CATCH_CONFIG_PREFIX_ALL, set by tests/CMakeLists.txt), `Approx` is found unqualified as in v2,
// and a substring matcher is spelled `ethos_catch::Contains`, because v3 gave the name
// `Catch::Matchers::Contains` to the range matcher and called the string one ContainsSubstring.
#pragma once

#include <string>

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
using Catch::Approx;
namespace ethos_catch {
inline auto Contains(const std::string& text) { return Catch::Matchers::ContainsSubstring(text); }
}  // namespace ethos_catch
#else
#include <catch2/catch.hpp>
namespace ethos_catch {
inline auto Contains(const std::string& text) { return Catch::Matchers::Contains(text); }
}  // namespace ethos_catch
#endif
