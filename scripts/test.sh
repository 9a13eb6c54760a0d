#!/usr/bin/env bash
# What `make test` (and CI) runs: installs what the tests need, then every check.
# Safe to run on a fresh machine of the project's kind (Debian, root, Rust toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
started=$SECONDS
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - started))"; }

step "install system packages and test peers"
scripts/install-deps.sh

step "format and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

step "header is up to date"
scripts/gen-header.sh --check

step "build library and C programs (-Wall -Wextra -Werror)"
make all

step "header compiles as C99, C11 and C++, and twice"
scripts/check-header.sh

step "exported symbols all start with lf_"
bad=$(nm -D --defined-only target/release/liblivefeed.so | awk '$2 ~ /^[TDBRW]$/ {print $3}' | grep -v '^lf_' || true)
if [ -n "$bad" ]; then echo "symbols without the lf_ prefix:"; echo "$bad"; exit 1; fi
echo "ok: $(nm -D --defined-only target/release/liblivefeed.so | awk '$2 == "T"' | wc -l) functions, all lf_*"

step "Rust unit and integration tests (real peers on loopback)"
cargo test --locked

step "a build without TLS and platforms: same API, 'not built in' answers"
cargo clippy --locked --no-default-features --lib -- -D warnings
cargo test --locked --no-default-features --test features

step "C programs under AddressSanitizer and valgrind"
make asan
cargo test --locked --test c_programs --test smartserver --test soak --test faults -- --ignored --test-threads=1

step "install into a temporary prefix; build C (pkg-config), C++ (CMake), Objective-C (module map), Kotlin (JNA) against it"
scripts/test-install.sh

step "fuzz the parsers (short run: HTTP response, Engine.IO payloads, Socket.IO packets)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

step "done"
