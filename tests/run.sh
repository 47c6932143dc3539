#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (CTest). Used by the README and CI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
"$root/launch/install.sh" "$build"
cd "$build"
ctest --output-on-failure --timeout 900 -j 1
