#!/usr/bin/env bash
# Regenerates include/livefeed.h with the pinned cbindgen; `--check` fails if it is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
want="0.29.4"
if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version | awk '{print $2}')" != "$want" ]; then
  cargo install cbindgen --version "=$want" --locked --quiet
fi
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  cbindgen --quiet --config cbindgen.toml --crate livefeed --output "$tmp"
  if ! diff -u include/livefeed.h "$tmp"; then
    echo "include/livefeed.h is stale: run 'make header' and commit it" >&2
    exit 1
  fi
else
  cbindgen --quiet --config cbindgen.toml --crate livefeed --output include/livefeed.h
fi
