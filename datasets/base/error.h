// The error type every layer throws for a user-facing failure.
#pragma once
#include <stdexcept>

namespace ethos {

// Every user-facing failure is an ethos::Error whose message says what happened,
// where (file:line, key path, rank) and what to do about it. main() prints it and exits 1.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace ethos
