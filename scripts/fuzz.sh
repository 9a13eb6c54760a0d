#!/usr/bin/env bash
# Fuzzes the parsers with cargo fuzz (libFuzzer + AddressSanitizer) for a number of seconds.
#
#   scripts/fuzz.sh [SECONDS] [-- LIBFUZZER_ARGS...]     default: 30 s
#   FUZZ_TARGET=http_response   fuzz only this target of fuzz/fuzz_targets/, for all SECONDS
#   FUZZ_SANITIZER=address      or none (faster), memory, thread, leak
#
# Without FUZZ_TARGET every target in fuzz/fuzz_targets/ runs in turn and SECONDS is the
# budget for all of them together: each gets SECONDS / (number of targets), at least 1 s.
# So `scripts/test.sh` (20 s) stays as short as before however many targets there are; for
# a long run of one parser use FUZZ_TARGET, or FUZZ_EACH=S to give every target S seconds
# (`make fuzz` does that, 60 s each by default). A target that fails does not stop the others;
# the script fails at the end, naming them.
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET, read only) and keeps what
# it learns in fuzz/corpus/TARGET (not committed); fuzz/TARGET.dict is used when present. A
# crash leaves its input in fuzz/artifacts/TARGET/; replay it with
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
sanitizer=${FUZZ_SANITIZER:-address}

case $seconds in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] [-- LIBFUZZER_ARGS...]" >&2; exit 2 ;;
esac

if [ -n "${FUZZ_TARGET:-}" ]; then
  targets=("$FUZZ_TARGET")
  each=$seconds
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    targets+=("$(basename "$f" .rs)")
  done
  each=${FUZZ_EACH:-$((seconds / ${#targets[@]}))}
  [ "$each" -ge 1 ] || each=1
fi

if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

export RUSTC_BOOTSTRAP=1
cd fuzz
failed=()
for target in "${targets[@]}"; do
  seeds=seeds/$target
  corpus=corpus/$target
  mkdir -p "$corpus"
  seed_dirs=()
  [ -d "$seeds" ] && seed_dirs=("$seeds")
  dict=()
  [ -f "$target.dict" ] && dict=("-dict=$target.dict")

  echo "fuzzing $target for ${each}s (sanitizer: $sanitizer; seeds: fuzz/$seeds; corpus: fuzz/$corpus)"
  # -timeout: an input that takes over 10 s is reported as a hang.
  if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" "${seed_dirs[@]}" -- \
    -max_total_time="$each" -timeout=10 -print_final_stats=1 "${dict[@]}" "$@"; then
    echo "fuzz target $target FAILED (input in fuzz/artifacts/$target/)" >&2
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed fuzz targets: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzed ${#targets[@]} target(s) for ${each}s each: no crash"
