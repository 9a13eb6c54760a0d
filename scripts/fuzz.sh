#!/usr/bin/env bash
# Fuzzes a parser with cargo fuzz (libFuzzer + AddressSanitizer) for a number of seconds.
#
#   scripts/fuzz.sh [SECONDS] [-- LIBFUZZER_ARGS...]     default: 30 s of http_response
#   FUZZ_TARGET=http_response   which target in fuzz/fuzz_targets/
#   FUZZ_SANITIZER=address      or none (faster), memory, thread, leak
#
# Starts from the committed seeds (fuzz/seeds/TARGET, read only) and keeps what it learns in
# fuzz/corpus/TARGET (not committed). A crash leaves its input in fuzz/artifacts/TARGET/ and
# makes this script fail; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...   (from fuzz/)
#
# cargo fuzz needs nightly-only rustc flags (-Zsanitizer, coverage instrumentation). With a
# stable toolchain RUSTC_BOOTSTRAP=1 unlocks them for this build only; nothing else here
# depends on nightly.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${1:-30}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
target=${FUZZ_TARGET:-http_response}
sanitizer=${FUZZ_SANITIZER:-address}

case $seconds in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] [-- LIBFUZZER_ARGS...]" >&2; exit 2 ;;
esac

if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

export RUSTC_BOOTSTRAP=1
cd fuzz
seeds=seeds/$target
corpus=corpus/$target
mkdir -p "$corpus"
dict=()
[ -f "$target.dict" ] && dict=("-dict=$target.dict")

echo "fuzzing $target for ${seconds}s (sanitizer: $sanitizer; seeds: fuzz/$seeds; corpus: fuzz/$corpus)"
# -timeout: an input that takes over 10 s is reported as a hang.
cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" "$seeds" -- \
  -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${dict[@]}" "$@"
